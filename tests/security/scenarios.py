"""Drive every function through its main paths in one process and record each AWS call it makes.

The functions run against moto (S3, DynamoDB, SNS, SageMaker's control plane); the endpoint's
runtime is a fake that answers like the k-NN algorithm; where moto cannot play SageMaker (a Failed
endpoint, throttling) botocore's Stubber does. The SageMaker execution role's share is recorded
by running the format function's very CreateTrainingJob request, and the deploy function's
CreateModel and CreateEndpoint, on the local SageMaker (dropfit_local) against the same moto S3.

A few calls are made with a principal's role by an AWS service, not by our code, and cannot be
observed locally. They are added as ``platform`` calls, derived from the recorded requests, each
saying why: Lambda's delivery of a failed asynchronous event to the dead-letter queue (the
template's EventInvokeConfig), and what SageMaker does with the execution role besides S3
(pull the k-NN image from ECR, write CloudWatch logs and metrics; see "CreateTrainingJob API:
Execution Role Permissions" in the SageMaker developer guide).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from dropfit.aws.s3 import PART_BYTES
from dropfit.names import model_from_job_name

from tests.security.world import (
    NAMES,
    Recorder,
    World,
    endpoint_changed,
    http_event,
    object_created,
    processing_finished,
    streaming,
    training_finished,
    world,
)
from tests.template_utils import ROOT, load_template

IRIS = (ROOT / "tests" / "data" / "iris.csv").read_bytes()
ROLE = "SageMakerExecutionRole"
PROCESSING_ROLE = "ProcessingJobRole"
LARGE = 11 * 1024**3  # an event's size above ProcessingThresholdMB's default (10,240 MiB)


def async_attempts(function: str) -> int:
    """How often Lambda runs an asynchronous event before its OnFailure destination gets it."""
    config = load_template()["Resources"][function]["Properties"]["EventInvokeConfig"]
    return 1 + int(config["MaximumRetryAttempts"])


# --------------------------------------------------------------------------- fake endpoints


class FakeEndpoints:
    """sagemaker-runtime InvokeEndpoint answered like the k-NN algorithm (text/csv in, JSON out).

    The predicted class of a row is a deterministic function of its values; ``errors`` makes
    an endpoint answer with a SageMaker error instead (code, HTTP status).
    """

    url = "https://runtime.sagemaker.local/"

    def __init__(self, classes: int = 3) -> None:
        self.classes = classes
        self.errors: dict[str, tuple[str, int]] = {}
        self.variant: dict[str, str] = {}
        self.invocations = 0

    def install(self, client: Any) -> None:
        client.meta.events.register(
            "before-call.sagemaker-runtime.InvokeEndpoint", self._answer, unique_id="fake-knn"
        )

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        from urllib.parse import unquote

        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        self.invocations += 1
        endpoint = unquote(params["url_path"].split("/")[2])
        if endpoint in self.errors:
            code, status = self.errors[endpoint]
            error = {"Code": code, "Message": f"{code} from the fake endpoint"}
            return AWSResponse(self.url, status, HTTPHeaders(), None), {
                "Error": error,
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
        rows = [line.split(",") for line in params["body"].decode().splitlines() if line]
        verbose = "verbose=true" in params["headers"].get("Accept", "")
        predictions = []
        for row in rows:
            label = float(int(sum(float(v) for v in row) * 7) % self.classes)
            answer: dict[str, Any] = {"predicted_label": label}
            if verbose:
                answer |= {"labels": [label, 0.0], "distances": [0.0, 0.5]}
            predictions.append(answer)
        body = json.dumps({"predictions": predictions}).encode()
        variant = self.variant.get(endpoint)
        parsed: dict[str, Any] = {
            "Body": streaming(body),
            "ContentType": "application/json",
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        if variant:
            parsed["InvokedProductionVariant"] = variant
        return AWSResponse(self.url, 200, HTTPHeaders(), None), parsed


# --------------------------------------------------------------------------- the scenarios


def _upload_and_format(w: World, key: str, body: bytes, **metadata: str) -> dict[str, Any]:
    version = w.upload(key, body, metadata)
    result: dict[str, Any] = w.function("format")(object_created(key, version, len(body)))
    return result


def _train_and_deploy(w: World, key: str, body: bytes = IRIS) -> str:
    """Upload → job → (moto's job) completed → model, config, endpoint created or updated."""
    started = _upload_and_format(w, key, body)
    assert started["outcome"] == "started", started
    job = str(started["run"])
    outcome = w.function("deploy")(training_finished(job))["outcome"]
    assert outcome in ("create", "update"), outcome
    return job


def _stubbed(w: World, function: str, service: str) -> Stubber:
    return Stubber(w.client(function, service))


def _fails_every_attempt(w: World, function: str, logical_id: str, run: Callable[[], Any]) -> None:
    """Run an asynchronous event as Lambda does: every attempt raises, then the DLQ gets it."""
    for _ in range(async_attempts(logical_id)):
        with pytest.raises(Exception, match="Throttl"):
            run()
    w.recorder.platform(
        logical_id,
        "sqs",
        "SendMessage",
        "Lambda sends the event that failed every attempt to EventInvokeConfig's OnFailure "
        "destination with the function's role",
        QueueUrl=f"https://sqs.{NAMES.region}.amazonaws.com/{NAMES.account}/"
        + NAMES.queue_arn.rsplit(":", 1)[1],
    )


def format_paths(w: World) -> None:
    fmt = w.function("format")
    # 1. a valid upload starts its job; the same event again starts nothing
    key = f"{NAMES.incoming}iris.csv"
    version = w.upload(key, IRIS)
    assert fmt(object_created(key, version, len(IRIS)))["outcome"] == "started"
    assert fmt(object_created(key, version, len(IRIS)))["outcome"] == "duplicate"
    # 2. an invalid upload: FAILED with its reason, failure topic told
    assert _upload_and_format(w, f"{NAMES.incoming}broken.csv", b"a;b\n1;2\n")["outcome"] == (
        "rejected"
    )
    # 3. a key S3 sends URL-encoded: the literal key is missing, the decoded one is read
    assert (
        _upload_and_format(w, f"{NAMES.incoming}Team A/Wine Quality.csv", IRIS)["outcome"]
        == "started"
    )
    # 4. an event without a version id (an object written before versioning was enabled)
    legacy = f"{NAMES.incoming}legacy.csv"
    w.upload(legacy, IRIS)
    assert fmt(object_created(legacy, None, len(IRIS)))["outcome"] == "started"
    # 5. a channel written in parts fails to complete: its multipart upload is aborted
    _channel_fails_to_complete(w)
    # 6. another key for a taken model name: refused, noted on the owner's record, notified
    refused = _upload_and_format(w, f"{NAMES.incoming}IRIS.csv", IRIS)
    assert (refused["outcome"], refused["model"]) == ("rejected", "iris")
    # 7. a model recorded before names had owners: given to its latest run's key, then claimed
    w.dynamodb.update_item(
        TableName=NAMES.table,
        Key={"pk": {"S": "MODEL"}, "sk": {"S": "iris"}},
        UpdateExpression="REMOVE source_key",
    )
    assert _upload_and_format(w, key, IRIS + b"\n")["outcome"] == "started"
    # 8. CreateTrainingJob throttled on every attempt: Lambda's retries, then the last attempt
    #    ends the run FAILED and removes the channels it wrote (ListObjectsV2, DeleteObject)
    busy = f"{NAMES.incoming}busy.csv"
    busy_version = w.upload(busy, IRIS)
    with _stubbed(w, "format", "sagemaker") as stub:
        attempts = async_attempts("FormatFunction")
        for _ in range(attempts):
            stub.add_client_error("create_training_job", "ThrottlingException", "Throttled")
        for _ in range(attempts - 1):
            with pytest.raises(ClientError, match="Throttl"):
                fmt(object_created(busy, busy_version, len(IRIS)))
        assert fmt(object_created(busy, busy_version, len(IRIS)))["outcome"] == "failed"
    made = {call.operation for call in w.recorder.of("FormatFunction")}
    assert {"ListObjectsV2", "DeleteObject"} <= made
    # 9. the table cannot be written on any attempt: Lambda's retries, then the DLQ
    tableless = f"{NAMES.incoming}tableless.csv"
    tableless_version = w.upload(tableless, IRIS)
    with _stubbed(w, "format", "dynamodb") as stub:
        for _ in range(async_attempts("FormatFunction")):
            stub.add_client_error("update_item", "ThrottlingException", "Rate exceeded")
        _fails_every_attempt(
            w,
            "format",
            "FormatFunction",
            lambda: fmt(object_created(tableless, tableless_version, len(IRIS))),
        )


def processing_paths(w: World) -> None:
    """Uploads above the threshold: a Processing job formats them, its end starts training."""
    fmt = w.function("format")
    # 1. header checked, the job's code and options published, CreateProcessingJob (PassRole)
    key = f"{NAMES.incoming}large.csv"
    version = w.upload(key, IRIS)
    started = fmt(object_created(key, version, LARGE))
    assert started["outcome"] == "processing", started
    job = str(started["run"])
    # 2. the job runs (the local SageMaker, as ProcessingJobRole); its end starts training
    processing_role(w.recorder, job)
    assert fmt(processing_finished(job))["outcome"] == "started"
    # 3. a job that failed: the run FAILED with the job's reason, its channels removed
    broken = f"{NAMES.incoming}large-broken.csv"
    broken_version = w.upload(broken, IRIS)
    failed = str(fmt(object_created(broken, broken_version, LARGE))["run"])
    ended = fmt(processing_finished(failed, "Failed", "Column 'x' has a non-numeric value"))
    assert ended["outcome"] == "failed"
    # 4. a header that cannot be right: refused at once, no job
    bad = f"{NAMES.incoming}large-bad-header.csv"
    bad_version = w.upload(bad, b"a,a\n1,2\n")
    assert fmt(object_created(bad, bad_version, LARGE))["outcome"] == "rejected"


def processing_role(recorder: Recorder, job: str) -> None:
    """The Processing job's S3 calls, made by the local SageMaker running our own request."""
    from dropfit_local.sagemaker.backend import SageMakerBackend

    s3 = boto3.client("s3", region_name=NAMES.region)
    recorder.attach(PROCESSING_ROLE, s3)
    backend = SageMakerBackend(
        region=NAMES.region,
        account_id=NAMES.account,
        s3=s3,
        events=boto3.client("events", region_name=NAMES.region),
        endpoint_delay_seconds=0.0,
        log=lambda line: None,
    )
    request = recorder.params_of("FormatFunction", "CreateProcessingJob", ProcessingJobName=job)
    try:
        backend.call("CreateProcessingJob", json.loads(json.dumps(request)))
        described = _wait(
            lambda: backend.call("DescribeProcessingJob", {"ProcessingJobName": job}),
            lambda d: d["ProcessingJobStatus"] not in ("InProgress", "Stopping"),
            timeout=180,
        )
        assert described["ProcessingJobStatus"] == "Completed", described
    finally:
        backend.close()
    image = request["AppSpecification"]["ImageUri"]
    registry, _, repository = image.partition("/")
    why_image = "SageMaker pulls the scikit-learn image for the Processing job"
    recorder.platform(PROCESSING_ROLE, "ecr", "GetAuthorizationToken", why_image)
    for operation in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage"):
        recorder.platform(
            PROCESSING_ROLE,
            "ecr",
            operation,
            why_image,
            registryId=registry.split(".", 1)[0],
            repositoryName=repository.split(":", 1)[0],
        )
    group, stream = "/aws/sagemaker/ProcessingJobs", f"{job}/algo-1-1741944478"
    why_logs = "the job's container logs go to CloudWatch Logs"
    recorder.platform(PROCESSING_ROLE, "logs", "CreateLogGroup", why_logs, logGroupName=group)
    recorder.platform(
        PROCESSING_ROLE,
        "logs",
        "DescribeLogStreams",
        why_logs,
        logGroupName=group,
        logStreamNamePrefix="",
    )
    for operation in ("CreateLogStream", "PutLogEvents"):
        recorder.platform(
            PROCESSING_ROLE, "logs", operation, why_logs, logGroupName=group, logStreamName=stream
        )
    recorder.platform(
        PROCESSING_ROLE,
        "cloudwatch",
        "PutMetricData",
        "the job reports its instance metrics to CloudWatch",
        Namespace="/aws/sagemaker/ProcessingJobs",
    )
    output = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    recorder.platform(
        PROCESSING_ROLE,
        "s3",
        "AbortMultipartUpload",
        "SageMaker uploads a large output in parts, and aborts the parts of one that fails",
        Bucket=NAMES.bucket,
        Key=output.split("/", 3)[3] + "/part-00000.csv",
        UploadId="upload-id",
    )


def _channel_fails_to_complete(w: World) -> None:
    storage = w.modules["format"].ingestor.storage
    s3 = w.client("format", "s3")

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Slow down"}}, "Complete")

    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", refuse)
    storage.part_bytes = 1024  # the iris channels, a few KB, go up in parts
    try:
        with pytest.raises(ClientError, match="SlowDown"):
            _upload_and_format(w, f"{NAMES.incoming}parts.csv", IRIS)
    finally:
        storage.part_bytes = PART_BYTES
        s3.meta.events.unregister("before-call.s3.CompleteMultipartUpload", refuse)
    assert "AbortMultipartUpload" in {call.operation for call in w.recorder.of("FormatFunction")}


def deploy_paths(w: World) -> tuple[str, str]:
    """The iris model trained twice (created, then updated in place), a third run failed."""
    deploy = w.function("deploy")
    first = _train_and_deploy(w, f"{NAMES.incoming}iris.csv")
    assert deploy(endpoint_changed(f"{NAMES.name_prefix}-iris", first))["outcome"] == "none"
    second = _upload_and_format(w, f"{NAMES.incoming}iris.csv", IRIS + b"\n")["run"]
    # moto has no UpdateEndpoint: SageMaker's side of the update is scripted.
    with _stubbed(w, "deploy", "sagemaker") as stub:
        _completed_job(stub, second)
        stub.add_response(
            "describe_endpoint", _endpoint(f"{NAMES.name_prefix}-iris", first, "InService")
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": f"{ARN}:endpoint/{NAMES.name_prefix}-iris"},
            {"EndpointName": f"{NAMES.name_prefix}-iris", "EndpointConfigName": second},
        )
        stub.add_response(
            "describe_endpoint", _endpoint(f"{NAMES.name_prefix}-iris", second, "InService")
        )
        assert deploy(training_finished(second))["outcome"] == "update"
        assert deploy(endpoint_changed(f"{NAMES.name_prefix}-iris", second))["outcome"] == "none"
        stub.assert_no_pending_responses()
    third = _upload_and_format(w, f"{NAMES.incoming}iris.csv", IRIS + b"\n\n")["run"]
    assert deploy(training_finished(third, "Failed", "ClientError: bad data"))["outcome"] == (
        "failed"
    )
    return first, second


ARN = f"arn:aws:sagemaker:{NAMES.region}:{NAMES.account}"


def _endpoint(name: str, config: str, status: str, reason: str | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "EndpointName": name,
        "EndpointArn": f"{ARN}:endpoint/{name}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": 0,
        "LastModifiedTime": 0,
    }
    if reason:
        described["FailureReason"] = reason
    return described


def _completed_job(stub: Stubber, job: str) -> None:
    """DescribeTrainingJob, CreateModel and CreateEndpointConfig of a job that completed."""
    model = model_from_job_name(NAMES.name_prefix, job)
    stub.add_response(
        "describe_training_job",
        {
            "TrainingJobName": job,
            "TrainingJobArn": f"{ARN}:training-job/{job}",
            "ModelArtifacts": {
                "S3ModelArtifacts": f"s3://{NAMES.bucket}/models/{model}/{job}/output/model.tar.gz"
            },
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": 0,
        },
    )
    stub.add_response("create_model", {"ModelArn": f"{ARN}:model/{job}"})
    stub.add_response(
        "create_endpoint_config", {"EndpointConfigArn": f"{ARN}:endpoint-config/{job}"}
    )


def prune_paths(w: World, first: str, second: str) -> list[str]:
    """Two more iris runs deployed (updates scripted): the oldest run beyond KEEP_RUNS (3) loses
    its endpoint config and model. Returns the runs that keep theirs, oldest first."""
    deploy = w.function("deploy")
    endpoint = f"{NAMES.name_prefix}-iris"
    kept, serving = [second], second
    for blank_lines in (3, 4):  # the third upload of deploy_paths failed its training
        job = _upload_and_format(w, f"{NAMES.incoming}iris.csv", IRIS + b"\n" * blank_lines)["run"]
        with _stubbed(w, "deploy", "sagemaker") as stub:
            _completed_job(stub, job)
            stub.add_response("describe_endpoint", _endpoint(endpoint, serving, "InService"))
            stub.add_response(
                "update_endpoint",
                {"EndpointArn": f"{ARN}:endpoint/{endpoint}"},
                {"EndpointName": endpoint, "EndpointConfigName": job},
            )
            stub.add_response("describe_endpoint", _endpoint(endpoint, job, "InService"))
            if blank_lines == 4:
                stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": first})
                stub.add_response("delete_model", {}, {"ModelName": first})
            assert deploy(training_finished(job))["outcome"] == "update"
            assert deploy(endpoint_changed(endpoint, job))["outcome"] == "none"
            stub.assert_no_pending_responses()
        kept.append(job)
        serving = job
    return kept


def _answered(client: Any, operation: str) -> None:
    """An operation moto lacks, answered as SageMaker does when it succeeds (empty body)."""
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return AWSResponse("https://sagemaker.local/", 200, HTTPHeaders(), None), {
            "ResponseMetadata": {"HTTPStatusCode": 200}
        }

    client.meta.events.register(f"before-call.sagemaker.{operation}", answer)


def manage_paths(w: World, kept: list[str]) -> None:
    """Run history, a rollback (UpdateEndpoint answered: moto has none), deleting a model while
    it trains (StopTrainingJob answered) and a deployed one; then the deleted model's endpoint
    event reaches the deploy function, which finds nothing left to delete."""
    manage = w.function("manage")
    sagemaker = w.client("manage", "sagemaker")
    _answered(sagemaker, "UpdateEndpoint")
    _answered(sagemaker, "StopTrainingJob")
    runs = manage(http_event("GET", "/models/iris/runs"))
    assert runs["statusCode"] == 200, runs
    rollback = manage(http_event("POST", "/models/iris/rollback"))
    assert rollback["statusCode"] == 202, rollback
    assert json.loads(rollback["body"])["run"] == kept[-2]
    training = manage(http_event("DELETE", "/models/legacy"))  # its run is TRAINING
    assert json.loads(training["body"])["stopped_training_jobs"], training
    deployed = manage(http_event("DELETE", "/models/iris"))
    assert json.loads(deployed["body"])["endpoint"] == "Deleting", deployed
    deploy = w.function("deploy")
    assert deploy(endpoint_changed(f"{NAMES.name_prefix}-iris", kept[-2]))["outcome"] == "deleted"


def recreate_failed_endpoint(w: World) -> None:
    """A first deployment failed and a newer run waits: delete the endpoint, create it afresh."""
    deploy = w.function("deploy")
    old = _train_and_deploy(w, f"{NAMES.incoming}wine.csv")
    new = _upload_and_format(w, f"{NAMES.incoming}wine.csv", IRIS + b"\n")["run"]
    endpoint = f"{NAMES.name_prefix}-wine"
    failed = "The primary container did not pass the ping health check."
    missing = ("ValidationException", f"Could not find endpoint '{ARN}:endpoint/{endpoint}'.")
    with _stubbed(w, "deploy", "sagemaker") as stub:
        _completed_job(stub, new)
        stub.add_response("describe_endpoint", _endpoint(endpoint, old, "Failed", failed))
        stub.add_response("delete_endpoint", {}, {"EndpointName": endpoint})
        stub.add_client_error("describe_endpoint", *missing)
        stub.add_response(
            "create_endpoint",
            {"EndpointArn": f"{ARN}:endpoint/{endpoint}"},
            {"EndpointName": endpoint, "EndpointConfigName": new, "Tags": ANY},
        )
        event = training_finished(new)
        with pytest.raises(Exception, match="Deleting the failed endpoint"):
            deploy(event)  # Lambda retries the event ...
        assert deploy(event)["outcome"] == "create"  # ... and the retry creates it afresh
        stub.assert_no_pending_responses()
    # The table cannot be used on any attempt (the run cannot even be read, nor its failed
    # attempt counted): the training event ends in the DLQ
    with _stubbed(w, "deploy", "dynamodb") as stub:
        for _ in range(async_attempts("DeployFunction")):
            stub.add_client_error("get_item", "ThrottlingException", "Rate exceeded")
            stub.add_client_error("update_item", "ThrottlingException", "Rate exceeded")
        _fails_every_attempt(w, "deploy", "DeployFunction", lambda: deploy(event))


def report_paths(w: World, served: str) -> None:
    """The endpoint serves ``served``: its report is written once; answers from another run, or
    a throttled endpoint on every attempt (Lambda's retries, then the DLQ), write none."""
    report = w.function("report")
    endpoints = FakeEndpoints()
    endpoints.install(w.client("report", "sagemaker-runtime"))
    endpoints.variant[f"{NAMES.name_prefix}-iris"] = f"{NAMES.name_prefix}-iris-000000000000"
    assert report(endpoint_changed(f"{NAMES.name_prefix}-iris", served))["outcome"] == "superseded"
    endpoints.variant[f"{NAMES.name_prefix}-iris"] = served
    assert report(endpoint_changed(f"{NAMES.name_prefix}-iris", served))["outcome"] == "written"
    assert report(endpoint_changed(f"{NAMES.name_prefix}-iris", served))["outcome"] == "duplicate"
    with _stubbed(w, "report", "sagemaker") as stub:
        for _ in range(async_attempts("ReportFunction")):
            stub.add_client_error("describe_endpoint", "ThrottlingException", "Rate exceeded")
        _fails_every_attempt(
            w,
            "report",
            "ReportFunction",
            lambda: report(endpoint_changed(f"{NAMES.name_prefix}-iris", served)),
        )


def predict_paths(w: World, served: str) -> None:
    predict = w.function("predict")
    # A stack deployed with AllowNeighbors=true, so that the verbose invocation is exercised too.
    w.monkeypatch.setattr(w.modules["predict"].service, "allow_neighbors", True)
    endpoints = FakeEndpoints()
    endpoints.install(w.client("predict", "sagemaker-runtime"))
    endpoints.variant[f"{NAMES.name_prefix}-iris"] = served
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]})
    headers = {"content-type": "application/json"}
    for query in ("", "neighbors=true"):
        answer = predict(
            http_event("POST", "/models/iris/predict", body=body, headers=headers, query=query)
        )
        assert answer["statusCode"] == 200, answer
    assert predict(http_event("GET", "/models"))["statusCode"] == 200
    described = predict(http_event("GET", "/models/iris"))
    assert described["statusCode"] == 200
    assert json.loads(described["body"])["report"]["html_url"]  # presigned with the role
    assert predict(http_event("GET", "/models/iris/report"))["statusCode"] == 200
    assert predict(http_event("GET", "/models/nothing-here"))["statusCode"] == 404


