"""API Gateway's authorisation of HTTP API requests, locally: IAM (SigV4), JWT, or none.

The template's ``ApiAuth`` parameter picks the HTTP API's default authorizer (``AWS_IAM``, a JWT
authorizer, or none) and the local API enforces the same, answering as API Gateway does:

* IAM: the request must carry a valid AWS Signature Version 4 for ``execute-api`` in the stack's
  region. Unsigned: ``403 {"message": "Forbidden"}``; an unknown access key: ``403 {"message":
  "The security token included in the request is invalid."}``; a wrong secret or an altered
  request: ``403`` "The request signature we calculated does not match ..."; a signature dated
  more than 5 minutes away: ``403`` "Signature expired: ..." (or "not yet current"). The
  signature is recomputed with botocore's ``SigV4Auth`` over the headers the caller signed.
  The local stack knows one key pair, the one its AWS endpoint accepts (``LOCAL_CREDENTIALS``);
  unlike AWS it accepts any session token with it and has no IAM policies to evaluate, so a
  valid signature is enough (on AWS the principal also needs ``execute-api:Invoke``).
* JWT: ``Authorization: Bearer <token>`` (the ``Bearer`` prefix is optional, as on AWS) signed
  with RS256 by a key of the issuer's JWKS, for the configured issuer, with ``aud`` (or
  ``client_id`` when there is no ``aud``) one of the audiences, not expired and not before its
  ``nbf``. Otherwise ``401 {"message": "Unauthorized"}`` with a ``www-authenticate`` header
  saying why. Locally the issuer is :class:`LocalIssuer`: keys generated at start-up, so tests
  and users can mint tokens; the real issuer's JWKS (e.g. Cognito's) is never fetched.
* NONE: every request passes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import jwt
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dropfit_local.template import ApiAuthSpec

SERVICE = "execute-api"
# The keys the local stack's AWS endpoint (moto) is used with; the local API accepts them too.
LOCAL_CREDENTIALS = Credentials("testing", "testing")
SIGNATURE_WINDOW = timedelta(minutes=5)  # how far X-Amz-Date may be from now, as on AWS
AMZ_DATE = "%Y%m%dT%H%M%SZ"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
_AUTHORIZATION = re.compile(r"^AWS4-HMAC-SHA256\s+(?P<parts>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Request:
    """What an authorizer sees of a request: as received, body included."""

    method: str
    target: str  # path and query string, as on the request line
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class Refusal:
    """API Gateway's answer to a request its authorizer refuses."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Allowed:
    """An authorised request, and what API Gateway tells the function about the caller."""

    context: dict[str, Any] | None = None


class Authorizer(Protocol):
    def authorize(self, request: Request) -> Allowed | Refusal: ...


class NoAuthorizer:
    """``ApiAuth=NONE``: every request passes."""

    def authorize(self, request: Request) -> Allowed | Refusal:
        return Allowed()


# ---------------------------------------------------------------------------- IAM


class _SignedHeadersOnly(SigV4Auth):
    """botocore's SigV4 over exactly the headers the caller says it signed."""

    def __init__(self, credentials: ReadOnlyCredentials, region: str, signed: Sequence[str]):
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)  # an HTTPHeaders
        for name in list(headers.keys()):
            if name.lower() not in self._signed:
                del headers[name]
        for name in self._signed:
            value = request.headers.get(name)
            if value is not None and name not in headers:
                headers[name] = value
        return headers


