"""The local HTTP API enforces the template's authorisation as API Gateway does: IAM (SigV4),
JWT and NONE, with API Gateway's status codes and ``{"message": ...}`` bodies."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from botocore.credentials import Credentials

from dropfit_cli.api import ApiClient, Bearer, NoAuth, SigV4
from dropfit_local.api_gateway import LocalHttpApi
from dropfit_local.authorizers import (
    INVALID_TOKEN,
    LOCAL_CREDENTIALS,
    SIGNATURE_MISMATCH,
    JwtAuthorizer,
    LocalIssuer,
    NoAuthorizer,
    Request,
    SigV4Authorizer,
    authorizer_for,
)
from dropfit_local.lambda_runtime import InvocationResult
from dropfit_local.template import ApiAuthSpec, HttpRoute

REGION = "us-east-1"
ISSUER = "https://issuer.example/pool"
AUDIENCE = "dropfit-client"
ROUTES = [
    HttpRoute("Fn", "Predict", "Api", "POST", "/models/{model}/predict", "2.0"),
    HttpRoute("Fn", "List", "Api", "GET", "/models", "2.0"),
]


class Function:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, function_id: str, event: dict[str, Any]) -> InvocationResult:
        self.events.append(event)
        return InvocationResult(json.dumps({"ok": True}).encode(), None, 1.0, "")


def serve(authorizer: Any) -> Iterator[tuple[str, Function]]:
    function = Function()
    api = LocalHttpApi(
        ROUTES,
        function.invoke,
        api_id="abc123",
        account_id="123456789012",
        port=0,
        authorizer=authorizer,
        log=lambda _: None,
    )
    api.start()
    try:
        yield api.url, function
    finally:
        api.stop()


@pytest.fixture
def iam_api() -> Iterator[tuple[str, Function]]:
    yield from serve(SigV4Authorizer(REGION))


@pytest.fixture
def issuer() -> LocalIssuer:
    return LocalIssuer(ISSUER)


@pytest.fixture
def jwt_api(issuer: LocalIssuer) -> Iterator[tuple[str, Function]]:
    yield from serve(JwtAuthorizer(ISSUER, (AUDIENCE, "other-client"), issuer.jwks()))


def predict(url: str, auth: Any, **options: Any) -> Any:
    return ApiClient(url, auth).post("/models/iris/predict", json={"instances": [[1]]}, **options)


# ---------------------------------------------------------------------------- IAM


def test_iam_refuses_unsigned_requests_with_403_forbidden(
    iam_api: tuple[str, Function],
) -> None:
    url, function = iam_api
    answer = predict(url, NoAuth())
    assert (answer.status, answer.json()) == (403, {"message": "Forbidden"})
    assert function.events == []


def test_iam_accepts_requests_signed_with_the_local_keys(iam_api: tuple[str, Function]) -> None:
    url, function = iam_api
    answer = predict(url, SigV4(REGION, LOCAL_CREDENTIALS), query={"neighbors": "true"})
    assert (answer.status, answer.json()) == (200, {"ok": True})
    (event,) = function.events
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == "testing"
    assert event["queryStringParameters"] == {"neighbors": "true"}


def test_iam_accepts_temporary_credentials_with_a_session_token(
    iam_api: tuple[str, Function],
) -> None:
    url, _ = iam_api
    temporary = Credentials("testing", "testing", "a-session-token")
    assert ApiClient(url, SigV4(REGION, temporary)).get("/models").status == 200


def test_iam_refuses_a_wrong_secret_as_a_signature_mismatch(
    iam_api: tuple[str, Function],
) -> None:
    url, function = iam_api
    answer = predict(url, SigV4(REGION, Credentials("testing", "not-the-secret")))
    assert (answer.status, answer.json()) == (403, {"message": SIGNATURE_MISMATCH})
    assert function.events == []


def test_iam_refuses_an_unknown_access_key(iam_api: tuple[str, Function]) -> None:
    url, _ = iam_api
    answer = predict(url, SigV4(REGION, Credentials("AKIDUNKNOWN", "testing")))
    assert (answer.status, answer.json()) == (403, {"message": INVALID_TOKEN})


def test_iam_refuses_another_region_or_service(iam_api: tuple[str, Function]) -> None:
    url, _ = iam_api
    answer = predict(url, SigV4("eu-west-1", LOCAL_CREDENTIALS))
    assert answer.status == 403
    assert "scoped to a valid region, not 'eu-west-1'" in answer.json()["message"]


def test_iam_refuses_a_body_other_than_the_signed_one(iam_api: tuple[str, Function]) -> None:
    url, function = iam_api
    target = f"{url}/models/iris/predict"
    host = url.removeprefix("http://")
    signed = SigV4(REGION, LOCAL_CREDENTIALS).headers(
        "POST", target, {"Host": host}, b'{"instances": [[1]]}'
    )
    answer = ApiClient(url).post(
        "/models/iris/predict", body=b'{"instances": [[2]]}', headers=signed
    )
    assert (answer.status, answer.json()) == (403, {"message": SIGNATURE_MISMATCH})
    assert function.events == []


def test_iam_refuses_a_tampered_signature(iam_api: tuple[str, Function]) -> None:
    url, _ = iam_api
    host = url.removeprefix("http://")
    signed = SigV4(REGION, LOCAL_CREDENTIALS).headers("GET", f"{url}/models", {"Host": host}, b"")
    last = signed["Authorization"][-1]
    signed["Authorization"] = signed["Authorization"][:-1] + ("0" if last != "0" else "1")
    answer = ApiClient(url).get("/models", headers=signed)
    assert (answer.status, answer.json()) == (403, {"message": SIGNATURE_MISMATCH})


def test_iam_refuses_a_signature_older_than_five_minutes() -> None:
    request_time = time.time()
    signed_at = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(request_time))
    authorizer = SigV4Authorizer(REGION, clock=lambda: request_time + 301)
    headers = SigV4(REGION, LOCAL_CREDENTIALS).headers(
        "GET", "http://127.0.0.1:3000/models", {"Host": "127.0.0.1:3000"}, b""
    )
    verdict = authorizer.authorize(
        Request("GET", "/models", [("Host", "127.0.0.1:3000"), *headers.items()], b"")
    )
    assert verdict.status == 403  # type: ignore[union-attr]
    assert verdict.message.startswith(f"Signature expired: {signed_at} is now earlier than")  # type: ignore[union-attr]


def test_iam_refuses_a_non_sigv4_authorization_header(iam_api: tuple[str, Function]) -> None:
    url, _ = iam_api
    answer = ApiClient(url, Bearer("a-token")).get("/models")
    assert answer.status == 403
    assert "Authorization header requires 'Credential' parameter." in answer.json()["message"]


def test_unknown_routes_stay_404_whatever_the_authorisation(
    iam_api: tuple[str, Function],
) -> None:
    url, _ = iam_api
    answer = ApiClient(url).get("/nowhere")
    assert (answer.status, answer.json()) == (404, {"message": "Not Found"})


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_is_accepted(iam_api: tuple[str, Function]) -> None:
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True)
    number = tuple(int(n) for n in version.stdout.split()[1].split(".")[:2])
    if number < (7, 75):
        pytest.skip(f"curl {version.stdout.split()[1]} predates --aws-sigv4 (7.75)")
    url, function = iam_api

    def curl(user: str) -> tuple[int, str]:
        done = subprocess.run(
            [
                "curl", "-sS", "-o", "-", "-w", "\n%{http_code}",
                "--aws-sigv4", f"aws:amz:{REGION}:execute-api", "--user", user,
                "-H", "content-type: application/json",
                "-d", '{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
                f"{url}/models/iris/predict?neighbors=true",
            ],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body

    assert curl("testing:testing") == (200, '{"ok": true}')
    assert function.events[0]["body"] == '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    status, body = curl("testing:wrong")
    assert (status, json.loads(body)) == (403, {"message": SIGNATURE_MISMATCH})


# ---------------------------------------------------------------------------- JWT


def test_jwt_accepts_a_valid_token_and_passes_its_claims(
    jwt_api: tuple[str, Function], issuer: LocalIssuer
) -> None:
    url, function = jwt_api
    answer = predict(url, Bearer(issuer.mint(AUDIENCE, subject="alice")))
    assert (answer.status, answer.json()) == (200, {"ok": True})
    claims = function.events[0]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert (claims["sub"], claims["iss"], claims["aud"]) == ("alice", ISSUER, AUDIENCE)


def test_jwt_accepts_a_token_without_the_bearer_prefix(
    jwt_api: tuple[str, Function], issuer: LocalIssuer
) -> None:
    url, _ = jwt_api
    token = issuer.mint("other-client")
    assert ApiClient(url).get("/models", headers={"Authorization": token}).status == 200


def test_jwt_accepts_cognito_access_tokens_by_client_id(
    jwt_api: tuple[str, Function], issuer: LocalIssuer
) -> None:
    url, _ = jwt_api
    now = int(time.time())
    claims = {"iss": ISSUER, "client_id": AUDIENCE, "exp": now + 60, "token_use": "access"}
    token = jwt.encode(claims, issuer.key, algorithm="RS256", headers={"kid": issuer.key_id})
    assert ApiClient(url, Bearer(token)).get("/models").status == 200


def _refusal(answer: Any) -> tuple[int, Any, str]:
    return answer.status, answer.json(), answer.headers.get("www-authenticate", "")


def test_jwt_refuses_a_missing_token(jwt_api: tuple[str, Function]) -> None:
    url, function = jwt_api
    status, body, _ = _refusal(predict(url, NoAuth()))
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert function.events == []


def test_jwt_refuses_an_expired_token(jwt_api: tuple[str, Function], issuer: LocalIssuer) -> None:
    url, function = jwt_api
    status, body, why = _refusal(predict(url, Bearer(issuer.mint(AUDIENCE, expires_in=-1))))
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert why == 'Bearer scope="" error="invalid_token" error_description="the token has expired"'
    assert function.events == []


def test_jwt_refuses_a_token_for_another_audience(
    jwt_api: tuple[str, Function], issuer: LocalIssuer
) -> None:
    url, _ = jwt_api
    status, body, why = _refusal(predict(url, Bearer(issuer.mint("someone-else"))))
    assert (status, body) == (401, {"message": "Unauthorized"})
    assert 'error_description="the token does not have a valid audience"' in why


def test_jwt_refuses_a_token_of_another_issuer(
    jwt_api: tuple[str, Function], issuer: LocalIssuer
) -> None:
    url, _ = jwt_api
    token = issuer.mint(AUDIENCE, issuer="https://attacker.example")
    status, _, why = _refusal(predict(url, Bearer(token)))
    assert status == 401
    assert 'error_description="the token does not have a valid issuer"' in why


def test_jwt_refuses_a_token_signed_by_another_key(
    jwt_api: tuple[str, Function], issuer: LocalIssuer
) -> None:
    url, _ = jwt_api
    forger = LocalIssuer(ISSUER, key_id=issuer.key_id)  # same key id, its own key
    status, _, why = _refusal(predict(url, Bearer(forger.mint(AUDIENCE))))
    assert status == 401
    assert "signature is invalid" in why


def test_jwt_refuses_unsigned_and_symmetric_tokens(
    jwt_api: tuple[str, Function], issuer: LocalIssuer
) -> None:
    url, _ = jwt_api
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}
    for algorithm, key in (("none", None), ("HS256", "a-shared-secret-of-32-bytes-or-more")):
        token = jwt.encode(claims, key, algorithm=algorithm, headers={"kid": issuer.key_id})
        assert _refusal(predict(url, Bearer(token)))[0] == 401, algorithm


# ---------------------------------------------------------------------------- NONE and wiring


def test_none_lets_every_request_through() -> None:
    for url, function in serve(NoAuthorizer()):
        assert predict(url, NoAuth()).status == 200
        assert "authorizer" not in function.events[0]["requestContext"]


def test_the_template_mode_chooses_the_authorizer(issuer: LocalIssuer) -> None:
    assert isinstance(authorizer_for(ApiAuthSpec("IAM"), region=REGION), SigV4Authorizer)
    jwt_spec = ApiAuthSpec("JWT", ISSUER, (AUDIENCE,))
    assert isinstance(authorizer_for(jwt_spec, region=REGION, issuer=issuer), JwtAuthorizer)
    assert isinstance(authorizer_for(ApiAuthSpec("NONE"), region=REGION), NoAuthorizer)
