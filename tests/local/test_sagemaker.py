"""The local SageMaker through real boto3 clients, with S3 and EventBridge on a moto server."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from dropfit_local import faults, knn
from dropfit_local.sagemaker import LocalSageMaker, backend, inference

from .conftest import ACCOUNT, BUCKET, KNN_IMAGE, REGION, ROLE, Aws, Iris, hyperparameters, wait_for

TRAINING_BUSY = ("InProgress", "Stopping")
ENDPOINT_BUSY = ("Creating", "Updating", "Deleting")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "ContentType": "text/csv",
        "CompressionType": "None",
    }


def upload_dataset(aws: Aws, train: str, test: str | None = None) -> str:
    prefix = unique("datasets")
    aws.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/train/part-0.csv", Body=train.encode())
    if test is not None:
        aws.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/test/part-0.csv", Body=test.encode())
    return f"s3://{BUCKET}/{prefix}"


def start_job(aws: Aws, data: str, *, name: str | None = None, **params: Any) -> str:
    name = name or unique("job")
    channels = [channel("train", f"{data}/train/")]
    if aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=data.split("/", 3)[3] + "/test/")["KeyCount"]:
        channels.append(channel("test", f"{data}/test/"))
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": KNN_IMAGE, "TrainingInputMode": "Pipe"},
        "RoleArn": ROLE,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "HyperParameters": hyperparameters(),
        "Tags": [{"Key": "dropfit:model", "Value": "iris"}],
    }
    aws.sagemaker.create_training_job(**(request | params))
    return name


def finished_job(aws: Aws, name: str) -> dict[str, Any]:
    return wait_for(
        lambda: aws.sagemaker.describe_training_job(TrainingJobName=name),
        "TrainingJobStatus",
        TRAINING_BUSY,
    )


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


# ------------------------------------------------------------------------- training jobs


def test_training_job_reproduces_the_tutorial_and_announces_completion(
    aws: Aws, iris: Iris
) -> None:
    data = upload_dataset(aws, iris.train_csv, iris.test_csv)

    name = start_job(aws, data)
    described = finished_job(aws, name)

    assert described["TrainingJobStatus"] == "Completed"
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    artifact = f"s3://{BUCKET}/models/{name}/output/model.tar.gz"
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == artifact
    assert [(m["MetricName"], m["Value"]) for m in described["FinalMetricDataList"]] == [
        ("test:accuracy", 0.9736842105263158)
    ]
    assert described["TrainingStartTime"] <= described["TrainingEndTime"]
    assert described["BillableTimeInSeconds"] >= 1
    body = aws.s3.get_object(Bucket=BUCKET, Key=f"models/{name}/output/model.tar.gz")["Body"]
    model = knn.KnnModel.from_artifact(body.read())
    assert model.evaluate(iris.test_features, iris.test_labels)["accuracy"] == 0.9736842105263158
    assert f"[sagemaker] {name} #test_score (algo-1) : ('accuracy', 0.9736842105263158)" in aws.logs
    assert any(
        line.startswith(f"[sagemaker] {name} #test_score (algo-1) : ('macro_f_1.000', 0.971703")
        for line in aws.logs
    )

    events = aws.events(described["TrainingJobArn"], minimum=2)
    assert [e["detail"]["TrainingJobStatus"] for e in events] == ["InProgress", "Completed"]
    completed = events[-1]
    assert completed["source"] == "aws.sagemaker"
    assert completed["detail-type"] == "SageMaker Training Job State Change"
    assert completed["detail"]["ModelArtifacts"] == {"S3ModelArtifacts": artifact}
    assert completed["detail"]["HyperParameters"] == hyperparameters()
    assert completed["detail"]["Tags"] == {"dropfit:model": "iris"}
    assert isinstance(completed["detail"]["TrainingEndTime"], int)  # epoch milliseconds
    assert completed["detail"]["TrainingEndTime"] == int(
        described["TrainingEndTime"].timestamp() * 1000
    )


def test_training_job_with_k_zero_fails_with_the_algorithm_reason(aws: Aws, iris: Iris) -> None:
    data = upload_dataset(aws, iris.train_csv, iris.test_csv)

    name = start_job(aws, data, HyperParameters=hyperparameters(k="0"))
    described = finished_job(aws, name)

    reason = "ClientError: Hyperparameter k must be a positive integer, got '0'"
    assert described["TrainingJobStatus"] == "Failed"
    assert described["SecondaryStatus"] == "Failed"
    assert described["FailureReason"] == reason
    assert "ModelArtifacts" not in described
    failed = aws.events(described["TrainingJobArn"], minimum=2)[-1]
    assert failed["detail"]["TrainingJobStatus"] == "Failed"
    assert failed["detail"]["FailureReason"] == reason


@pytest.mark.parametrize(
    ("train", "params", "reason"),
    [
        (
            None,
            {"HyperParameters": hyperparameters(feature_dim="3")},
            "feature_dim hyperparameter (3)",
        ),
        ("0,1.0,2.0,3.0,4.0\nsetosa,1,2,3,4\n", {}, "could not convert string 'setosa'"),
        ("", {}, "Channel 'train' has no data"),
        (None, {"HyperParameters": hyperparameters(epochs="3")}, "('epochs' was unexpected)"),
    ],
)
def test_bad_inputs_fail_the_job_with_a_client_error(
    aws: Aws, iris: Iris, train: str | None, params: dict[str, Any], reason: str
) -> None:
    data = upload_dataset(aws, iris.train_csv if train is None else train)

    described = finished_job(aws, start_job(aws, data, **params))

    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: ")
    assert reason in described["FailureReason"]


def test_channel_content_type_defaults_to_recordio_so_csv_without_one_fails_to_parse(
    aws: Aws, iris: Iris
) -> None:
    data = upload_dataset(aws, iris.train_csv)
    untyped = channel("train", f"{data}/train/")
    del untyped["ContentType"]

    described = finished_job(aws, start_job(aws, data, InputDataConfig=[untyped]))

    assert described["FailureReason"].startswith(
        f"ClientError: Unable to read recordIO-protobuf s3://{BUCKET}/"
    )
    assert "expected recordIO's magic number" in described["FailureReason"]


def test_a_channel_type_the_algorithm_cannot_read_is_refused_naming_the_supported_ones(
    aws: Aws, iris: Iris
) -> None:
    data = upload_dataset(aws, iris.train_csv)
    parquet = channel("train", f"{data}/train/") | {"ContentType": "application/x-parquet"}

    described = finished_job(aws, start_job(aws, data, InputDataConfig=[parquet]))

    assert described["FailureReason"] == (
        "ClientError: Channel 'train': content type application/x-parquet is not supported by "
        "the k-NN algorithm (use text/csv or application/x-recordio-protobuf)"
    )


def test_duplicate_training_job_name_is_resource_in_use(aws: Aws, iris: Iris) -> None:
    data = upload_dataset(aws, iris.train_csv)
    name = start_job(aws, data)

    with pytest.raises(ClientError) as raised:
        start_job(aws, data, name=name)

    code, message = error_of(raised)
    assert code == "ResourceInUse"
    assert message == (
        "Training job names must be unique within an AWS account and region, and a training job "
        f"with this name already exists (arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{name})"
    )
    finished_job(aws, name)


def test_unknown_training_job_is_a_validation_exception(aws: Aws) -> None:
    with pytest.raises(ClientError) as raised:
        aws.sagemaker.describe_training_job(TrainingJobName="no-such-job")

    assert error_of(raised) == ("ValidationException", "Requested resource not found.")


def test_names_are_checked_against_the_api_pattern(aws: Aws, iris: Iris) -> None:
    data = upload_dataset(aws, iris.train_csv)

    with pytest.raises(ClientError) as raised:
        start_job(aws, data, name="bad_name")

    code, message = error_of(raised)
    assert code == "ValidationException"
    assert message == (
        "1 validation error detected: Value 'bad_name' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )


def test_stop_training_job_ends_it_as_stopped(
    aws: Aws, iris: Iris, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_read = backend.read_channel

    def slow_read(s3: Any, spec: Any) -> Any:
        release.wait(5)
        return real_read(s3, spec)

    monkeypatch.setattr(backend, "read_channel", slow_read)
    data = upload_dataset(aws, iris.train_csv)
    name = start_job(aws, data)

    aws.sagemaker.stop_training_job(TrainingJobName=name)
    stopping = aws.sagemaker.describe_training_job(TrainingJobName=name)
    release.set()
    described = finished_job(aws, name)

    assert stopping["TrainingJobStatus"] == "Stopping"
    assert described["TrainingJobStatus"] == "Stopped"
    assert "ModelArtifacts" not in described
    statuses = [
        e["detail"]["TrainingJobStatus"] for e in aws.events(described["TrainingJobArn"], 3)
    ]
    assert statuses == ["InProgress", "Stopping", "Stopped"]
    with pytest.raises(ClientError) as raised:
        aws.sagemaker.stop_training_job(TrainingJobName=name)
    assert error_of(raised) == (
        "ValidationException",
        "The request was rejected because the training job is in status Stopped.",
    )


def test_list_training_jobs_filters_by_name(aws: Aws, iris: Iris) -> None:
    data = upload_dataset(aws, iris.train_csv)
    marker = uuid.uuid4().hex[:8]
    names = [start_job(aws, data, name=f"listed-{marker}-{i}") for i in range(3)]
    for name in names:
        finished_job(aws, name)

    listed = aws.sagemaker.list_training_jobs(NameContains=marker, MaxResults=2)
    rest = aws.sagemaker.list_training_jobs(NameContains=marker, NextToken=listed["NextToken"])

    found = [
        s["TrainingJobName"] for s in listed["TrainingJobSummaries"] + rest["TrainingJobSummaries"]
    ]
    assert found == names[::-1]  # newest first
    assert "NextToken" not in rest


# ------------------------------------------------------------- models and endpoint configs


def put_model(aws: Aws, iris: Iris, **overrides: str) -> str:
    """Upload an artifact trained by the engine on iris; returns its s3:// URI."""
    params = knn.KnnHyperparameters.parse(hyperparameters(**overrides))
    model = knn.train(params, iris.train_features, iris.train_labels)
    key = f"artifacts/{unique('model')}/model.tar.gz"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=model.to_artifact())
    return f"s3://{BUCKET}/{key}"