@dataclass
class SigV4Authorizer:
    """``ApiAuth=IAM``: AWS Signature Version 4 in the ``Authorization`` header."""

    region: str
    credentials: Sequence[Credentials] = (LOCAL_CREDENTIALS,)
    clock: Callable[[], float] = time.time

    def authorize(self, request: Request) -> Allowed | Refusal:
        header = request.header("Authorization")
        if header is None:
            return Refusal(403, "Forbidden")
        parsed = _parse_authorization(header)
        if isinstance(parsed, Refusal):
            return parsed
        access_key, date, region, service, signed, signature = parsed
        secret = next((c.secret_key for c in self.credentials if c.access_key == access_key), None)
        if secret is None:
            return Refusal(403, INVALID_TOKEN)
        if service != SERVICE:
            return Refusal(403, f"Credential should be scoped to correct service: '{SERVICE}'. ")
        if region != self.region:
            return Refusal(403, f"Credential should be scoped to a valid region, not '{region}'. ")
        stamp = request.header("X-Amz-Date")
        if stamp is None:
            return Refusal(
                403,
                "Authorization header requires existence of either a 'X-Amz-Date' or a "
                "'Date' header.",
            )
        refused = self._check_time(stamp, date)
        if refused is not None:
            return refused
        if "host" not in signed:
            return Refusal(
                403, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        expected = self._signature(request, secret, signed, stamp)
        if expected is None or not hmac.compare_digest(expected, signature):
            return Refusal(403, SIGNATURE_MISMATCH)
        return Allowed({"iam": {"accessKey": access_key, "callerId": access_key}})

    def _check_time(self, stamp: str, scope_date: str) -> Refusal | None:
        try:
            moment = datetime.strptime(stamp, AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            return Refusal(403, f"Date must be in ISO-8601 'basic format'. Got '{stamp}'.")
        if scope_date != stamp[:8]:
            return Refusal(
                403,
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{scope_date}' != '{stamp[:8]}', from '{stamp}'.",
            )
        now = datetime.fromtimestamp(self.clock(), UTC)
        current = now.strftime(AMZ_DATE)
        if moment < now - SIGNATURE_WINDOW:
            earliest = (now - SIGNATURE_WINDOW).strftime(AMZ_DATE)
            return Refusal(
                403,
                f"Signature expired: {stamp} is now earlier than {earliest} ({current} - 5 min.)",
            )
        if moment > now + SIGNATURE_WINDOW:
            latest = (now + SIGNATURE_WINDOW).strftime(AMZ_DATE)
            return Refusal(
                403,
                f"Signature not yet current: {stamp} is still later than {latest} "
                f"({current} + 5 min.)",
            )
        return None

    def _signature(
        self, request: Request, secret: str, signed: Sequence[str], stamp: str
    ) -> str | None:
        headers = {name: request.header(name) for name in signed}
        if any(value is None for value in headers.values()):
            return None  # a header it says it signed is not there
        content_hash = request.header("X-Amz-Content-SHA256")
        if content_hash is not None and content_hash not in (
            hashlib.sha256(request.body).hexdigest(),
            "UNSIGNED-PAYLOAD",
        ):
            return None  # the body is not the one that was signed
        host = str(headers.get("host") or request.header("Host") or "")
        aws_request = AWSRequest(
            method=request.method,
            url=f"http://{host}{request.target}",
            data=request.body,
            headers={name: str(value) for name, value in headers.items()},
        )
        aws_request.context["timestamp"] = stamp
        signer = _SignedHeadersOnly(
            Credentials("local", secret).get_frozen_credentials(), self.region, signed
        )
        canonical = signer.canonical_request(aws_request)
        return str(signer.signature(signer.string_to_sign(aws_request, canonical), aws_request))


def _parse_authorization(
    header: str,
) -> tuple[str, str, str, str, list[str], str] | Refusal:
    """Access key, scope date, region, service, signed header names and signature."""
    match = _AUTHORIZATION.match(header.strip())
    parts: dict[str, str] = {}
    if match:
        for item in match.group("parts").split(","):
            name, _, value = item.strip().partition("=")
            parts[name.strip()] = value.strip()
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if not parts.get(name)]
    if not match or missing:
        return Refusal(
            403,
            " ".join(
                f"Authorization header requires '{name}' parameter."
                for name in (missing or ["Credential", "Signature", "SignedHeaders"])
            ),
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return Refusal(
            403,
            "Credential should be scoped to a valid scope: "
            "<key>/<date>/<region>/<service>/aws4_request.",
        )
    access_key, date, region, service, _ = scope
    signed = [name.strip().lower() for name in parts["SignedHeaders"].split(";") if name.strip()]
    return access_key, date, region, service, signed, parts["Signature"]


# ---------------------------------------------------------------------------- JWT


@dataclass
class LocalIssuer:
    """A JWT issuer for the local stack: an RSA key generated at start-up, its JWKS, and tokens."""

    issuer: str
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    key_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def load(cls, issuer: str, key_file: Path, jwks_file: Path) -> LocalIssuer:
        """The issuer a running local stack wrote to its state folder (to mint more tokens)."""
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{key_file} is not an RSA private key")
        (public,) = json.loads(jwks_file.read_text())["keys"]
        return cls(issuer, key, str(public["kid"]))

    def jwks(self) -> dict[str, Any]:
        """The issuer's public keys, as ``/.well-known/jwks.json`` serves them."""
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}

    def private_key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def mint(
        self,
        audience: str,
        *,
        subject: str = "local-user",
        expires_in: float = 3600.0,
        issuer: str | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed token (RS256) for ``audience`` that expires in ``expires_in`` seconds."""
        now = int(time.time())
        payload = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + int(expires_in),
            **(claims or {}),
        }
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.key_id})


@dataclass
class JwtAuthorizer:
    """``ApiAuth=JWT``: a bearer token from ``issuer`` for one of ``audiences``."""

    issuer: str
    audiences: Sequence[str]
    jwks: Mapping[str, Any]

    def authorize(self, request: Request) -> Allowed | Refusal:
        header = request.header("Authorization")
        if not header or not header.strip():
            return Refusal(401, "Unauthorized")
        token = header.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            claims = self._claims(token)
        except _InvalidToken as error:
            description = str(error).replace('"', "'")
            return Refusal(
                401,
                "Unauthorized",
                (
                    (
                        "www-authenticate",
                        f'Bearer scope="" error="invalid_token" error_description="{description}"',
                    ),
                ),
            )
        scopes = str(claims.get("scope", "")).split() or None
        return Allowed({"jwt": {"claims": claims, "scopes": scopes}})

    def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _InvalidToken("the token is malformed") from None
        key = next(
            (k for k in self.jwks.get("keys", []) if k.get("kid") == header.get("kid")), None
        )
        if key is None:
            raise _InvalidToken("the token's key id is not in the issuer's JWKS")
        if header.get("alg") not in ("RS256", "RS384", "RS512"):
            raise _InvalidToken(f"signing method {header.get('alg')} is invalid")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                jwt.PyJWK(key).key,
                algorithms=[str(header["alg"])],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise _InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _InvalidToken("the token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise _InvalidToken("the token does not have a valid issuer") from None
        except jwt.MissingRequiredClaimError as error:
            raise _InvalidToken(f"the token has no {error.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise _InvalidToken("the token's signature is invalid") from None
        except jwt.InvalidTokenError:
            raise _InvalidToken("the token is malformed") from None
        audience = claims.get("aud", claims.get("client_id"))
        given = audience if isinstance(audience, list) else [audience]
        if not any(item in self.audiences for item in given if isinstance(item, str)):
            raise _InvalidToken("the token does not have a valid audience")
        return claims


class _InvalidToken(Exception):
    pass


def authorizer_for(
    spec: ApiAuthSpec, *, region: str, issuer: LocalIssuer | None = None
) -> Authorizer:
    """The local authorizer of a template's HTTP API (``issuer`` signs tokens in JWT mode)."""
    if spec.mode == "IAM":
        return SigV4Authorizer(region)
    if spec.mode == "JWT":
        if issuer is None:
            raise ValueError("a JWT API needs the local issuer that signs its tokens")
        return JwtAuthorizer(spec.jwt_issuer, spec.jwt_audiences, issuer.jwks())
    return NoAuthorizer()
