"""What the handler tests share: each function's environment, the moto stack built from
template.yaml, events made from events/*.json, a spy on AWS calls and a SageMaker script.

The environment is the one `sam local invoke --env-vars events/env.json` gives each function,
limited to what its settings class reads (plus Powertools); the moto resources are named after
those values and shaped by the template's properties, so tests, template and samples agree.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Self
from urllib.parse import urlencode

import boto3
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber
from dropfit.aws.table import RunsTable
from dropfit.records import ModelRecord, Run, RunStatus
from dropfit.run_metadata import metadata_key
from dropfit.sagemaker_requests import model_request, serverless_endpoint_config_request
from dropfit.settings import (
    DeploySettings,
    FormatSettings,
    ManageSettings,
    PredictSettings,
    ReportSettings,
)
from dropfit.upload_order import upload_order

from tests.metadata_fixture import iris_metadata
from tests.template_utils import ROOT, load_template

EVENTS = ROOT / "events"
IRIS_FEATURES = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]
# The SageMaker name prefix of the stack behind events/env.json ({NamePrefix}-{stack id}).
PREFIX: str = json.loads((EVENTS / "env.json").read_text())["FormatFunction"]["NAME_PREFIX"]
# Two uploads of iris an hour apart, as the tests that arrange the table seed them (seed_run).
ENDPOINT = f"{PREFIX}-iris"
OLD = f"{PREFIX}-iris-0a0a0a0a0a0a"  # uploaded first
NEW = f"{PREFIX}-iris-1b1b1b1b1b1b"  # uploaded an hour later
OLD_AT = "2025-03-14T09:00:00.000Z"
NEW_AT = "2025-03-14T10:00:00.000Z"
METRICS = {"test:accuracy": 0.9736842105263158}
_SETTINGS: dict[
    str,
    tuple[
        str,
        type[FormatSettings | DeploySettings | PredictSettings | ReportSettings | ManageSettings],
    ],
] = {
    "format": ("FormatFunction", FormatSettings),
    "deploy": ("DeployFunction", DeploySettings),
    "predict": ("PredictFunction", PredictSettings),
    "report": ("ReportFunction", ReportSettings),
    "manage": ("ManageFunction", ManageSettings),
}


def read_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return data


def function_env(function: str) -> dict[str, str]:
    """The variables `function`'s settings class reads, and Powertools', from events/env.json."""
    logical_id, settings = _SETTINGS[function]
    given: dict[str, str] = read_event("env.json")[logical_id]
    names = [*settings.env_names(), *(n for n in given if n.startswith("POWERTOOLS_"))]
    return {name: given[name] for name in names}


@dataclass(frozen=True)
class LambdaContextStub:
    """The attributes Powertools reads from the Lambda context."""

    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    function_name: str = "dropfit-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:dropfit-function"
    log_group_name: str = "/aws/lambda/dropfit-function"
    log_stream_name: str = "2025/03/14/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass(frozen=True)
class Function:
    """A function's module, loaded inside the mock, and the Lambda context to call it with."""

    module: ModuleType
    context: LambdaContextStub

    def __call__(self, event: dict[str, Any]) -> Any:
        return self.module.lambda_handler(event, self.context)


# --------------------------------------------------------------------------- the moto stack


def _name_from_arn(arn: str) -> str:
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def region_of_env() -> str:
    """The region the sample environment lives in (that of its SNS topic ARN)."""
    return function_env("format")["FAILURE_TOPIC_ARN"].split(":")[3]


