"""HTTP front of the local SageMaker: the ``sagemaker`` and ``sagemaker-runtime`` protocols.

One port serves both, so boto3 reaches it with ``AWS_ENDPOINT_URL_SAGEMAKER`` and
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` set to the same URL:

* control plane, JSON 1.1: ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``; errors are
  ``{"__type": code, "message": text}`` with status 400;
* runtime, REST-JSON: ``POST /endpoints/{EndpointName}/invocations``; the response body is the
  model's raw answer; errors carry their code in the ``x-amzn-ErrorType`` header.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config

from dropfit_local.sagemaker.backend import SageMakerBackend
from dropfit_local.sagemaker.errors import ServiceError

_INVOCATIONS = re.compile(r"/endpoints/([^/]+)/invocations")
# The runtime's other operations: asynchronous inference (results in S3) and response streaming.
_UNSUPPORTED_RUNTIME = {
    "async-invocations": "InvokeEndpointAsync",
    "invocations-response-stream": "InvokeEndpointWithResponseStream",
}
_OTHER_RUNTIME = re.compile(r"/endpoints/([^/]+)/([a-z-]+)")
_MAX_BODY = 64 * 1024 * 1024
_JSON_11 = "application/x-amz-json-1.1"
_UNSPECIFIED_HOSTS = ("", "0.0.0.0", "::", "[::]")


def _json_default(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.timestamp()  # the JSON protocols' default timestamp format
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _Server(ThreadingHTTPServer):
    # Non-daemon request threads joined by server_close(): a stopped server leaves none behind.
    daemon_threads = False
    block_on_close = True
    # Concurrent predict runtimes connect at once (one request per connection): queue them
    # rather than let socketserver's default backlog of 5 overflow.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], backend: SageMakerBackend, log: Callable[[str], None]
    ):
        self.backend = backend
        self.log = log
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 10  # a silent client cannot hold a request thread (and stop()) for long

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged (the backend logs what matters)."""

    def do_POST(self) -> None:
        """Route to the runtime or the control plane."""
        # One request per connection: handler threads end promptly, so stop() can join them.
        self.close_connection = True
        request_id = str(uuid.uuid4())
        path = urlsplit(self.path).path
        invocation = _INVOCATIONS.fullmatch(path) or _OTHER_RUNTIME.fullmatch(path)
        try:
            body = self._read_body()
            if invocation and invocation.re is _OTHER_RUNTIME:
                self._unsupported_runtime(invocation[2])
            elif invocation:
                self._invoke(unquote(invocation[1]), body, request_id)
            else:
                self._control(body, request_id)
        except ServiceError as error:
            self._error(error, request_id, rest=bool(invocation))
        except Exception as exc:
            self.server.log(f"[sagemaker] internal error on {path}:\n{traceback.format_exc()}")
            failure = ServiceError("InternalFailure", f"Internal error: {exc}", status=500)
            self._error(failure, request_id, rest=bool(invocation))

    def do_GET(self) -> None:
        """Nothing is served over GET."""
        self.close_connection = True
        failure = ServiceError("UnknownOperationException", "Use POST", status=404)
        self._error(failure, str(uuid.uuid4()), rest=True)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ServiceError("RequestEntityTooLarge", "Request body too large", status=413)
        return self.rfile.read(length) if length else b""

    def _unsupported_runtime(self, suffix: str) -> None:
        operation = _UNSUPPORTED_RUNTIME.get(suffix)
        if operation is None:
            raise ServiceError(
                "UnknownOperationException", f"Unknown operation {suffix}", status=404
            )
        raise ServiceError(
            "ValidationError",
            f"{operation} is not supported by the local SageMaker: its endpoints are real-time "
            "only; use InvokeEndpoint",
        )

    def _control(self, body: bytes, request_id: str) -> None:
        target = self.headers.get("X-Amz-Target", "")
        service, _, operation = target.partition(".")
        if service != "SageMaker" or not operation:
            raise ServiceError(
                "UnknownOperationException", f"Unknown operation target {target!r}", status=400
            )
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise ServiceError("SerializationException", f"Malformed JSON body: {exc}") from None
        if not isinstance(params, dict):
            raise ServiceError("SerializationException", "The JSON body must be an object")
        result = self.server.backend.call(operation, params)
        payload = json.dumps(result, default=_json_default).encode()
        self._send(200, payload, {"Content-Type": _JSON_11}, request_id)

    def _invoke(self, endpoint: str, body: bytes, request_id: str) -> None:
        payload, content_type, variant = self.server.backend.invoke(
            endpoint,
            body,
            content_type=self.headers.get("Content-Type"),
            accept=self.headers.get("Accept"),
            target_variant=self.headers.get("X-Amzn-SageMaker-Target-Variant"),
            request_id=request_id,
        )
        headers = {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": variant}
        self._send(200, payload, headers, request_id)

    def _error(self, error: ServiceError, request_id: str, *, rest: bool) -> None:
        if rest:
            document = {"ErrorCode": error.code, **error.fields, "Message": error.message}
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error.code}
        else:
            document = {"__type": error.code, "message": error.message, **error.fields}
            headers = {"Content-Type": _JSON_11}
        self._send(error.status, json.dumps(document).encode(), headers, request_id)

    def _send(self, status: int, payload: bytes, headers: dict[str, str], request_id: str) -> None:
        self.send_response(status)
        for name, value in {**headers, "x-amzn-RequestId": request_id}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


