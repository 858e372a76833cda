"""The template's HTTP API on 127.0.0.1, behaving as API Gateway HTTP APIs do for Lambda proxies.

* Routes come from the functions' ``HttpApi`` events: ``METHOD /path`` with ``{param}`` and a
  greedy ``{param+}``, method ``ANY``, and ``$default``. The most specific route wins: a full
  match before a greedy one, static segments before parameters, a method before ``ANY``.
* Requests become payload format 2.0 events; the function's answer becomes the HTTP response with
  the 2.0 rules (``statusCode``/``headers``/``cookies``/``body``/``isBase64Encoded``; any other
  JSON answer is a ``200`` ``application/json`` body).
* Each matched route is under the API's default authorizer (``dropfit_local.authorizers``: IAM,
  JWT or none, as the template's ``Auth`` says); a refused request gets API Gateway's ``401`` or
  ``403`` and never reaches the function, whose event carries ``requestContext.authorizer``.
* API Gateway's own answers: no route ``404 {"message":"Not Found"}``, a failed function
  ``500 {"message":"Internal Server Error"}``, a body over 10 MB (or an event over Lambda's
  6 MB) ``413``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from dropfit_local.authorizers import Allowed, Authorizer, NoAuthorizer, Request
from dropfit_local.lambda_runtime import InvocationError, InvocationResult, PayloadTooLarge
from dropfit_local.template import HttpRoute

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload quota
STAGE = "$default"
LISTEN_BACKLOG = 128  # pending connections the kernel queues for accept() (werkzeug's default)
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|javascript|ecmascript|xml|x-www-form-urlencoded|graphql|"
    r"yaml|x-yaml|x-ndjson|[\w.+-]+\+(json|xml)))$"
)

Invoke = Callable[[str, dict[str, Any]], InvocationResult]


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def api_error(status: int, message: str) -> HttpResponse:
    """An answer from API Gateway itself: ``{"message": ...}``."""
    body = json.dumps({"message": message}).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


NOT_FOUND = api_error(404, "Not Found")
INTERNAL_ERROR = api_error(500, "Internal Server Error")
TOO_LARGE = api_error(413, "Request Entity Too Large")


# ---------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class _CompiledRoute:
    route: HttpRoute
    segments: tuple[str, ...]
    greedy: bool

    def match(
        self, method: str, parts: Sequence[str]
    ) -> tuple[tuple[Any, ...], dict[str, str]] | None:
        if self.route.method not in ("ANY", method):
            return None
        fixed = self.segments[:-1] if self.greedy else self.segments
        if len(parts) < len(fixed) or (not self.greedy and len(parts) != len(fixed)):
            return None
        if self.greedy and len(parts) == len(fixed):
            return None  # a greedy variable matches at least one segment
        parameters: dict[str, str] = {}
        rank: list[int] = []
        for pattern, part in zip(fixed, parts, strict=False):
            if pattern.startswith("{") and pattern.endswith("}"):
                parameters[pattern[1:-1]] = unquote(part)
                rank.append(0)
            elif pattern == part:
                rank.append(1)
            else:
                return None
        if self.greedy:
            parameters[self.segments[-1][1:-2]] = unquote("/".join(parts[len(fixed) :]))
        exact_method = 1 if self.route.method == method else 0
        # Full matches beat greedy ones; then static segments, leftmost first; then the method.
        return (
            0 if self.greedy else 1,
            len(fixed) if self.greedy else 0,
            *rank,
            exact_method,
        ), parameters


class Router:
    """Chooses the route of a request as API Gateway does (see the module docstring)."""

    def __init__(self, routes: Sequence[HttpRoute]) -> None:
        self._default: HttpRoute | None = None
        self._routes: list[_CompiledRoute] = []
        seen: set[str] = set()
        for route in routes:
            if route.route_key in seen:
                raise ValueError(f"route {route.route_key!r} is declared twice")
            seen.add(route.route_key)
            if route.path == "$default":
                self._default = route
                continue
            segments = tuple(route.path.strip("/").split("/")) if route.path.strip("/") else ()
            greedy = bool(segments) and segments[-1].startswith("{") and segments[-1].endswith("+}")
            self._routes.append(_CompiledRoute(route, segments, greedy))

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        parts = [part for part in path.split("/") if part] if path.strip("/") else []
        best: tuple[tuple[Any, ...], HttpRoute, dict[str, str]] | None = None
        for compiled in self._routes:
            found = compiled.match(method.upper(), parts)
            if found is not None and (best is None or found[0] > best[0]):
                best = (found[0], compiled.route, found[1])
        if best is not None:
            return best[1], best[2]
        if self._default is not None:
            return self._default, {}
        return None


# ---------------------------------------------------------------------------- events


def is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this type as text rather than base64."""
    if not content_type:
        return False
    return bool(_TEXT_TYPES.match(content_type.split(";", 1)[0].strip().lower()))


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    route: HttpRoute,
    path_parameters: Mapping[str, str],
    source_ip: str,
    api_id: str,
    account_id: str,
    request_id: str,
    now: float,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends the function for this request."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    host = merged.get("host", "")
    moment = datetime.fromtimestamp(now, UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        **({"authorizer": dict(authorizer)} if authorizer else {}),
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": STAGE,
        "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now * 1000),
    }
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    binary = bool(body) and not is_text(merged.get("content-type"))
    if body:
        event["body"] = (
            base64.b64encode(body).decode() if binary else body.decode("utf-8", "replace")
        )
    event["isBase64Encoded"] = binary
    return event