@dataclass
class Stack:
    """The template's stateful resources in moto, and ways to look into them."""

    region: str
    bucket: str
    table_name: str
    topic_arn: str
    role_arn: str
    failure_queue_url: str
    s3: Any
    dynamodb: Any
    sagemaker: Any
    sqs: Any

    @property
    def runs(self) -> RunsTable:
        return RunsTable(self.table_name, self.dynamodb)

    def run(self, model: str, job: str) -> Run:
        run = self.runs.get_run(model, job)
        assert run is not None, f"no run {job} of {model}"
        return run

    def model(self, model: str) -> ModelRecord:
        record = self.runs.get_model(model)
        assert record is not None, f"no model {model}"
        return record

    def table_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.dynamodb.scan(TableName=self.table_name)["Items"]
        return items

    def put_upload(self, key: str, body: bytes, metadata: dict[str, str] | None = None) -> str:
        """Upload like `aws s3 cp --metadata`; returns the new version id."""
        response = self.s3.put_object(
            Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {}
        )
        version: str = response["VersionId"]
        return version

    def upload_event(self, key: str, version_id: str) -> dict[str, Any]:
        """The "Object Created" event S3 sends EventBridge for this object version.

        Its sequencer grows with each event made, as S3's grow with each upload of a key.
        """
        head = self.s3.head_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        return object_created_event(
            self.bucket,
            key,
            version_id,
            head["ContentLength"],
            head["ETag"].strip('"'),
            sequencer=f"{next(_SEQUENCERS):X}",
        )

    def bucket_versions(self) -> list[tuple[str, str, str]]:
        """Every (key, version id, etag) in the bucket, delete markers included."""
        response = self.s3.list_object_versions(Bucket=self.bucket)
        versions = [(v["Key"], v["VersionId"], v["ETag"]) for v in response.get("Versions", [])] + [
            (m["Key"], m["VersionId"], "delete-marker") for m in response.get("DeleteMarkers", [])
        ]
        return sorted(versions)

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def training_jobs(self) -> list[str]:
        summaries = self.sagemaker.list_training_jobs()["TrainingJobSummaries"]
        return sorted(s["TrainingJobName"] for s in summaries)

    def failure_notices(self) -> list[dict[str, Any]]:
        """What the failure topic published since the last call (raw SQS delivery)."""
        notices: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.failure_queue_url, MaxNumberOfMessages=10
            ).get("Messages", [])
            if not messages:
                return notices
            for message in messages:
                notices.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.failure_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    # --- arranging table state directly (what earlier events would have left behind) ----

    def seed_run(
        self,
        job: str,
        status: RunStatus,
        *,
        created_at: str,
        model: str = "iris",
        features: list[str] | None = None,
        classes: list[str] | None = None,
        predictor_type: str = "classifier",
        metrics: dict[str, float] | None = None,
        reason: str | None = None,
        preprocessing: dict[str, Any] | None = None,
    ) -> Run:
        """A run as the format (and deploy) functions record it, and its model pointing at it.

        Past formatting, its metadata.json (features, label map) is in the bucket too.
        """
        feature_names = list(features or IRIS_FEATURES)
        class_names = list(classes or IRIS_CLASSES) if predictor_type == "classifier" else None
        sequencer = _sequencer_at(created_at)
        run = Run(
            model=model,
            job=job,
            status=status,
            created_at=created_at,
            source={
                "bucket": self.bucket,
                "key": f"incoming/{model}.csv",
                "version_id": job,
                "sequencer": sequencer,
            },
            reason=reason,
            options={"test_fraction": "0.25"},
            predictor_type=predictor_type,
            metrics=metrics,
        )
        if status is not RunStatus.FORMATTING:
            self.put_run_metadata(
                model, job, feature_names, class_names, predictor_type, preprocessing=preprocessing
            )
        assert self.runs.claim_run(run)
        assert self.runs.record_upload(
            model, f"{PREFIX}-{model}", job, upload_order(sequencer), created_at=created_at
        )
        return run

    def put_run_metadata(
        self,
        model: str,
        job: str,
        features: list[str],
        classes: list[str] | None,
        predictor_type: str = "classifier",
        *,
        preprocessing: dict[str, Any] | None = None,
    ) -> None:
        """The run's metadata.json, as the formatter writes it (with a fitted transform)."""
        fitted = {"preprocessing": preprocessing} if preprocessing is not None else {}
        metadata = iris_metadata(
            feature_names=features, predictor_type=predictor_type, classes=classes, **fitted
        )
        key = metadata_key(function_env("format")["DATASETS_PREFIX"], model, job)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=metadata.to_json())

    def seed_model(
        self,
        model: str = "iris",
        *,
        desired: Run | None = None,
        deploying: str | None = None,
        deployed: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {"deploying_run": deploying, "deployed_run": deployed}
        if desired is not None:
            changes |= {"desired_run": desired.job, "desired_order": desired_order(desired)}
        self.runs.update_model(model, **changes)


def _sequencer_at(created_at: str) -> str:
    """S3's sequencer for an upload made at ``created_at``: its digits, growing with time."""
    return re.sub(r"\D", "", created_at)


def desired_order(run: Run) -> str | None:
    """The upload order the deploy function proposes ``run`` with."""
    return upload_order(run.source.get("sequencer"))


@functools.cache
def _client(service: str, region: str) -> Any:
    """The tests' own clients, made once: moto intercepts every client while a mock is active."""
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


@functools.cache
def _template_resources() -> dict[str, Any]:
    resources: dict[str, Any] = load_template()["Resources"]
    return resources


def build_stack(region: str) -> Stack:
    """Create the template's bucket, table, topic and SageMaker role in moto (mock active)."""
    resources = _template_resources()
    env = function_env("format")

    bucket = env["BUCKET_NAME"]
    s3 = _client("s3", region)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(
        Bucket=bucket,
        VersioningConfiguration=resources["DataBucket"]["Properties"]["VersioningConfiguration"],
    )

    table = resources["RunsTable"]["Properties"]
    dynamodb = _client("dynamodb", region)
    dynamodb.create_table(
        TableName=env["TABLE_NAME"],
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode=table["BillingMode"],
    )

    topic = resources["FailureTopic"]["Properties"]
    sns = _client("sns", region)
    topic_arn = sns.create_topic(
        Name=_name_from_arn(env["FAILURE_TOPIC_ARN"]),
        Attributes={"DisplayName": topic["DisplayName"], "KmsMasterKeyId": topic["KmsMasterKeyId"]},
    )["TopicArn"]
    assert topic_arn == env["FAILURE_TOPIC_ARN"], "events/env.json names another topic"
    # Stands in for the e-mail subscription: the tests read what was published.
    sqs = _client("sqs", region)
    queue_url = sqs.create_queue(QueueName="failure-notices")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )

    role = resources["SageMakerExecutionRole"]["Properties"]
    role_arn = _client("iam", region).create_role(
        RoleName=_name_from_arn(env["SAGEMAKER_ROLE_ARN"]),
        AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
        Description=role["Description"],
    )["Role"]["Arn"]
    assert role_arn == env["SAGEMAKER_ROLE_ARN"], "events/env.json names another role"

    return Stack(
        region=region,
        bucket=bucket,
        table_name=env["TABLE_NAME"],
        topic_arn=topic_arn,
        role_arn=role_arn,
        failure_queue_url=queue_url,
        s3=s3,
        dynamodb=dynamodb,
        sagemaker=_client("sagemaker", region),
        sqs=sqs,
    )