def create_model(aws: Aws, artifact: str, name: str | None = None) -> str:
    name = name or unique("model")
    aws.sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": KNN_IMAGE, "ModelDataUrl": artifact},
        ExecutionRoleArn=ROLE,
    )
    return name


def create_config(aws: Aws, model: str, name: str | None = None, **serverless: int) -> str:
    name = name or unique("config")
    aws.sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": name,
                "ModelName": model,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5} | serverless,
            }
        ],
        Tags=[{"Key": "dropfit:run", "Value": name}],
    )
    return name


def in_service(aws: Aws, endpoint: str) -> dict[str, Any]:
    return wait_for(
        lambda: aws.sagemaker.describe_endpoint(EndpointName=endpoint),
        "EndpointStatus",
        ENDPOINT_BUSY,
    )


@pytest.fixture(scope="module")
def served(aws: Aws, iris: Iris) -> tuple[str, str]:
    """An InService serverless endpoint with the tutorial model: (endpoint, variant)."""
    config = create_config(aws, create_model(aws, put_model(aws, iris)))
    endpoint = unique("endpoint")
    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert in_service(aws, endpoint)["EndpointStatus"] == "InService"
    return endpoint, config


def test_create_model_checks_the_model_data_exists(aws: Aws) -> None:
    with pytest.raises(ClientError) as raised:
        create_model(aws, f"s3://{BUCKET}/nothing/here/model.tar.gz")

    code, message = error_of(raised)
    assert code == "ValidationException"
    assert message.startswith(
        f"Could not access model data at s3://{BUCKET}/nothing/here/model.tar.gz."
    )