def sagemaker_role(recorder: Recorder, job: str) -> None:
    """The execution role's S3 calls, made by the local SageMaker running our own requests."""
    from dropfit_local.sagemaker.backend import SageMakerBackend

    s3 = boto3.client("s3", region_name=NAMES.region)
    recorder.attach(ROLE, s3)
    backend = SageMakerBackend(
        region=NAMES.region,
        account_id=NAMES.account,
        s3=s3,
        events=boto3.client("events", region_name=NAMES.region),
        endpoint_delay_seconds=0.0,
        log=lambda line: None,
    )
    try:
        request = recorder.params_of("FormatFunction", "CreateTrainingJob", TrainingJobName=job)
        backend.call("CreateTrainingJob", json.loads(json.dumps(request)))
        described = _wait(
            lambda: backend.call("DescribeTrainingJob", {"TrainingJobName": job}),
            lambda d: d["TrainingJobStatus"] != "InProgress",
        )
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        model = recorder.params_of("DeployFunction", "CreateModel", ModelName=job)
        artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
        model = json.loads(json.dumps(model))
        model["PrimaryContainer"]["ModelDataUrl"] = artifact
        backend.call("CreateModel", model)
        config = recorder.params_of(
            "DeployFunction", "CreateEndpointConfig", EndpointConfigName=job
        )
        backend.call("CreateEndpointConfig", json.loads(json.dumps(config)))
        endpoint = f"{NAMES.name_prefix}-iris"
        backend.call("CreateEndpoint", {"EndpointName": endpoint, "EndpointConfigName": job})
        state = _wait(
            lambda: backend.call("DescribeEndpoint", {"EndpointName": endpoint}),
            lambda d: d["EndpointStatus"] not in ("Creating", "Updating"),
        )
        assert state["EndpointStatus"] == "InService", state.get("FailureReason")
    finally:
        backend.close()
    _sagemaker_platform_calls(recorder, request, endpoint)