class LocalSageMaker:
    """A local SageMaker (training jobs, models, endpoints, runtime) for the built-in k-NN.

    It reads and writes S3 and puts state-change events on the default EventBridge bus through
    the given endpoints (moto in the local stack), with dummy ``testing`` credentials.
    """

    def __init__(
        self,
        *,
        region: str,
        account_id: str,
        s3_endpoint_url: str,
        events_endpoint_url: str,
        logs_endpoint_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        endpoint_delay_seconds: float = 0.3,
        log: Callable[[str], None] = print,
        faults_dir: Path | None = None,
    ) -> None:
        """``faults_dir``: where test-only injected faults are read (``dropfit_local.faults``);
        ``logs_endpoint_url``: CloudWatch Logs for the jobs' and endpoints' logs (None: none)."""
        if host in _UNSPECIFIED_HOSTS:
            raise ValueError("the local SageMaker listens on a loopback address only, not on all")
        self._region = region
        self._account_id = account_id
        self._s3_endpoint_url = s3_endpoint_url
        self._events_endpoint_url = events_endpoint_url
        self._logs_endpoint_url = logs_endpoint_url
        self._host = host
        self._port = port
        self._delay = endpoint_delay_seconds
        self._log = log
        self._faults_dir = faults_dir
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind the port and serve in a background thread (returns once listening)."""
        if self._server is not None:
            raise RuntimeError("the local SageMaker is already running")
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=self._region,
        )
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5)
        backend = SageMakerBackend(
            region=self._region,
            account_id=self._account_id,
            s3=session.client("s3", endpoint_url=self._s3_endpoint_url, config=config),
            events=session.client("events", endpoint_url=self._events_endpoint_url, config=config),
            endpoint_delay_seconds=self._delay,
            log=self._log,
            faults_dir=self._faults_dir,
            logs=(
                session.client("logs", endpoint_url=self._logs_endpoint_url, config=config)
                if self._logs_endpoint_url
                else None
            ),
        )
        try:
            server = _Server((self._host, self._port), backend, self._log)
        except OSError:
            backend.close()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="local-sagemaker-http",
            daemon=True,  # never blocks interpreter exit if stop() is forgotten; stop() joins it
        )
        self._thread.start()
        self._log(f"[sagemaker] listening on {self.url}")

    def stop(self) -> None:
        """Stop serving, wait for in-flight requests and workers; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        server.backend.close()
        self._server = self._thread = None

    @property
    def url(self) -> str:
        """Base URL for both ``sagemaker`` and ``sagemaker-runtime`` clients."""
        if self._server is not None:
            address = self._server.server_address
            bound = address[0]
            host = bound.decode() if isinstance(bound, bytes) else bound
            port = int(address[1])
        elif self._port:
            host, port = self._host, self._port
        else:
            raise RuntimeError("the local SageMaker has no port until start()")
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def __enter__(self) -> LocalSageMaker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