def test_duplicate_names_say_cannot_create_already_existing(aws: Aws, iris: Iris, served) -> None:
    endpoint, config = served
    model = create_model(aws, put_model(aws, iris))
    prefix = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"

    with pytest.raises(ClientError) as model_error:
        create_model(aws, put_model(aws, iris), name=model)
    with pytest.raises(ClientError) as config_error:
        create_config(aws, model, name=config)
    with pytest.raises(ClientError) as endpoint_error:
        aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)

    assert error_of(model_error) == (
        "ValidationException",
        f'Cannot create already existing model "{prefix}:model/{model}".',
    )
    assert error_of(config_error) == (
        "ValidationException",
        "Cannot create already existing endpoint configuration "
        f'"{prefix}:endpoint-config/{config}".',
    )
    assert error_of(endpoint_error) == (
        "ValidationException",
        f'Cannot create already existing endpoint "{prefix}:endpoint/{endpoint}".',
    )


def test_unknown_resources_are_reported_with_their_arn(aws: Aws) -> None:
    prefix = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    calls = [
        (
            lambda: aws.sagemaker.describe_model(ModelName="Ghost"),
            f'Could not find model "{prefix}:model/ghost".',
        ),
        (
            lambda: aws.sagemaker.describe_endpoint_config(EndpointConfigName="ghost"),
            f'Could not find endpoint configuration "{prefix}:endpoint-config/ghost".',
        ),
        (
            lambda: aws.sagemaker.describe_endpoint(EndpointName="ghost"),
            f'Could not find endpoint "{prefix}:endpoint/ghost".',
        ),
        (
            lambda: create_config(aws, "ghost"),
            f'Could not find model "{prefix}:model/ghost".',
        ),
        (
            lambda: aws.sagemaker.create_endpoint(EndpointName="ghost", EndpointConfigName="ghost"),
            f'Could not find endpoint configuration "{prefix}:endpoint-config/ghost".',
        ),
    ]
    for call, message in calls:
        with pytest.raises(ClientError) as raised:
            call()
        assert error_of(raised) == ("ValidationException", message)