def serve_in_moto(stack: Stack, job: str, model: str = "iris") -> None:
    """The SageMaker model, config and endpoint the deploy function would have created."""
    env = function_env("deploy")
    stack.sagemaker.create_model(
        **model_request(
            name=job,
            model=model,
            image_uri=env["KNN_IMAGE_URI"],
            artifact_uri=f"s3://{stack.bucket}/models/{model}/{job}/output/model.tar.gz",
            role_arn=stack.role_arn,
        )
    )
    stack.sagemaker.create_endpoint_config(
        **serverless_endpoint_config_request(
            name=job, model=model, memory_mb=2048, max_concurrency=5
        )
    )
    stack.sagemaker.create_endpoint(EndpointName=f"{PREFIX}-{model}", EndpointConfigName=job)


# --------------------------------------------------------------------------- events


# Above every seeded run's (_sequencer_at: 17 digits): an upload is newer than what was seeded.
_SEQUENCERS = itertools.count(0x67D3F61D4F3B8A210000)


def object_created_event(
    bucket: str,
    key: str,
    version_id: str | None,
    size: int,
    etag: str,
    *,
    sequencer: str | None = None,
) -> dict[str, Any]:
    event = read_event("s3-object-created.json")
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(
        {"key": key, "version-id": version_id, "size": size, "etag": etag}
    )
    if sequencer is not None:
        event["detail"]["object"]["sequencer"] = sequencer
    if version_id is None:
        del event["detail"]["object"]["version-id"]
    return event


def training_event(
    job: str,
    status: str = "Completed",
    failure_reason: str | None = None,
    artifact: str | None = None,
) -> dict[str, Any]:
    """A "SageMaker Training Job State Change" for `job` (Completed: with `artifact`)."""
    completed = status == "Completed"
    event = read_event("training-completed.json" if completed else "training-failed.json")
    detail = event["detail"]
    sample_job = detail["TrainingJobName"]
    arn = detail["TrainingJobArn"].replace(sample_job, job)
    event["resources"] = [arn]
    detail.update(
        TrainingJobName=job, TrainingJobArn=arn, TrainingJobStatus=status, SecondaryStatus=status
    )
    if failure_reason is not None:
        detail["FailureReason"] = failure_reason
    if completed:
        sample_artifact = detail["ModelArtifacts"]["S3ModelArtifacts"]
        detail["ModelArtifacts"]["S3ModelArtifacts"] = artifact or sample_artifact.replace(
            sample_job, job
        )
    return event


