"""dropfit_local.template: intrinsics resolved to local values (small template and the real one)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from dropfit import settings

from dropfit_local.stack import JoinedStack, LocalStack
from dropfit_local.template import (
    ApiAuthSpec,
    StackModel,
    TemplateError,
    load_template,
    merge_globals,
    read_stack,
)

ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "http://127.0.0.1:5999"

SYNTHETIC = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Prefix:
    Type: String
    Default: demo
    AllowedPattern: ^[a-z]+$
  Size:
    Type: Number
    Default: 128
    AllowedValues: [128, 256]
  Email:
    Type: String
    Default: ""
Conditions:
  HasEmail: !Not [!Equals [!Ref Email, ""]]
  IsBig: !Equals [!Ref Size, 256]
Mappings:
  Layout:
    Prefix:
      Incoming: in/
  Images:
    us-east-1:
      Uri: 111.dkr.ecr.us-east-1.amazonaws.com/knn:1
Globals:
  Function:
    Runtime: python3.13
    Handler: app.handler
    Timeout: 10
    Layers:
      - !Ref Shared
    Environment:
      Variables:
        TABLE: !Ref Table
        LEVEL: INFO
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      NotificationConfiguration:
        EventBridgeConfiguration:
          EventBridgeEnabled: true
      VersioningConfiguration:
        Status: Enabled
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub ${Prefix}-runs
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: gsi, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: by-gsi
          KeySchema: [{AttributeName: gsi, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
      BillingMode: PAY_PER_REQUEST
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      DisplayName: !Join [" ", [!Ref Prefix, failures]]
  Dlq:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 600
  Subscription:
    Type: AWS::SNS::Subscription
    Condition: HasEmail
    Properties:
      TopicArn: !Ref Topic
      Protocol: email
      Endpoint: !Ref Email
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/worker/
      MemorySize: !If [IsBig, 1024, !Ref Size]
      Timeout: 60
      Layers:
        - !Ref Shared
      Environment:
        Variables:
          LEVEL: DEBUG
          BUCKET: !Ref Bucket
          BUCKET_ARN: !GetAtt Bucket.Arn
          QUEUE_URL: !GetAtt Dlq.QueueUrl
          KEY_PATTERN: !Sub
            - ${Bucket.Arn}/${Start}*
            - Start: !FindInMap [Layout, Prefix, Incoming]
          IMAGE: !FindInMap [Images, !Ref AWS::Region, Uri]
          LITERAL: !Sub "${!NotAVariable}-${AWS::AccountId}"
          FIRST: !Select [0, !Split [".", !FindInMap [Images, !Ref AWS::Region, Uri]]]
          ALARM: !If [HasEmail, !Ref Email, !Ref AWS::NoValue]
          STACK: !Ref AWS::StackName
      Events:
        Uploaded:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.s3]
              detail:
                bucket:
                  name: [!Ref Bucket]
                object:
                  key: [{prefix: !FindInMap [Layout, Prefix, Incoming]}]
            DeadLetterConfig:
              Arn: !GetAtt Dlq.Arn
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt Dlq.Arn
  Api:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/api/
      Events:
        Item:
          Type: HttpApi
          Properties:
            Method: get
            Path: /items/{id}
        Fallback:
          Type: HttpApi
  Disabled:
    Type: AWS::Serverless::Function
    Condition: HasEmail
    Properties:
      CodeUri: src/disabled/
Outputs:
  BucketName:
    Value: !Ref Bucket
  ApiUrl:
    Value: !Sub https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1
  Email:
    Condition: HasEmail
    Value: !Ref Email
"""


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(SYNTHETIC))
    return path


def test_short_forms_load_as_long_forms(synthetic: Path) -> None:
    template = load_template(synthetic)
    worker = template["Resources"]["Worker"]["Properties"]
    assert worker["Environment"]["Variables"]["BUCKET_ARN"] == {"Fn::GetAtt": ["Bucket", "Arn"]}
    assert worker["MemorySize"] == {"Fn::If": ["IsBig", 1024, {"Ref": "Size"}]}


def test_functions_merge_globals_and_resolve_every_intrinsic(synthetic: Path) -> None:
    model = read_stack(synthetic, aws_endpoint_url=ENDPOINT)
    worker = model.function("Worker")

    assert worker.name == "dropfit-local-Worker"
    assert worker.code_uri == synthetic.parent / "src" / "worker"
    assert (worker.handler, worker.runtime, worker.timeout, worker.memory_size) == (
        "app.handler",
        "python3.13",
        60,
        128,
    )
    # Globals lists add up (SAM's rule): the layer is listed twice, as SAM would pass it twice.
    assert worker.layers == (synthetic.parent / "layer", synthetic.parent / "layer")
    assert worker.environment == {
        "TABLE": "demo-runs",
        "LEVEL": "DEBUG",  # the function's value wins over Globals
        "BUCKET": "dropfit-local-bucket",
        "BUCKET_ARN": "arn:aws:s3:::dropfit-local-bucket",
        "QUEUE_URL": f"{ENDPOINT}/123456789012/dropfit-local-Dlq",
        "KEY_PATTERN": "arn:aws:s3:::dropfit-local-bucket/in/*",
        "IMAGE": "111.dkr.ecr.us-east-1.amazonaws.com/knn:1",
        "LITERAL": "${NotAVariable}-123456789012",
        "FIRST": "111",
        "STACK": "dropfit-local",
    }  # ALARM is AWS::NoValue without an e-mail: absent
    assert worker.max_retry_attempts == 1
    assert worker.on_failure_arn == "arn:aws:sqs:us-east-1:123456789012:dropfit-local-Dlq"