@pytest.mark.parametrize(
    ("serverless", "message"),
    [
        ({"MemorySizeInMB": 1500}, "Value '1500' for MemorySizeInMB of production variant"),
        (
            {"MemorySizeInMB": 7168},
            "Value '7168' at 'productionVariants.1.member.serverlessConfig.memorySizeInMB' failed "
            "to satisfy constraint: Member must have value less than or equal to 6144",
        ),
        (
            {"MaxConcurrency": 201},
            "at 'productionVariants.1.member.serverlessConfig.maxConcurrency' failed to satisfy "
            "constraint: Member must have value less than or equal to 200",
        ),
    ],
)
def test_serverless_config_limits_are_enforced(
    aws: Aws, iris: Iris, served, serverless: dict[str, int], message: str
) -> None:
    model = aws.sagemaker.describe_endpoint_config(EndpointConfigName=served[1])[
        "ProductionVariants"
    ][0]["ModelName"]

    with pytest.raises(ClientError) as raised:
        create_config(aws, model, **serverless)

    code, text = error_of(raised)
    assert code == "ValidationException"
    assert message in text


def test_models_and_configs_describe_and_delete(aws: Aws, iris: Iris) -> None:
    artifact = put_model(aws, iris)
    model = create_model(aws, artifact)
    config = create_config(aws, model, MemorySizeInMB=3072, MaxConcurrency=2)

    described_model = aws.sagemaker.describe_model(ModelName=model)
    described_config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config)
    aws.sagemaker.delete_endpoint_config(EndpointConfigName=config)
    aws.sagemaker.delete_model(ModelName=model)

    assert described_model["PrimaryContainer"]["ModelDataUrl"] == artifact
    assert described_config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 3072,
        "MaxConcurrency": 2,
    }
    with pytest.raises(ClientError):
        aws.sagemaker.describe_model(ModelName=model)
    with pytest.raises(ClientError):
        aws.sagemaker.delete_endpoint_config(EndpointConfigName=config)


