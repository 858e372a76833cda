"""dropfit_local.api_gateway: routing, payload 2.0 events and responses, API Gateway errors."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dropfit_local.api_gateway import (
    LocalHttpApi,
    MalformedResponse,
    Router,
    build_event,
    is_text,
    to_http_response,
)
from dropfit_local.lambda_runtime import InvocationResult
from dropfit_local.template import HttpRoute


def route(method: str, path: str, function: str = "Fn") -> HttpRoute:
    return HttpRoute(function, f"{method}{path}", "Api", method, path, "2.0")


ROUTES = [
    route("POST", "/models/{model}/predict"),
    route("GET", "/models"),
    route("GET", "/models/{model}"),
    route("GET", "/models/special"),
    route("ANY", "/models/special"),
    route("GET", "/files/{path+}"),
]


# ---------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("method", "path", "route_key", "parameters"),
    [
        ("GET", "/models", "GET /models", {}),
        ("GET", "/models/iris", "GET /models/{model}", {"model": "iris"}),
        ("POST", "/models/iris/predict", "POST /models/{model}/predict", {"model": "iris"}),
        ("GET", "/models/special", "GET /models/special", {}),  # static beats {model}
        ("DELETE", "/models/special", "ANY /models/special", {}),  # a method beats ANY
        ("GET", "/models/a%20b", "GET /models/{model}", {"model": "a b"}),
        ("GET", "/files/a/b/c.txt", "GET /files/{path+}", {"path": "a/b/c.txt"}),
    ],
)
def test_the_most_specific_route_wins(
    method: str, path: str, route_key: str, parameters: dict[str, str]
) -> None:
    found = Router(ROUTES).match(method, path)
    assert found is not None
    assert (found[0].route_key, found[1]) == (route_key, parameters)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/models"), ("GET", "/nothing"), ("GET", "/models/iris/predict"), ("GET", "/files")],
)
def test_unmatched_requests_have_no_route(method: str, path: str) -> None:
    assert Router(ROUTES).match(method, path) is None


def test_default_route_catches_the_rest() -> None:
    router = Router([*ROUTES, route("ANY", "$default", "Other")])
    found = router.match("PUT", "/anything/at/all")
    assert found is not None and found[0].route_key == "$default"
    found = router.match("GET", "/models")
    assert found is not None and found[0].route_key == "GET /models"


# ---------------------------------------------------------------------------- events


def event_for(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "method": "POST",
        "raw_path": "/models/iris/predict",
        "raw_query": "neighbors=true&x=1&x=2&empty=",
        "headers": [
            ("Host", "127.0.0.1:3000"),
            ("Content-Type", "application/json"),
            ("User-Agent", "curl/8"),
            ("X-Multi", "a"),
            ("x-multi", "b"),
            ("Cookie", "session=abc; theme=dark"),
        ],
        "body": b'{"instances": [[1, 2]]}',
        "route": ROUTES[0],
        "path_parameters": {"model": "iris"},
        "source_ip": "127.0.0.1",
        "api_id": "abc123",
        "account_id": "123456789012",
        "request_id": "req-1",
        "now": 1_700_000_000.123,
    }
    arguments.update(overrides)
    return build_event(**arguments)


def test_events_have_the_payload_2_0_shape() -> None:
    event = event_for()
    assert event == {
        "version": "2.0",
        "routeKey": "POST /models/{model}/predict",
        "rawPath": "/models/iris/predict",
        "rawQueryString": "neighbors=true&x=1&x=2&empty=",
        "cookies": ["session=abc", "theme=dark"],
        "headers": {
            "host": "127.0.0.1:3000",
            "content-type": "application/json",
            "user-agent": "curl/8",
            "x-multi": "a,b",
        },
        "queryStringParameters": {"neighbors": "true", "x": "1,2", "empty": ""},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "127.0.0.1:3000",
            "domainPrefix": "127",
            "http": {
                "method": "POST",
                "path": "/models/iris/predict",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "curl/8",
            },
            "requestId": "req-1",
            "routeKey": "POST /models/{model}/predict",
            "stage": "$default",
            "time": "14/Nov/2023:22:13:20 +0000",
            "timeEpoch": 1_700_000_000_123,
        },
        "pathParameters": {"model": "iris"},
        "body": '{"instances": [[1, 2]]}',
        "isBase64Encoded": False,
    }


def test_optional_fields_are_absent_when_empty() -> None:
    event = event_for(raw_query="", headers=[("Host", "h")], body=b"", path_parameters={})
    assert not {"cookies", "queryStringParameters", "pathParameters", "body"} & set(event)
    assert event["isBase64Encoded"] is False


def test_binary_bodies_are_base64_encoded() -> None:
    payload = bytes(range(256))
    event = event_for(headers=[("Content-Type", "application/octet-stream")], body=payload)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("text/csv", True),
        ("application/vnd.api+json", True),
        ("application/x-www-form-urlencoded", True),
        ("application/octet-stream", False),
        ("image/png", False),
        (None, False),
    ],
)
def test_text_content_types(content_type: str | None, text: bool) -> None:
    assert is_text(content_type) is text


# ---------------------------------------------------------------------------- responses


def test_a_full_response_maps_status_headers_cookies_and_body() -> None:
    response = to_http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-Id": 7},
            "cookies": ["a=1", "b=2; Secure"],
            "body": "created",
        }
    )
    assert response.status == 201
    assert response.headers == [
        ("Content-Type", "text/plain"),
        ("X-Id", "7"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2; Secure"),
    ]
    assert response.body == b"created"


def test_base64_bodies_are_decoded() -> None:
    response = to_http_response(
        {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b"\x00\x01").decode()}
    )
    assert response.body == b"\x00\x01"


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        ({"models": []}, b'{"models": []}'),  # a dict without statusCode is the body
        ("plain text", b"plain text"),  # a string is the body as it is
        ([1, 2], b"[1, 2]"),
        (3, b"3"),
        (None, b"null"),
    ],
)
def test_other_answers_are_200_json(answer: Any, body: bytes) -> None:
    response = to_http_response(answer)
    assert (response.status, response.headers, response.body) == (
        200,
        [("Content-Type", "application/json")],
        body,
    )


@pytest.mark.parametrize("status", ["teapot", None, 1000])
def test_malformed_status_codes_are_refused(status: Any) -> None:
    with pytest.raises(MalformedResponse):
        to_http_response({"statusCode": status})


# ---------------------------------------------------------------------------- the server


class FakeFunctions:
    """Answers as a function would; remembers the events it got."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer: Any = {"statusCode": 200, "body": "ok"}
        self.error: dict[str, Any] | None = None

    def invoke(self, function_id: str, event: dict[str, Any]) -> InvocationResult:
        self.events.append(event)
        if self.error is not None:
            return InvocationResult(json.dumps(self.error).encode(), "Unhandled", 1.0, "")
        return InvocationResult(json.dumps(self.answer).encode(), None, 1.0, "")


