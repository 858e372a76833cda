"""The API client (dropfit_cli.api): SigV4 for IAM, a bearer token for JWT, nothing for NONE."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials

from dropfit_cli.api import ApiAuthError, ApiClient, Bearer, NoAuth, SigV4, auth_for
from tests.conftest import ROOT

KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        )
        status = 403 if self.path.startswith("/forbidden") else 200
        payload = json.dumps({"message": "Forbidden"} if status == 403 else {"ok": True}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer  # noqa: N815


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_sigv4_signs_for_execute_api_in_the_region_with_host_and_date() -> None:
    headers = SigV4("eu-west-1", KEYS).headers(
        "POST", "https://abc.execute-api.eu-west-1.amazonaws.com/models/iris/predict", {}, b"{}"
    )
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "SignedHeaders=host;x-amz-date" in authorization
    assert "X-Amz-Date" in headers
    assert "X-Amz-Security-Token" not in headers


def test_sigv4_sends_the_session_token_of_temporary_credentials() -> None:
    temporary = Credentials("ASIAEXAMPLE", "secret", "the-session-token")
    headers = SigV4("us-east-1", temporary).headers("GET", "http://127.0.0.1/models", {}, b"")
    assert headers["X-Amz-Security-Token"] == "the-session-token"
    assert "x-amz-security-token" in headers["Authorization"]


def test_sigv4_signature_changes_with_the_body() -> None:
    signer = SigV4("us-east-1", KEYS)
    url = "http://127.0.0.1/models/iris/predict"
    one = signer.headers("POST", url, {}, b'{"instances":[[1]]}')
    two = signer.headers("POST", url, {}, b'{"instances":[[2]]}')
    assert one["Authorization"] != two["Authorization"]


def test_sigv4_takes_region_and_credentials_from_botocores_default_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    signer = SigV4.from_environment()
    assert signer.region == "ap-south-1"
    assert signer.credentials.access_key == "AKIDFROMENV"


def test_sigv4_without_a_region_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ApiAuthError, match="AWS_DEFAULT_REGION"):
        SigV4.from_environment(credentials=KEYS)


def test_auth_for_each_mode() -> None:
    assert isinstance(auth_for("iam", region="us-east-1", credentials=KEYS), SigV4)
    assert auth_for("JWT", token="t") == Bearer("t")
    assert auth_for("NONE") == NoAuth()
    with pytest.raises(ApiAuthError, match="bearer token"):
        auth_for("JWT")
    with pytest.raises(ApiAuthError, match="IAM, JWT, NONE"):
        auth_for("OPEN")


def test_client_sends_the_signed_host_body_and_query(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    client = ApiClient(url, SigV4("us-east-1", KEYS))
    answer = client.post("/models/iris/predict", query={"neighbors": "true"}, json={"a": 1})
    assert answer.status == 200
    assert answer.json() == {"ok": True}
    request = seen[0]
    assert request["path"] == "/models/iris/predict?neighbors=true"
    assert request["body"] == b'{"a": 1}'
    assert request["headers"]["Host"] == url.removeprefix("http://")
    assert request["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert request["headers"]["Content-Type"] == "application/json"


def test_client_returns_error_answers_instead_of_raising(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    answer = ApiClient(url, Bearer("tok")).get("/forbidden")
    assert (answer.status, answer.ok, answer.json()) == (403, False, {"message": "Forbidden"})
    assert answer.headers["content-type"] == "application/json"
    assert seen[0]["headers"]["Authorization"] == "Bearer tok"


def test_client_imports_nothing_heavy() -> None:
    code = (
        "import sys, dropfit_cli.api; "
        "print(sorted(m for m in ('pandas', 'numpy', 'dropfit_local', 'dropfit', 'requests') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_client_percent_encodes_what_a_url_cannot_carry(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    ApiClient(url).get("/models/売上2024")
    ApiClient(url).get("/models/a%20b")  # an escape is kept, not escaped again
    assert [request["path"] for request in seen] == [
        "/models/%E5%A3%B2%E4%B8%8A2024",
        "/models/a%20b",
    ]