# ------------------------------------------------------------------------------ endpoints


def test_endpoint_goes_creating_then_in_service_and_says_so(aws: Aws, iris: Iris) -> None:
    config = create_config(aws, create_model(aws, put_model(aws, iris)))
    endpoint = unique("endpoint")

    aws.sagemaker.create_endpoint(
        EndpointName=endpoint, EndpointConfigName=config, Tags=[{"Key": "team", "Value": "a"}]
    )
    creating = aws.sagemaker.describe_endpoint(EndpointName=endpoint)
    with pytest.raises(ClientError) as early:
        aws.runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=b"1,2,3,4")
    described = in_service(aws, endpoint)

    assert creating["EndpointStatus"] == "Creating"
    assert error_of(early) == (
        "ValidationError",
        f"Endpoint {endpoint} of account {ACCOUNT} not found.",
    )
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == config
    variant = described["ProductionVariants"][0]
    assert variant["VariantName"] == config
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    events = aws.events(described["EndpointArn"], minimum=2)
    assert [e["detail"]["EndpointStatus"] for e in events] == ["CREATING", "IN_SERVICE"]
    assert events[-1]["detail-type"] == "SageMaker Endpoint State Change"
    assert events[-1]["detail"]["EndpointConfigName"] == config
    assert events[-1]["detail"]["Tags"] == {"team": "a"}
    assert isinstance(events[-1]["detail"]["LastModifiedTime"], int)
    listed = aws.sagemaker.list_endpoints(NameContains=endpoint)["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [(endpoint, "InService")]


def invoke(
    aws: Aws, endpoint: str, body: bytes | str, content_type: str, accept: str | None = None
):
    params = {"EndpointName": endpoint, "Body": body, "ContentType": content_type}
    if accept:
        params["Accept"] = accept
    response = aws.runtime.invoke_endpoint(**params)
    return response, response["Body"].read().decode()


def test_invocations_in_every_format_predict_the_tutorial_labels(
    aws: Aws, iris: Iris, served
) -> None:
    endpoint, variant = served
    rows = iris.test_features.tolist()
    csv = "\n".join(",".join(str(v) for v in row) for row in rows)
    as_json = json.dumps({"instances": [{"features": row} for row in rows]})
    nested = json.dumps({"instances": [{"data": {"features": {"values": row}}} for row in rows]})
    lines = "\n".join(json.dumps({"features": row}) for row in rows)

    answers = [
        invoke(aws, endpoint, csv, "text/csv"),
        invoke(aws, endpoint, as_json, "application/json", "application/json"),
        invoke(aws, endpoint, nested, "application/json"),
        invoke(aws, endpoint, lines, "application/jsonlines", "application/json"),
    ]

    for response, body in answers:
        assert response["ContentType"] == "application/json"
        assert response["InvokedProductionVariant"] == variant
        predicted = np.array([p["predicted_label"] for p in json.loads(body)["predictions"]])
        assert (predicted == iris.test_labels).sum() == 37


def test_jsonlines_and_verbose_answers(aws: Aws, iris: Iris, served) -> None:
    endpoint, _ = served
    first = ",".join(str(v) for v in iris.test_features[0].tolist())

    response, jsonlines = invoke(
        aws, endpoint, f"{first}\n{first}", "text/csv", "application/jsonlines"
    )
    _, verbose = invoke(aws, endpoint, first, "text/csv", "application/json; verbose=true")
    _, verbose_lines = invoke(
        aws, endpoint, first, "text/csv", "application/jsonlines;verbose=true"
    )

    assert response["ContentType"] == "application/jsonlines"
    expected = float(iris.test_labels[0])
    assert jsonlines.splitlines() == [json.dumps({"predicted_label": expected})] * 2
    record = json.loads(verbose)["predictions"][0]
    assert list(record) == ["predicted_label", "distances", "labels"]
    assert record["labels"] == [record["predicted_label"]]
    assert record["distances"][0] >= 0
    assert json.loads(verbose_lines) == record


@pytest.mark.parametrize(
    ("request_", "status", "original"),
    [
        (("1,2,3", "text/csv", None), 400, "feature dimension of the input (3) does not match"),
        (
            ("{not json", "application/json", None),
            400,
            "Unable to evaluate payload provided: invalid JSON",
        ),
        (('{"rows": []}', "application/json", None), 400, 'must be {"instances": [...]}'),
        (
            ("1,2,3,4", "application/x-npy", None),
            415,
            "Content type application/x-npy is not supported",
        ),
        (("1,2,3,4", "text/csv", "text/csv"), 406, "Accept type text/csv is not supported"),
    ],
)
def test_requests_the_algorithm_rejects_are_model_errors(
    aws: Aws, served, request_: tuple[str, str, str | None], status: int, original: str
) -> None:
    endpoint, _ = served
    body, content_type, accept = request_

    with pytest.raises(ClientError) as raised:
        invoke(aws, endpoint, body, content_type, accept)

    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == status
    assert original in response["OriginalMessage"]
    assert response["Error"]["Message"].startswith(f"Received client error ({status}) from primary")
    assert response["LogStreamArn"].endswith(f"log-group:/aws/sagemaker/Endpoints/{endpoint}")


def test_request_parsing_understands_sparse_json_and_csv_label_size() -> None:
    sparse = {"data": {"features": {"keys": [0, 2], "values": [1.5, 3.0], "shape": [3]}}}

    from_json = inference.parse_request(
        json.dumps({"instances": [sparse]}).encode(), "application/json"
    )
    from_csv = inference.parse_request(b"9,1.5,0,3\n", "text/csv; label_size=1")

    np.testing.assert_array_equal(from_json, [[1.5, 0.0, 3.0]])
    np.testing.assert_array_equal(from_csv, [[1.5, 0.0, 3.0]])
    assert inference.choose_accept("*/*").essence == "application/json"
    assert inference.choose_accept("text/html, application/jsonlines").essence == (
        "application/jsonlines"
    )


def test_serverless_payload_over_4_mb_is_refused(aws: Aws, served) -> None:
    endpoint, _ = served
    row = "1.0,2.0,3.0,4.0\n"

    with pytest.raises(ClientError) as raised:
        invoke(aws, endpoint, row * (4 * 1024 * 1024 // len(row) + 1), "text/csv")

    code, message = error_of(raised)
    assert code == "ValidationError"
    assert message.endswith("has oversize body.")


def test_unknown_endpoint_is_a_validation_error(aws: Aws) -> None:
    with pytest.raises(ClientError) as raised:
        invoke(aws, "nowhere", "1,2,3,4", "text/csv")

    assert error_of(raised) == (
        "ValidationError",
        f"Endpoint nowhere of account {ACCOUNT} not found.",
    )


def test_update_in_place_keeps_the_old_model_answering_until_the_new_is_in_service(
    aws: Aws, iris: Iris
) -> None:
    old = create_config(aws, create_model(aws, put_model(aws, iris)))
    new = create_config(aws, create_model(aws, put_model(aws, iris, k="3")))
    endpoint = unique("endpoint")
    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)
    in_service(aws, endpoint)
    query = ",".join(str(v) for v in iris.test_features[0].tolist())

    aws.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=new)
    updating = aws.sagemaker.describe_endpoint(EndpointName=endpoint)
    during, _ = invoke(aws, endpoint, query, "text/csv")
    with pytest.raises(ClientError) as busy:
        aws.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=old)
    described = in_service(aws, endpoint)
    after, verbose = invoke(aws, endpoint, query, "text/csv", "application/json; verbose=true")

    assert updating["EndpointStatus"] == "Updating"
    assert updating["EndpointConfigName"] == old
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == new
    assert during["InvokedProductionVariant"] == old
    assert error_of(busy) == (
        "ValidationException",
        "Cannot update in-progress endpoint "
        f'"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{endpoint}".',
    )
    assert described["EndpointConfigName"] == new
    assert "FailureReason" not in described
    assert after["InvokedProductionVariant"] == new
    assert len(json.loads(verbose)["predictions"][0]["labels"]) == 3
    statuses = [e["detail"]["EndpointStatus"] for e in aws.events(described["EndpointArn"], 4)]
    assert statuses == ["CREATING", "IN_SERVICE", "UPDATING", "IN_SERVICE"]