@pytest.fixture
def served() -> Iterator[tuple[str, FakeFunctions]]:
    functions = FakeFunctions()
    api = LocalHttpApi(
        ROUTES,
        functions.invoke,
        api_id="abc123",
        account_id="123456789012",
        port=0,
        log=lambda _: None,
    )
    api.start()
    yield api.url, functions
    api.stop()


def test_requests_reach_the_function_as_events(served: tuple[str, FakeFunctions]) -> None:
    url, functions = served
    functions.answer = {"statusCode": 202, "headers": {"content-type": "text/csv"}, "body": "a,b"}
    response = requests.post(
        f"{url}/models/iris/predict?neighbors=true",
        data="1,2",
        headers={"Content-Type": "text/csv"},
    )
    assert (response.status_code, response.text) == (202, "a,b")
    assert response.headers["content-type"] == "text/csv"
    assert response.headers["apigw-requestid"]
    (event,) = functions.events
    assert event["routeKey"] == "POST /models/{model}/predict"
    assert event["pathParameters"] == {"model": "iris"}
    assert event["queryStringParameters"] == {"neighbors": "true"}
    assert (event["body"], event["isBase64Encoded"]) == ("1,2", False)
    assert event["requestContext"]["requestId"] == response.headers["apigw-requestid"]


def test_unknown_routes_are_404_not_found(served: tuple[str, FakeFunctions]) -> None:
    url, functions = served
    response = requests.get(f"{url}/nowhere")
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})
    assert functions.events == []


def test_function_errors_are_500_internal_server_error(served: tuple[str, FakeFunctions]) -> None:
    url, functions = served
    functions.error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}
    response = requests.get(f"{url}/models")
    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_malformed_function_answers_are_500(served: tuple[str, FakeFunctions]) -> None:
    url, functions = served
    functions.answer = {"statusCode": "not a number"}
    assert requests.get(f"{url}/models").status_code == 500


def test_bodies_over_10_mb_are_413_without_calling_the_function(
    served: tuple[str, FakeFunctions],
) -> None:
    url, functions = served
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/models/iris/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(10 * 1024 * 1024 + 1))
    connection.endheaders()  # the body is never sent: the answer comes from the headers alone
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (
        413,
        {"message": "Request Entity Too Large"},
    )
    connection.close()
    assert functions.events == []