def _sagemaker_platform_calls(recorder: Recorder, job: dict[str, Any], endpoint: str) -> None:
    image = job["AlgorithmSpecification"]["TrainingImage"]
    registry, _, repository = image.partition("/")
    repository = repository.split(":", 1)[0]
    name = job["TrainingJobName"]
    why_image = "SageMaker pulls the algorithm image for the job and for the endpoint"
    recorder.platform(ROLE, "ecr", "GetAuthorizationToken", why_image)
    for operation in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage"):
        recorder.platform(
            ROLE,
            "ecr",
            operation,
            why_image,
            registryId=registry.split(".", 1)[0],
            repositoryName=repository,
        )
    for group, stream in (
        ("/aws/sagemaker/TrainingJobs", f"{name}/algo-1-1741944478"),
        (f"/aws/sagemaker/Endpoints/{endpoint}", f"AllTraffic/{name}"),
    ):
        why_logs = "the job's and the endpoint's container logs go to CloudWatch Logs"
        recorder.platform(ROLE, "logs", "CreateLogGroup", why_logs, logGroupName=group)
        recorder.platform(
            ROLE, "logs", "DescribeLogStreams", why_logs, logGroupName=group, logStreamNamePrefix=""
        )
        for operation in ("CreateLogStream", "PutLogEvents"):
            recorder.platform(
                ROLE, "logs", operation, why_logs, logGroupName=group, logStreamName=stream
            )
    recorder.platform(
        ROLE,
        "cloudwatch",
        "PutMetricData",
        "the job reports its metrics (test:accuracy) to CloudWatch",
        Namespace="/aws/sagemaker/TrainingJobs",
    )


def _wait(
    read: Callable[[], dict[str, Any]],
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 30,
) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = read()
        if done(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def run_all(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Every scenario, in one world; the calls of all four principals."""
    with world(monkeypatch) as w:
        format_paths(w)
        processing_paths(w)
        first, served = deploy_paths(w)
        kept = prune_paths(w, first, served)
        recreate_failed_endpoint(w)
        report_paths(w, first)
        predict_paths(w, kept[-1])
        manage_paths(w, kept)
        sagemaker_role(w.recorder, first)
        return w.recorder