def test_failed_update_rolls_back_to_the_serving_config(aws: Aws, iris: Iris) -> None:
    old = create_config(aws, create_model(aws, put_model(aws, iris)))
    junk = f"artifacts/{unique('junk')}/model.tar.gz"
    aws.s3.put_object(Bucket=BUCKET, Key=junk, Body=b"not a model")
    broken = create_config(aws, create_model(aws, f"s3://{BUCKET}/{junk}"))
    endpoint = unique("endpoint")
    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)
    in_service(aws, endpoint)

    aws.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=broken)
    described = in_service(aws, endpoint)
    response, _ = invoke(aws, endpoint, "5.1,3.5,1.4,0.2", "text/csv")

    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == old
    assert described["FailureReason"] == (
        f"The primary container for production variant {broken} did not pass the ping health "
        "check. Please check CloudWatch logs for this endpoint."
    )
    assert response["InvokedProductionVariant"] == old
    last = aws.events(described["EndpointArn"], 4)[-1]["detail"]
    assert (last["EndpointStatus"], last["FailureReason"]) == (
        "IN_SERVICE",
        described["FailureReason"],
    )


def test_an_injected_endpoint_fault_fails_the_next_deployment_only(
    aws: Aws, iris: Iris, faults_dir: Path
) -> None:
    old = create_config(aws, create_model(aws, put_model(aws, iris)))
    new = create_config(aws, create_model(aws, put_model(aws, iris, k="3")))
    endpoint = unique("endpoint")
    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=old)
    in_service(aws, endpoint)
    faults.inject(faults_dir, f"endpoint:{endpoint}", 1)

    aws.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=new)
    rolled_back = in_service(aws, endpoint)
    aws.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=new)
    updated = in_service(aws, endpoint)

    assert (rolled_back["EndpointStatus"], rolled_back["EndpointConfigName"]) == ("InService", old)
    assert rolled_back["FailureReason"] == (
        f"The primary container for production variant {new} did not pass the ping health "
        "check. Please check CloudWatch logs for this endpoint."
    )
    assert (updated["EndpointConfigName"], "FailureReason" in updated) == (new, False)
    assert faults.fired(faults_dir, f"endpoint:{endpoint}") == 1


