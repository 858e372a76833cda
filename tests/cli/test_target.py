"""Which stack ``dropfit`` talks to: the local one when it is up, or ``--stack NAME`` (its
CloudFormation Outputs, in moto), with requests signed as the stack's ``ApiAuth`` requires."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from dropfit_cli.api import Bearer, NoAuth, SigV4
from dropfit_cli.main import NO_STACK, cli
from dropfit_cli.target import NoTarget, deployed, local

REGION = "eu-west-1"


class Recorder(BaseHTTPRequestHandler):
    """An API that lists no models and keeps each request's headers."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append(dict(self.headers.items()))
        body = json.dumps({"models": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def cloudformation_stack(name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


@mock_aws
def test_a_deployed_stack_is_read_from_its_outputs_and_signed_by_default() -> None:
    cloudformation_stack(
        "prod",
        {
            "ApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/",
            "BucketName": "data-1",
            "IncomingPrefix": "in/",
        },
    )
    target = deployed("prod", REGION)
    assert (target.name, target.region, target.bucket) == ("prod", REGION, "data-1")
    assert target.api_url == "https://abc.execute-api.eu-west-1.amazonaws.com"
    assert target.incoming_prefix == "in/" and not target.is_local
    assert isinstance(target.auth, SigV4) and target.auth.region == REGION


@mock_aws
@pytest.mark.parametrize(
    ("mode", "token", "expected"), [("NONE", None, NoAuth()), ("JWT", "t0k", Bearer("t0k"))]
)
def test_the_api_auth_output_chooses_how_requests_are_authorised(
    mode: str, token: str | None, expected: object
) -> None:
    cloudformation_stack("dev", {"ApiUrl": "https://x/", "BucketName": "b", "ApiAuth": mode})
    assert deployed("dev", REGION, token).auth == expected


@mock_aws
def test_a_jwt_stack_without_a_token_says_how_to_give_one() -> None:
    cloudformation_stack("dev", {"ApiUrl": "https://x/", "BucketName": "b", "ApiAuth": "JWT"})
    with pytest.raises(NoTarget, match=r"bearer token \(--token or \$DROPFIT_TOKEN\)"):
        deployed("dev", REGION)


@mock_aws
def test_a_missing_or_foreign_stack_is_named() -> None:
    with pytest.raises(NoTarget, match=r"stack 'nope'.*does not exist"):
        deployed("nope", REGION)
    cloudformation_stack("other", {"Something": "else"})
    with pytest.raises(NoTarget, match="no ApiUrl, BucketName output: is it a Dropfit stack"):
        deployed("other", REGION)


@mock_aws
def test_commands_sign_requests_to_a_deployed_iam_api(api: str) -> None:
    cloudformation_stack("prod", {"ApiUrl": f"{api}/", "BucketName": "b", "ApiAuth": "IAM"})
    result = CliRunner().invoke(cli, ["models", "--stack", "prod", "--region", REGION])
    assert result.exit_code == 0, result.output
    authorization = Recorder.seen[-1]["Authorization"]
    # the caller's credentials (moto's, inside mock_aws), scoped to the API's region
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=FOOBARKEY/")
    assert f"/{REGION}/execute-api/aws4_request" in authorization


def test_no_local_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(NoTarget, match=r"does not exist\): start one with `dropfit up`"):
        local(tmp_path)


def test_a_local_stack_that_stopped_is_not_a_target(tmp_path: Path, api: str) -> None:
    closed = api.rsplit(":", 1)[0] + ":1"  # nothing listens on port 1
    (tmp_path / "outputs.json").write_text(json.dumps({"ApiUrl": closed, "BucketName": "b"}))
    with pytest.raises(NoTarget, match="is not running: start it with `dropfit up`"):
        local(tmp_path)
    result = CliRunner(env={"DROPFIT_STATE_DIR": str(tmp_path)}).invoke(cli, ["models"])
    assert result.exit_code == NO_STACK and "is not running" in result.output


def test_a_running_local_stack_is_the_default_target(tmp_path: Path, api: str) -> None:
    outputs = {"ApiUrl": api, "BucketName": "b", "AwsEndpointUrl": "http://127.0.0.1:5000"}
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    target = local(tmp_path)
    assert target.is_local and target.auth == NoAuth() and target.region == "us-east-1"
    result = CliRunner(env={"DROPFIT_STATE_DIR": str(tmp_path)}).invoke(cli, ["models"])
    assert result.exit_code == 0 and "no models yet" in result.output
    assert "Authorization" not in Recorder.seen[-1]


def test_the_local_iam_api_is_signed_with_the_keys_in_its_outputs(tmp_path: Path, api: str) -> None:
    outputs = {
        "ApiUrl": api,
        "BucketName": "b",
        "AwsEndpointUrl": "http://127.0.0.1:5000",
        "Region": "eu-west-1",
        "ApiAuth": "IAM",
        "ApiAccessKeyId": "local-key",
        "ApiSecretAccessKey": "local-secret",
    }
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    result = CliRunner(env={"DROPFIT_STATE_DIR": str(tmp_path)}).invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    authorization = Recorder.seen[-1]["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=local-key/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization


def test_a_local_jwt_api_needs_a_token_and_says_how_to_mint_one(tmp_path: Path, api: str) -> None:
    outputs = {"ApiUrl": api, "BucketName": "b", "AwsEndpointUrl": "x", "ApiAuth": "JWT"}
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    with pytest.raises(NoTarget, match="python -m dropfit_local token"):
        local(tmp_path)
    assert local(tmp_path, token="t0k").auth == Bearer("t0k")