def endpoint_event(endpoint: str, config: str, status: str = "IN_SERVICE") -> dict[str, Any]:
    """A "SageMaker Endpoint State Change" for `endpoint`, now running `config`."""
    event = read_event("endpoint-in-service.json")
    detail = event["detail"]
    arn = detail["EndpointArn"].replace(detail["EndpointName"], endpoint)
    event["resources"] = [arn]
    detail.update(
        EndpointName=endpoint, EndpointArn=arn, EndpointConfigName=config, EndpointStatus=status
    )
    for variant in detail["ProductionVariants"]:
        variant["VariantName"] = config  # Dropfit names the variant after its run
    return event


def predict_event(
    model: str = "iris",
    body: str = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
    content_type: str | None = "application/json",
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST /models/{model}/predict as API Gateway (HTTP API, payload 2.0) sends it."""
    event = read_event("api-predict.json")
    path = f"/models/{model}/predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"model": model}
    event["body"] = body
    event["headers"]["content-length"] = str(len(body.encode()))
    if content_type is None:
        del event["headers"]["content-type"]
    else:
        event["headers"]["content-type"] = content_type
    if query:
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = query
    return event


def get_event(path: str) -> dict[str, Any]:
    """GET `path`: the API's routes as they send it, anything else as a `$default` route would."""
    parts = path.strip("/").split("/")
    if parts == ["models"]:
        return read_event("api-list-models.json")
    event = read_event("api-get-model.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    if parts[0] == "models" and (len(parts) == 2 or parts[2:] == ["report"]):
        event["pathParameters"] = {"model": parts[1]}
        if len(parts) == 3:
            route = "GET /models/{model}/report"
            event["routeKey"] = event["requestContext"]["routeKey"] = route
    else:
        event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
        del event["pathParameters"]
    return event


def api_event(method: str, path: str, body: str | None = None) -> dict[str, Any]:
    """`method path` on one of the API's /models/{model}... routes, as API Gateway sends it."""
    parts = path.strip("/").split("/")
    template = "/models/{model}" + "".join(f"/{part}" for part in parts[2:])
    event = read_event("api-get-model.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {template}"
    event["pathParameters"] = {"model": parts[1]}
    if body is not None:
        event["body"] = body
        event["headers"]["content-type"] = "application/json"
    return event


# --------------------------------------------------------------------------- AWS call spying


@dataclass
class CallSpy:
    """Names of the operations a boto3 client sent (botocore's before-call event)."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def writes(self) -> list[str]:
        readers = ("Describe", "List", "Get")
        return [name for name in self.calls if not name.startswith(readers)]


def spy_on(client: Any) -> CallSpy:
    spy = CallSpy()
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-call.{service}", spy)
    return spy


# --------------------------------------------------------------------------- SageMaker script

_EPOCH = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


class _Script:
    """A client's calls, scripted with botocore's Stubber while the script is entered."""

    def __init__(self, client: Any) -> None:
        self.stubber = Stubber(client)

    def __enter__(self) -> Self:
        self.stubber.activate()
        return self

    def __exit__(self, *_: object) -> None:
        self.stubber.deactivate()

    def assert_done(self) -> None:
        self.stubber.assert_no_pending_responses()


class SageMakerScript(_Script):
    """The SageMaker calls a test expects, in order, with their answers (botocore Stubber).

    Anything else the code sends (another create, an update, any delete) fails the test.
    """

    def __init__(self, client: Any, region: str) -> None:
        super().__init__(client)
        self.arn = f"arn:aws:sagemaker:{region}:123456789012"

    def training_job(self, job: str, artifact: str, metrics: dict[str, float]) -> None:
        self.stubber.add_response(
            "describe_training_job",
            {
                "TrainingJobName": job,
                "TrainingJobArn": f"{self.arn}:training-job/{job}",
                "ModelArtifacts": {"S3ModelArtifacts": artifact},
                "TrainingJobStatus": "Completed",
                "SecondaryStatus": "Completed",
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                "CreationTime": _EPOCH,
                "FinalMetricDataList": [
                    {"MetricName": name, "Value": value, "Timestamp": _EPOCH}
                    for name, value in metrics.items()
                ],
            },
            {"TrainingJobName": job},
        )

    def creates_model(self, job: str, refused_with: tuple[str, str] | None = None) -> None:
        expected = {
            "ModelName": job,
            "PrimaryContainer": ANY,
            "ExecutionRoleArn": ANY,
            "Tags": ANY,
        }
        if refused_with:
            self._error("create_model", refused_with, expected)
        else:
            self.stubber.add_response(
                "create_model", {"ModelArn": f"{self.arn}:model/{job}"}, expected
            )

    def creates_endpoint_config(
        self, job: str, refused_with: tuple[str, str] | None = None
    ) -> None:
        expected = {"EndpointConfigName": job, "ProductionVariants": ANY, "Tags": ANY}
        if refused_with:
            self._error("create_endpoint_config", refused_with, expected)
        else:
            self.stubber.add_response(
                "create_endpoint_config",
                {"EndpointConfigArn": f"{self.arn}:endpoint-config/{job}"},
                expected,
            )

    def endpoint(
        self, name: str, status: str, config: str, failure_reason: str | None = None
    ) -> None:
        response: dict[str, Any] = {
            "EndpointName": name,
            "EndpointArn": f"{self.arn}:endpoint/{name}",
            "EndpointConfigName": config,
            "EndpointStatus": status,
            "CreationTime": _EPOCH,
            "LastModifiedTime": _EPOCH,
        }
        if failure_reason is not None:
            response["FailureReason"] = failure_reason
        self.stubber.add_response("describe_endpoint", response, {"EndpointName": name})

    def no_endpoint(self, name: str) -> None:
        self._error(
            "describe_endpoint",
            ("ValidationException", f"Could not find endpoint '{self.arn}:endpoint/{name}'."),
            {"EndpointName": name},
        )

    def creates_endpoint(self, name: str, config: str) -> None:
        self.stubber.add_response(
            "create_endpoint",
            {"EndpointArn": f"{self.arn}:endpoint/{name}"},
            {"EndpointName": name, "EndpointConfigName": config, "Tags": ANY},
        )

    def deletes_endpoint(self, name: str) -> None:
        self.stubber.add_response("delete_endpoint", {}, {"EndpointName": name})

    def updates_endpoint(self, name: str, config: str) -> None:
        self.stubber.add_response(
            "update_endpoint",
            {"EndpointArn": f"{self.arn}:endpoint/{name}"},
            {"EndpointName": name, "EndpointConfigName": config},
        )

    def refuses_update(self, name: str, config: str, code: str, message: str) -> None:
        self._error(
            "update_endpoint",
            (code, message),
            {"EndpointName": name, "EndpointConfigName": config},
        )

    def _error(self, method: str, error: tuple[str, str], expected: dict[str, Any]) -> None:
        code, message = error
        self.stubber.add_client_error(
            method, service_error_code=code, service_message=message, expected_params=expected
        )


# --------------------------------------------------------------------------- runtime answers


def streaming(data: bytes) -> StreamingBody:
    """An InvokeEndpoint `Body` as botocore returns it."""
    return StreamingBody(io.BytesIO(data), len(data))


class RuntimeScript(_Script):
    """What the endpoint answers (botocore Stubber on sagemaker-runtime), call by call."""

    def answers(
        self,
        request_csv: bytes,
        answer: dict[str, Any],
        variant: str,
        *,
        endpoint: str = ENDPOINT,
        verbose: bool = False,
        target: str | None = None,
    ) -> None:
        """Expect exactly this k-NN request (text/csv rows, aimed at the variant ``target``)
        and answer as `variant`."""
        body = json.dumps(answer).encode()
        self.stubber.add_response(
            "invoke_endpoint",
            {
                "Body": streaming(body),
                "ContentType": "application/json",
                "InvokedProductionVariant": variant,
            },
            {
                "EndpointName": endpoint,
                "Body": request_csv,
                "ContentType": "text/csv",
                "Accept": "application/json; verbose=true" if verbose else "application/json",
            }
            | ({"TargetVariant": target} if target is not None else {}),
        )

    def fails(
        self, code: str, message: str, status: int, fields: dict[str, Any] | None = None
    ) -> None:
        self.stubber.add_client_error(
            "invoke_endpoint",
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            modeled_fields=fields,
        )


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: Any
    raw: str


def http_answer(response: dict[str, Any]) -> HttpAnswer:
    """A payload 2.0 Lambda response, its JSON body parsed."""
    raw: str = response["body"]
    return HttpAnswer(response["statusCode"], response.get("headers", {}), json.loads(raw), raw)