def test_an_endpoint_held_by_a_fault_stays_changing_then_serves(
    aws: Aws, iris: Iris, faults_dir: Path
) -> None:
    config = create_config(aws, create_model(aws, put_model(aws, iris)))
    endpoint = unique("endpoint")
    faults.inject(faults_dir, f"endpoint:{endpoint}", 1, hold_seconds=2.0)

    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    time.sleep(1.0)  # the local SageMaker's own delay is 0.3 s
    held = aws.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
    served = in_service(aws, endpoint)

    assert held == "Creating"
    assert (served["EndpointStatus"], "FailureReason" in served) == ("InService", False)
    assert faults.fired(faults_dir, f"endpoint:{endpoint}") == 1


def test_endpoint_whose_model_data_vanished_fails(aws: Aws, iris: Iris) -> None:
    artifact = put_model(aws, iris)
    config = create_config(aws, create_model(aws, artifact))
    key = artifact.removeprefix(f"s3://{BUCKET}/")
    aws.s3.delete_object(Bucket=BUCKET, Key=key)
    endpoint = unique("endpoint")

    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    described = in_service(aws, endpoint)

    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"].startswith(
        f"Failed to download model data(bucket: {BUCKET}, key: {key})."
    )
    with pytest.raises(ClientError) as raised:
        aws.sagemaker.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert error_of(raised)[0] == "ValidationException"
    assert aws.events(described["EndpointArn"], 2)[-1]["detail"]["EndpointStatus"] == "FAILED"


