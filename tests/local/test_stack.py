"""LocalStack on a small template of its own: the wiring follows whatever the template says.

Throwaway handlers (written to a temporary folder) stand in for Dropfit's: one records the S3
events its rule lets through, one always fails, one answers an HTTP route.
"""

from __future__ import annotations

import json
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dropfit_local import faults
from dropfit_local.__main__ import _concurrency as cli_concurrency
from dropfit_local.stack import LocalStack, runtime_counts
from dropfit_local.template import read_stack

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    Environment:
      Variables:
        BUCKET: !Ref Bucket
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub ${AWS::StackName}-wiring
      NotificationConfiguration:
        EventBridgeConfiguration:
          EventBridgeEnabled: true
      VersioningConfiguration:
        Status: Enabled
  Failures:
    Type: AWS::SQS::Queue
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.record
      Events:
        TextUploaded:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.s3]
              detail-type: [Object Created]
              detail:
                bucket: {name: [!Ref Bucket]}
                object: {key: [{suffix: .txt}]}
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.fail
      Events:
        BadUploaded:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.s3]
              detail:
                object: {key: [{wildcard: "bad/*"}]}
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt Failures.Arn
  Greeter:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.greet
      Events:
        Hello:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /hello/{name}
Outputs:
  BucketName:
    Value: !Ref Bucket
  ApiUrl:
    Value: !Sub https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}
  FailuresUrl:
    Value: !Ref Failures
"""

HANDLERS = """
import json, os
import boto3

s3 = boto3.client("s3")

def record(event, context):
    key = event["detail"]["object"]["key"]
    s3.put_object(Bucket=os.environ["BUCKET"], Key=f"seen/{key}", Body=json.dumps(event))

def fail(event, context):
    raise RuntimeError("this function always fails")

def greet(event, context):
    return {"hello": event["pathParameters"]["name"], "route": event["routeKey"]}