class MalformedResponse(ValueError):
    """The function's answer is not a valid payload 2.0 response (API Gateway answers 500)."""


def to_http_response(answer: Any) -> HttpResponse:
    """Map a function's payload 2.0 answer to the HTTP response API Gateway sends."""
    if not isinstance(answer, dict) or "statusCode" not in answer:
        body = answer if isinstance(answer, str) else json.dumps(answer)
        return HttpResponse(200, [("Content-Type", "application/json")], body.encode())
    try:
        status = int(answer["statusCode"])
    except (TypeError, ValueError):
        raise MalformedResponse(f"statusCode {answer['statusCode']!r} is not a number") from None
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status} is not an HTTP status")
    headers = [(str(k), str(v)) for k, v in (answer.get("headers") or {}).items()]
    for name, values in (answer.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in answer.get("cookies") or [])
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    content = answer.get("body")
    if content is None:
        raw = b""
    elif answer.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(str(content), validate=True)
        except ValueError:
            raise MalformedResponse("isBase64Encoded is true but body is not base64") from None
    else:
        raw = (content if isinstance(content, str) else json.dumps(content)).encode()
    return HttpResponse(status, headers, raw)


# ---------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 makes the kernel drop or reset connections when a few
    # dozen clients connect at once; API Gateway accepts them all.
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], api: LocalHttpApi) -> None:
        self.api = api
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection does not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        """Each request is logged once, by LocalHttpApi.handle."""

    def _serve(self) -> None:
        response = self.server.api.handle(self)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    # The names BaseHTTPRequestHandler dispatches to; every method goes through the router.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve  # noqa: N815


class _TooLarge(Exception):
    pass


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, chunked or not; :class:`_TooLarge` past API Gateway's quota."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            total += size
            if total > MAX_REQUEST_BYTES:
                handler.close_connection = True
                raise _TooLarge
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_REQUEST_BYTES:
        handler.close_connection = True  # the unread body would corrupt the next request
        raise _TooLarge
    return handler.rfile.read(length) if length else b""


class LocalHttpApi:
    """Serves the routes on ``host:port`` and invokes ``invoke(function_id, event)`` for each."""

    def __init__(
        self,
        routes: Sequence[HttpRoute],
        invoke: Invoke,
        *,
        api_id: str,
        account_id: str,
        host: str = "127.0.0.1",
        port: int = 3000,
        authorizer: Authorizer | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.router = Router(routes)
        self.authorizer = authorizer or NoAuthorizer()
        self._invoke = invoke
        self.api_id = api_id
        self.account_id = account_id
        self._address = (host, port)
        self._log = log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the HTTP API is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-http-api"
        )
        self._thread.start()
        self._log(f"[api] listening on {self.url}")

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def handle(self, request: BaseHTTPRequestHandler) -> HttpResponse:
        """Answer one request (the body is read here)."""
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = request.path.partition("?")
        route_key = "-"
        try:
            body = _read_body(request)
            matched = self.router.match(request.command, raw_path)
            if matched is None:
                response = NOT_FOUND
            else:
                route, parameters = matched
                route_key = route.route_key
                headers = list(request.headers.items())
                verdict = self.authorizer.authorize(
                    Request(request.command, request.path, headers, body)
                )
                if isinstance(verdict, Allowed):
                    event = build_event(
                        method=request.command,
                        raw_path=raw_path,
                        raw_query=raw_query,
                        headers=headers,
                        body=body,
                        route=route,
                        path_parameters=parameters,
                        source_ip=request.client_address[0],
                        api_id=self.api_id,
                        account_id=self.account_id,
                        request_id=request_id,
                        now=time.time(),
                        authorizer=verdict.context,
                    )
                    response = self._call(route, event)
                else:
                    refused = api_error(verdict.status, verdict.message)
                    response = HttpResponse(
                        refused.status, [*refused.headers, *verdict.headers], refused.body
                    )
        except _TooLarge:
            response = TOO_LARGE
        return self._logged(request, request_id, started, route_key, response)

    def _logged(
        self,
        request: BaseHTTPRequestHandler,
        request_id: str,
        started: float,
        route_key: str,
        response: HttpResponse,
    ) -> HttpResponse:
        elapsed = (time.monotonic() - started) * 1000
        self._log(
            f"[api] {request.command} {request.path} -> {response.status} "
            f"({elapsed:.0f} ms, route {route_key})"
        )
        return HttpResponse(
            response.status, [*response.headers, ("apigw-requestid", request_id)], response.body
        )

    def _call(self, route: HttpRoute, event: dict[str, Any]) -> HttpResponse:
        try:
            result = self._invoke(route.function_id, event)
        except PayloadTooLarge:  # the event is over Lambda's quota: API Gateway answers 413
            return TOO_LARGE
        except InvocationError as error:
            self._log(f"[api] {route.route_key}: {error}")
            return INTERNAL_ERROR
        if result.function_error is not None:
            self._log(f"[api] {route.route_key}: {result.error_type}: {result.error_message}")
            return INTERNAL_ERROR
        try:
            return to_http_response(result.json())
        except (ValueError, MalformedResponse) as error:
            self._log(f"[api] {route.route_key}: malformed Lambda response: {error}")
            return INTERNAL_ERROR
