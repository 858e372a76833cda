"""Every API function answers its errors through public_text: no ARNs or buckets, whoever raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from dropfit.api_errors import register_error_handlers
from dropfit.errors import BadRequest

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/dropfit-1a2b3c4d-iris"


def _event(path: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"DELETE {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "http": {"method": "DELETE", "path": path, "sourceIp": "127.0.0.1"},
            "requestId": "r-1",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    "message",
    [
        f"Could not delete {ARN}.",
        "Could not read s3://dropfit-uploads-123456789012/incoming/x.csv.",
    ],
)
def test_an_error_message_naming_internals_is_answered_without_them(message: str) -> None:
    app = APIGatewayHttpResolver()
    register_error_handlers(app, Logger(service="test"), routes_hint="docs/openapi.yaml")

    @app.delete("/models/<model>")
    def delete(model: str) -> dict[str, Any]:
        raise BadRequest(message)

    answer = app.resolve(_event("/models/iris"), None)  # type: ignore[arg-type]
    error = json.loads(answer["body"])["error"]
    assert answer["statusCode"] == 400
    assert error["code"] == "BadRequest"
    assert "arn:aws" not in error["message"]
    assert "s3://" not in error["message"]
    assert "123456789012" not in error["message"]
    assert error["message"].startswith("Could not")