"""


def write_project(root: Path) -> Path:
    """The template and its handlers in ``root``; returns ``root``."""
    (root / "template.yaml").write_text(TEMPLATE)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text(textwrap.dedent(HANDLERS))
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    root = write_project(tmp_path_factory.mktemp("wiring"))
    stack = LocalStack(
        root=root,
        aws_port=0,
        api_port=0,
        sagemaker_port=0,
        state_dir=root / ".local",
        retry_delays=(0.05,),
        function_concurrency={"recorder": 2},
        fault_injection=True,
        log=lambda _: None,
    )
    with stack:
        yield stack


def wait_for_object(s3: Any, bucket: str, key: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, f"{key} never appeared"
            time.sleep(0.1)


def test_outputs_name_the_local_resources(stack: LocalStack) -> None:
    outputs = json.loads(stack.outputs_path.read_text())
    assert outputs["BucketName"] == "dropfit-local-wiring"
    assert outputs["ApiUrl"] == stack.api_url
    assert outputs["FailuresUrl"].startswith(stack.aws_endpoint_url)
    assert outputs["AwsEndpointUrl"] == stack.aws_endpoint_url


def test_uploads_reach_the_function_whose_rule_matches(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.bucket_name, Key="notes/skipped.csv", Body=b"x")
    s3.put_object(Bucket=stack.bucket_name, Key="notes/a.txt", Body=b"hello")

    event = wait_for_object(s3, stack.bucket_name, "seen/notes/a.txt")

    assert event["detail-type"] == "Object Created"
    assert event["account"] == "123456789012"
    assert event["detail"]["object"]["key"] == "notes/a.txt"
    assert "version-id" in event["detail"]["object"]  # the bucket is versioned, as declared
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket_name)["Contents"]]
    assert "seen/notes/skipped.csv" not in keys


def test_put_events_reach_functions_as_whole_eventbridge_events(stack: LocalStack) -> None:
    # The path the local SageMaker's state-change events take (moto alone drops "account").
    detail = {"bucket": {"name": stack.bucket_name}, "object": {"key": "put/b.txt"}}
    stack.client("events").put_events(
        Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)}]
    )

    event = wait_for_object(stack.client("s3"), stack.bucket_name, "seen/put/b.txt")

    assert {"version", "id", "detail-type", "source", "account", "time", "region"} <= set(event)
    assert (event["account"], event["detail"]) == ("123456789012", detail)


def test_failing_events_land_in_the_templates_destination_after_retries(
    stack: LocalStack,
) -> None:
    stack.client("s3").put_object(Bucket=stack.bucket_name, Key="bad/thing.bin", Body=b"x")
    sqs = stack.client("sqs")
    deadline = time.monotonic() + 20
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=stack.outputs["FailuresUrl"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=1,
        ).get("Messages", [])
    (message,) = messages
    assert json.loads(message["Body"])["detail"]["object"]["key"] == "bad/thing.bin"
    attributes = message["MessageAttributes"]
    assert attributes["ErrorMessage"]["StringValue"] == "this function always fails"
    assert attributes["Attempts"]["StringValue"] == "2"  # MaximumRetryAttempts: 1


def test_an_injected_crash_is_retried_like_any_function_error(stack: LocalStack) -> None:
    assert stack.faults_dir is not None
    faults.inject(stack.faults_dir, "function:Recorder", 1, match="notes/flaky.txt")

    stack.client("s3").put_object(Bucket=stack.bucket_name, Key="notes/flaky.txt", Body=b"x")
    event = wait_for_object(stack.client("s3"), stack.bucket_name, "seen/notes/flaky.txt")

    assert event["detail"]["object"]["key"] == "notes/flaky.txt"
    assert faults.fired(stack.faults_dir, "function:Recorder") == 1
    assert stack.outputs["FaultInjectionDir"] == str(stack.faults_dir)


def test_each_function_runs_its_own_number_of_runtimes(stack: LocalStack) -> None:
    runtimes = {name: len(function.ports) for name, function in stack.functions.items()}
    parallelism = {poller.target.label: poller.parallelism for poller in stack.pollers}

    assert runtimes == {"Recorder": 2, "Failing": 1, "Greeter": 1}
    assert parallelism == {"recorder": 2, "failing": 1}
    assert set(stack.outputs["DeliveryQueueUrls"]) == {
        "Recorder.TextUploaded",
        "Failing.BadUploaded",
    }


def test_runtime_counts_name_functions_by_logical_id_or_label(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    model = read_stack(tmp_path / "template.yaml")

    assert runtime_counts(model, 1, {"Recorder": 3, "greeter": 2}) == {
        "Recorder": 3,
        "Failing": 1,
        "Greeter": 2,
    }
    with pytest.raises(ValueError, match="unknown function"):
        runtime_counts(model, 1, {"predict": 2})
    with pytest.raises(ValueError, match="at least 1"):
        runtime_counts(model, 1, {"failing": 0})


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], (1, {})), (["3"], (3, {})), (["2", "predict=4"], (2, {"predict": 4}))],
)
def test_the_concurrency_option_takes_a_count_or_function_counts(
    values: list[str], expected: tuple[int, dict[str, int]]
) -> None:
    assert cli_concurrency(values) == expected


@pytest.mark.parametrize("value", ["0", "x", "=2", "predict=", "predict=-1"])
def test_the_concurrency_option_refuses_what_is_not_a_positive_count(value: str) -> None:
    with pytest.raises(SystemExit, match="expected N or FUNCTION=N"):
        cli_concurrency([value])


def test_routes_come_from_the_template(stack: LocalStack) -> None:
    response = requests.get(f"{stack.api_url}/hello/world", timeout=30)
    assert response.json() == {"hello": "world", "route": "GET /hello/{name}"}
    assert requests.get(f"{stack.api_url}/goodbye", timeout=30).status_code == 404


def test_stop_leaves_nothing_listening(tmp_path: Path) -> None:
    stack = LocalStack(
        root=write_project(tmp_path),
        aws_port=0,
        api_port=0,
        sagemaker_port=0,
        state_dir=tmp_path,
        log=lambda _: None,
    )
    with stack:
        urls = [stack.aws_endpoint_url, stack.api_url, stack.sagemaker_url]
        ports = [int(url.rsplit(":", 1)[1]) for url in urls]
        ports += [port for function in stack.functions.values() for port in function.ports]
        assert all(_listening(port) for port in ports)
    assert not any(_listening(port) for port in ports)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