def test_parameter_overrides_flow_into_conditions_and_names(synthetic: Path) -> None:
    model = read_stack(
        synthetic, parameters={"Size": "256", "Email": "ops@example.com", "Prefix": "other"}
    )
    assert model.function("Worker").memory_size == 1024
    assert model.function("Worker").environment["ALARM"] == "ops@example.com"
    assert model.function("Worker").environment["TABLE"] == "other-runs"
    assert "Disabled" in {f.logical_id for f in model.functions}
    assert model.outputs["Email"] == "ops@example.com"


def test_resources_with_a_false_condition_are_left_out(synthetic: Path) -> None:
    model = read_stack(synthetic)
    assert {f.logical_id for f in model.functions} == {"Worker", "Api"}
    assert "Email" not in model.outputs


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Size": "512"}, "is not one of"),
        ({"Prefix": "Upper"}, "does not match"),
        ({"Nope": "1"}, "unknown parameter"),
    ],
)
def test_invalid_parameters_are_refused(
    synthetic: Path, parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        read_stack(synthetic, parameters=parameters)


def test_rules_routes_and_resources_come_from_the_template(synthetic: Path) -> None:
    model = read_stack(synthetic, aws_endpoint_url=ENDPOINT)

    (rule,) = model.function("Worker").rules
    assert rule.rule_name == "dropfit-local-WorkerUploaded"
    assert rule.pattern == {
        "source": ["aws.s3"],
        "detail": {
            "bucket": {"name": ["dropfit-local-bucket"]},
            "object": {"key": [{"prefix": "in/"}]},
        },
    }
    assert rule.dead_letter_arn == "arn:aws:sqs:us-east-1:123456789012:dropfit-local-Dlq"
    assert rule.retry_attempts is None

    assert [(r.method, r.path, r.route_key) for r in model.function("Api").routes] == [
        ("GET", "/items/{id}", "GET /items/{id}"),
        ("ANY", "$default", "$default"),
    ]
    (api,) = model.apis
    assert api.logical_id == "ServerlessHttpApi"

    (bucket,) = model.buckets
    assert (bucket.name, bucket.versioning, bucket.eventbridge) == (
        "dropfit-local-bucket",
        True,
        True,
    )
    (table,) = model.tables
    assert table.create_arguments["TableName"] == "demo-runs"
    assert table.create_arguments["GlobalSecondaryIndexes"][0]["IndexName"] == "by-gsi"
    (topic,) = model.topics
    assert topic.attributes == {"DisplayName": "demo failures"}
    (queue,) = model.queues
    assert (queue.url, queue.attributes) == (
        f"{ENDPOINT}/123456789012/dropfit-local-Dlq",
        {"MessageRetentionPeriod": "600"},
    )
    assert model.queue_url_for_arn(queue.arn) == queue.url


def test_api_url_outputs_point_at_the_local_api(synthetic: Path) -> None:
    model = read_stack(synthetic)
    assert model.outputs["ApiUrl"].startswith("https://")
    assert model.local_outputs("http://127.0.0.1:3000")["ApiUrl"] == "http://127.0.0.1:3000/v1"


def test_unknown_references_name_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      CodeUri: src/\n      Handler: app.h\n      Environment:\n        Variables:\n"
        "          X: !GetAtt Nowhere.Arn\n"
    )
    with pytest.raises(TemplateError, match="Nowhere"):
        read_stack(path)


def test_merge_globals_follows_sam_rules() -> None:
    merged = merge_globals(
        {"Timeout": 3, "Layers": ["a"], "Environment": {"Variables": {"A": "1", "B": "1"}}},
        {"Timeout": 9, "Layers": ["b"], "Environment": {"Variables": {"B": "2"}}},
    )
    assert merged == {
        "Timeout": 9,
        "Layers": ["a", "b"],
        "Environment": {"Variables": {"A": "1", "B": "2"}},
    }


# ---------------------------------------------------------------------------- the real template


@pytest.fixture(scope="module")
def real() -> StackModel:
    return read_stack(ROOT / "template.yaml", aws_endpoint_url=ENDPOINT)


