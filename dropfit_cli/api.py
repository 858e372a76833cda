"""A small client for Dropfit's HTTP API that signs as the stack's ``ApiAuth`` mode requires.

* ``IAM`` (the default mode): :class:`SigV4` signs each request with botocore's ``SigV4Auth`` for
  the ``execute-api`` service, with credentials from botocore's default chain (environment,
  profile, SSO, instance role...) unless given.
* ``JWT``: :class:`Bearer` sends ``Authorization: Bearer <token>``.
* ``NONE``: :class:`NoAuth` sends nothing.

Only the standard library and botocore are imported, so a command line starts fast. Callers
with their own HTTP stack (a ``requests.Session``, a load driver) use ``auth.headers(...)`` to
get the headers to add to a request they send themselves.
"""

from __future__ import annotations

import json as jsonlib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session

SERVICE = "execute-api"
MODES = ("IAM", "JWT", "NONE")


class ApiAuthError(RuntimeError):
    """The client cannot authorise requests (no credentials, no region, no token)."""


class Auth(Protocol):
    """Adds the authorisation headers one request needs."""

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """The headers to add to this exact request (method, URL with query, headers, body)."""
        ...


@dataclass(frozen=True)
class NoAuth:
    """For an API deployed with ``ApiAuth=NONE``: no headers."""

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class Bearer:
    """For an API deployed with ``ApiAuth=JWT``: ``Authorization: Bearer <token>``."""

    token: str

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class SigV4:
    """For an API deployed with ``ApiAuth=IAM``: AWS Signature Version 4 (``execute-api``)."""

    region: str
    credentials: Credentials

    @classmethod
    def from_environment(
        cls, region: str | None = None, credentials: Credentials | None = None
    ) -> SigV4:
        """Region and credentials from botocore's default chain unless given."""
        session = get_session()
        chosen_region = region or session.get_config_variable("region")
        if not chosen_region:
            raise ApiAuthError(
                "no AWS region: pass one or set AWS_REGION / AWS_DEFAULT_REGION "
                "(the API's region, as in its URL)"
            )
        found = credentials or session.get_credentials()
        if found is None:
            raise ApiAuthError(
                "no AWS credentials found (environment, ~/.aws, SSO or instance role): "
                "the API is deployed with ApiAuth=IAM and needs signed requests"
            )
        return cls(region=chosen_region, credentials=found)

    def headers(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        request = AWSRequest(method=method.upper(), url=url, data=body, headers=dict(headers))
        frozen = self.credentials.get_frozen_credentials()
        SigV4Auth(frozen, SERVICE, self.region).add_auth(request)
        names = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
        return {name: request.headers[name] for name in names if name in request.headers}


def auth_for(
    mode: str,
    *,
    region: str | None = None,
    credentials: Credentials | None = None,
    token: str | None = None,
) -> Auth:
    """The :class:`Auth` for an ``ApiAuth`` mode (``IAM``, ``JWT`` or ``NONE``)."""
    chosen = mode.upper()
    if chosen == "IAM":
        return SigV4.from_environment(region, credentials)
    if chosen == "JWT":
        if not token:
            raise ApiAuthError("the API is deployed with ApiAuth=JWT: give a bearer token")
        return Bearer(token)
    if chosen == "NONE":
        return NoAuth()
    raise ApiAuthError(f"unknown ApiAuth mode {mode!r}: expected one of {', '.join(MODES)}")


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, headers (names lower-cased) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)


@dataclass(frozen=True)
class ApiClient:
    """Sends requests to ``url`` (the API's base URL), authorised by ``auth``."""

    url: str
    auth: Auth = field(default_factory=NoAuth)
    timeout: float = 60.0

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One request; any HTTP status is an answer, network failures raise ``OSError``."""
        # Percent-encode what a URL cannot carry (a model named 売上2024), keeping escapes.
        target = self.url.rstrip("/") + "/" + quote(path.lstrip("/"), safe="/%:@!$&'()*+,;=~")
        if query:
            target += "?" + urlencode(query)
        sent = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        payload = body or b""
        # Sign what urllib sends: it adds Host from the URL, so the signature covers the same one.
        sent.setdefault("Host", urlsplit(target).netloc)
        sent.update(self.auth.headers(method, target, sent, payload))
        request = urllib.request.Request(
            target, data=payload if payload else None, headers=sent, method=method.upper()
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                return _response(answer.status, answer.headers.items(), answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return _response(error.code, error.headers.items(), error.read())

    def get(self, path: str, **options: Any) -> Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Response:
        return self.request("POST", path, **options)

    def delete(self, path: str, **options: Any) -> Response:
        return self.request("DELETE", path, **options)


def _response(status: int, headers: Any, body: bytes) -> Response:
    return Response(status, {str(k).lower(): str(v) for k, v in headers}, body)