def test_deleted_endpoint_stops_answering_and_disappears(aws: Aws, iris: Iris) -> None:
    config = create_config(aws, create_model(aws, put_model(aws, iris)))
    endpoint = unique("endpoint")
    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    arn = in_service(aws, endpoint)["EndpointArn"]

    aws.sagemaker.delete_endpoint(EndpointName=endpoint)
    deleting = aws.sagemaker.describe_endpoint(EndpointName=endpoint)
    with pytest.raises(ClientError) as gone:
        invoke(aws, endpoint, "5.1,3.5,1.4,0.2", "text/csv")

    assert deleting["EndpointStatus"] == "Deleting"
    assert error_of(gone)[0] == "ValidationError"
    with pytest.raises(ClientError):
        wait_for(
            lambda: aws.sagemaker.describe_endpoint(EndpointName=endpoint),
            "EndpointStatus",
            ("Deleting",),
        )
    assert aws.events(arn, 3)[-1]["detail"]["EndpointStatus"] == "DELETING"


# ---------------------------------------------------------------------------------- tags


def test_tags_given_at_creation_can_be_listed_added_and_deleted(aws: Aws, served) -> None:
    _, config = served
    arn = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config)["EndpointConfigArn"]

    before = aws.sagemaker.list_tags(ResourceArn=arn)["Tags"]
    aws.sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "owner", "Value": "ml"}])
    aws.sagemaker.delete_tags(ResourceArn=arn, TagKeys=["dropfit:run"])
    after = aws.sagemaker.list_tags(ResourceArn=arn)["Tags"]

    assert before == [{"Key": "dropfit:run", "Value": config}]
    assert after == [{"Key": "owner", "Value": "ml"}]


# ------------------------------------------------------------------------------ lifecycle


def test_server_binds_loopback_only_and_stop_leaves_no_threads(moto_url: str, iris: Iris) -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalSageMaker(
            region=REGION,
            account_id=ACCOUNT,
            s3_endpoint_url=moto_url,
            events_endpoint_url=moto_url,
            host="0.0.0.0",
        )
    before = set(threading.enumerate())
    server = LocalSageMaker(
        region=REGION,
        account_id=ACCOUNT,
        s3_endpoint_url=moto_url,
        events_endpoint_url=moto_url,
        endpoint_delay_seconds=5,  # still Creating when stopped
        log=lambda line: None,
    )
    server.start()

    client = boto3.client("sagemaker", endpoint_url=server.url, region_name=REGION)
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION)
    key = f"artifacts/{unique('stop')}/model.tar.gz"
    params = knn.KnnHyperparameters.parse(hyperparameters())
    s3.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=knn.train(params, iris.train_features, iris.train_labels).to_artifact(),
    )
    client.create_model(
        ModelName="m", PrimaryContainer={"Image": KNN_IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"}
    )
    client.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {
                "VariantName": "v",
                "ModelName": "m",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    client.create_endpoint(EndpointName="e", EndpointConfigName="c")

    assert server.url.startswith("http://127.0.0.1:")
    server.stop()

    assert set(threading.enumerate()) <= before
    server.stop()  # idempotent


def test_artifact_tarball_holds_the_model_files(aws: Aws, iris: Iris) -> None:
    artifact = put_model(aws, iris)
    body = aws.s3.get_object(Bucket=BUCKET, Key=artifact.removeprefix(f"s3://{BUCKET}/"))[
        "Body"
    ].read()

    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["model.json", "model.npz"]