def test_real_template_functions_get_every_variable_their_settings_read(real: StackModel) -> None:
    expected: dict[str, Any] = {
        "FormatFunction": settings.FormatSettings,
        "DeployFunction": settings.DeploySettings,
        "PredictFunction": settings.PredictSettings,
        "ReportFunction": settings.ReportSettings,
        "ManageFunction": settings.ManageSettings,
    }
    assert {f.logical_id for f in real.functions} == set(expected)
    for function in real.functions:
        # Parsing succeeds: every variable the function reads is set and well-formed.
        expected[function.logical_id].from_env(function.environment)
        assert all("${" not in v and "Fn::" not in v for v in function.environment.values())
        assert function.code_uri.is_dir() and (function.code_uri / "app.py").is_file()
        assert all(layer.is_dir() for layer in function.layers)


def test_real_template_wires_rules_to_local_resources(real: StackModel) -> None:
    (bucket,) = real.buckets
    assert bucket.versioning and bucket.eventbridge
    rules = {rule.event_id: rule for rule in real.function("FormatFunction").rules}
    assert set(rules) == {"ObjectCreated", "ProcessingStateChange"}
    upload_rule = rules["ObjectCreated"]
    assert upload_rule.pattern["detail"]["bucket"]["name"] == [bucket.name]
    env = real.function("FormatFunction").environment
    assert env["BUCKET_NAME"] == bucket.name
    assert env["TABLE_NAME"] == real.tables[0].name
    assert env["FAILURE_TOPIC_ARN"] == real.topics[0].arn
    dead_letter = real.queue_url_for_arn(str(upload_rule.dead_letter_arn))
    assert dead_letter.startswith(ENDPOINT)
    assert {rule.event_id for rule in real.function("DeployFunction").rules} == {
        "TrainingStateChange",
        "EndpointStateChange",
    }


def test_real_template_outputs_resolve_to_local_values(real: StackModel) -> None:
    declared = set(load_template(ROOT / "template.yaml")["Outputs"])
    outputs = real.local_outputs("http://127.0.0.1:3000")
    assert set(outputs) == declared - {"JwtIssuer"}  # the default ApiAuth is IAM
    assert outputs["ApiUrl"] == "http://127.0.0.1:3000"
    assert outputs["BucketName"] == real.buckets[0].name
    assert all(isinstance(v, str) and "${" not in v for v in outputs.values())


def test_real_template_api_needs_sigv4_by_default(real: StackModel) -> None:
    (api,) = real.apis
    assert api.auth == ApiAuthSpec("IAM")
    assert real.function("PredictFunction").environment["ALLOW_NEIGHBORS"] == "false"


def test_real_template_api_checks_jwts_of_the_given_issuer_and_audiences() -> None:
    model = read_stack(
        ROOT / "template.yaml",
        parameters={
            "ApiAuth": "JWT",
            "JwtIssuer": "https://issuer.example",
            "JwtAudience": "one,two",
        },
        aws_endpoint_url=ENDPOINT,
    )
    (api,) = model.apis
    assert api.auth == ApiAuthSpec("JWT", "https://issuer.example", ("one", "two"))
    assert model.outputs["JwtIssuer"] == "https://issuer.example"


def test_real_template_jwt_mode_refuses_a_missing_issuer() -> None:
    with pytest.raises(TemplateError, match="needs an issuer and an audience"):
        read_stack(ROOT / "template.yaml", parameters={"ApiAuth": "JWT"})


def test_real_template_api_is_open_only_when_asked(tmp_path: Path) -> None:
    model = read_stack(ROOT / "template.yaml", parameters={"ApiAuth": "NONE"})
    assert model.apis[0].auth == ApiAuthSpec("NONE")


def test_a_route_of_its_own_authorisation_is_refused(synthetic: Path) -> None:
    text = synthetic.read_text()
    assert "Type: HttpApi\n          Properties:\n" in text
    synthetic.write_text(
        text.replace(
            "Type: HttpApi\n          Properties:\n",
            "Type: HttpApi\n          Properties:\n            Auth: {Authorizer: NONE}\n",
            1,
        )
    )
    with pytest.raises(TemplateError, match="a route's own Auth is not supported locally"):
        read_stack(synthetic)


def test_each_stack_name_gets_a_stack_id_and_so_a_sagemaker_prefix_of_its_own() -> None:
    first = read_stack(ROOT / "template.yaml")
    again = read_stack(ROOT / "template.yaml")
    other = read_stack(ROOT / "template.yaml", pseudo_parameters={"AWS::StackName": "b"})

    prefixes = [m.function("FormatFunction").environment["NAME_PREFIX"] for m in (first, again)]
    assert prefixes[0] == prefixes[1]  # a restarted stack keeps its names
    assert re.fullmatch(r"dropfit-[0-9a-f]{8}", prefixes[0])
    assert other.function("FormatFunction").environment["NAME_PREFIX"] != prefixes[0]
    assert first.resolver.pseudo["AWS::StackId"].startswith(
        "arn:aws:cloudformation:us-east-1:123456789012:stack/dropfit-local/"
    )
    assert first.outputs["SageMakerNamePrefix"] == prefixes[0]


def test_a_stack_cannot_join_a_stack_of_its_own_name() -> None:
    joined = JoinedStack("dropfit-local", "http://127.0.0.1:1", "http://127.0.0.1:2")
    with pytest.raises(ValueError, match="is the joined stack's: give this one another name"):
        LocalStack(join=joined)
