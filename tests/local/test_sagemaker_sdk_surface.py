"""What the sagemaker SDK leans on: recordIO-protobuf, CloudWatch Logs, create-time checks."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from dropfit import recordio

from dropfit_local.sagemaker import training

from .conftest import BUCKET, KNN_IMAGE, REGION, ROLE, Aws, Iris, hyperparameters
from .test_sagemaker import (
    channel,
    create_config,
    create_model,
    error_of,
    finished_job,
    in_service,
    put_model,
    start_job,
    unique,
    upload_dataset,
)

OTHER_REGION = f"{training.knn_registries()['us-east-2']}/knn:1"
ACCURACY_LINE = "#test_score (algo-1) : ('accuracy', 0.9736842105263158)"
# The built-in algorithms' prefix: [MM/DD/YYYY HH:MM:SS LEVEL thread-id].
ALGORITHM_PREFIX = r"\[\d\d/\d\d/\d{4} \d\d:\d\d:\d\d (INFO|ERROR) \d+\] "


@pytest.fixture(scope="module")
def logs(moto_url: str) -> Any:
    return boto3.session.Session(region_name=REGION).client("logs", endpoint_url=moto_url)


def messages(logs: Any, group: str, stream: str) -> list[str]:
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [event["message"] for event in events["events"]]


def streams(logs: Any, group: str, prefix: str) -> list[str]:
    found = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)
    return [stream["logStreamName"] for stream in found["logStreams"]]


def upload_records(aws: Aws, iris: Iris) -> str:
    prefix = unique("records")
    for name, features, labels in (
        ("train", iris.train_features, iris.train_labels),
        ("test", iris.test_features, iris.test_labels),
    ):
        body = recordio.encode_dense(features, labels)
        aws.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}/part-0.pbr", Body=body)
    return f"s3://{BUCKET}/{prefix}"


def recordio_channel(name: str, uri: str, **extra: Any) -> dict[str, Any]:
    spec = channel(name, uri) | {"ContentType": recordio.CONTENT_TYPE} | extra
    return spec


# ------------------------------------------------------------------ CreateTrainingJob checks


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            "knn:1",
            "Invalid training image. Please provide a valid Amazon Elastic Container Registry "
            "path of the Docker image to run.",
        ),
        (
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            "Cannot find the requested image: 683313688378.dkr.ecr.us-east-1.amazonaws.com/"
            "sagemaker-xgboost:1.7-1. The local SageMaker runs the built-in k-NN image of "
            f"us-east-1 only ({KNN_IMAGE}).",
        ),
        (  # us-east-2's k-NN image (template.yaml's KnnImage): SageMaker in us-east-1 cannot
            OTHER_REGION,
            f"Cannot find the requested image: {OTHER_REGION}.",
        ),
    ],
)
def test_an_image_sagemaker_could_not_pull_is_refused_at_create(
    aws: Aws, iris: Iris, image: str, message: str
) -> None:
    data = upload_dataset(aws, iris.train_csv)
    name = unique("job")

    with pytest.raises(ClientError) as raised:
        start_job(
            aws,
            data,
            name=name,
            AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "File"},
        )

    code, said = error_of(raised)
    assert code == "ValidationException"
    assert said.startswith(message)
    listed = aws.sagemaker.list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert listed == []


def test_the_k_nn_image_with_another_tag_trains(aws: Aws, iris: Iris) -> None:
    data = upload_dataset(aws, iris.train_csv)
    latest = KNN_IMAGE.replace(":1", ":latest")

    name = start_job(
        aws, data, AlgorithmSpecification={"TrainingImage": latest, "TrainingInputMode": "File"}
    )

    assert finished_job(aws, name)["TrainingJobStatus"] == "Completed"


def test_a_channel_with_no_objects_is_refused_at_create_as_sagemaker_words_it(
    aws: Aws, iris: Iris
) -> None:
    data = upload_dataset(aws, iris.train_csv)
    empty = f"{data}/test/"
    channels = [channel("train", f"{data}/train/"), channel("test", empty)]

    with pytest.raises(ClientError) as raised:
        start_job(aws, data, InputDataConfig=channels)

    assert error_of(raised) == (
        "ValidationException",
        f'No S3 objects found under S3 URL "{empty}" given in input data source. Please ensure '
        f"that the bucket exists in the selected region ({REGION}), that objects exist under "
        f'that S3 prefix, and that the role "{ROLE}" has "s3:ListBucket" permissions on bucket '
        f'"{BUCKET}".',
    )


# ------------------------------------------------------------------------- feature_dim


def test_without_feature_dim_the_job_trains_on_the_datas_width_like_the_tutorial(
    aws: Aws, iris: Iris, logs: Any
) -> None:
    data = upload_dataset(aws, iris.train_csv, iris.test_csv)
    tutorial = {"k": "1", "sample_size": "1000", "predictor_type": "classifier"}

    described = finished_job(aws, start_job(aws, data, HyperParameters=tutorial))

    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["HyperParameters"] == tutorial  # as given, like DescribeTrainingJob on AWS
    assert described["FinalMetricDataList"][0]["Value"] == 0.9736842105263158
    name = described["TrainingJobName"]
    (stream,) = streams(logs, "/aws/sagemaker/TrainingJobs", f"{name}/")
    assert any(
        line.endswith("feature_dim not given: 4, the number of features in the data")
        for line in messages(logs, "/aws/sagemaker/TrainingJobs", stream)
    )


# ---------------------------------------------------------------------- CloudWatch Logs


def test_a_training_job_logs_to_cloudwatch_under_aws_names_with_the_algorithms_lines(
    aws: Aws, iris: Iris, logs: Any
) -> None:
    data = upload_dataset(aws, iris.train_csv, iris.test_csv)

    described = finished_job(aws, start_job(aws, data))

    name = described["TrainingJobName"]
    (stream,) = streams(logs, "/aws/sagemaker/TrainingJobs", f"{name}/")
    started = int(described["TrainingStartTime"].timestamp())
    assert stream == f"{name}/algo-1-{started}"
    lines = messages(logs, "/aws/sagemaker/TrainingJobs", stream)
    assert lines[0] == "Docker entrypoint called with argument(s): train"
    assert re.fullmatch(ALGORITHM_PREFIX + re.escape(ACCURACY_LINE), lines[-3])
    assert re.fullmatch(
        ALGORITHM_PREFIX + r"#test_score \(algo-1\) : \('macro_f_1\.000', 0\.971703\d*\)",
        lines[-2],
    )
    assert lines[-1].endswith(
        "#quality_metric: host=algo-1, test accuracy <score>=0.9736842105263158"
    )
    assert "'predictor_type': 'classifier'" in lines[1]


def test_a_failed_job_logs_its_reason_as_an_error(aws: Aws, iris: Iris, logs: Any) -> None:
    data = upload_dataset(aws, iris.train_csv)

    described = finished_job(aws, start_job(aws, data, HyperParameters=hyperparameters(k="0")))

    name = described["TrainingJobName"]
    (stream,) = streams(logs, "/aws/sagemaker/TrainingJobs", f"{name}/")
    last = messages(logs, "/aws/sagemaker/TrainingJobs", stream)[-1]
    assert re.fullmatch(ALGORITHM_PREFIX + re.escape(described["FailureReason"]), last)
    assert " ERROR " in last


def test_an_endpoint_logs_each_variant_under_its_own_group(aws: Aws, iris: Iris, logs: Any) -> None:
    config = create_config(aws, create_model(aws, put_model(aws, iris)))
    endpoint = unique("endpoint")
    aws.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    assert in_service(aws, endpoint)["EndpointStatus"] == "InService"

    group = f"/aws/sagemaker/Endpoints/{endpoint}"
    (stream,) = streams(logs, group, f"{config}/")
    assert re.fullmatch(rf"{re.escape(config)}/i-[0-9a-f]{{17}}", stream)
    lines = messages(logs, group, stream)
    assert lines[0] == "Docker entrypoint called with argument(s): serve"
    assert (
        "Loaded the k-NN model: k=1, predictor_type=classifier, 112 points of 4 features"
        in (lines[1])
    )


# -------------------------------------------------------------------- recordIO-protobuf


@pytest.mark.parametrize("mode", ["File", "Pipe"])
def test_recordio_channels_train_the_tutorial_model(aws: Aws, iris: Iris, mode: str) -> None:
    data = upload_records(aws, iris)
    channels = [recordio_channel(n, f"{data}/{n}/", InputMode=mode) for n in ("train", "test")]

    described = finished_job(aws, start_job(aws, data, InputDataConfig=channels))

    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["FinalMetricDataList"][0]["Value"] == 0.9736842105263158


def test_a_manifest_channel_reads_the_objects_it_lists(aws: Aws, iris: Iris) -> None:
    # What the SDK's record_set uploads: shards under a prefix and a manifest naming them.
    data = upload_records(aws, iris)
    key = data.split("/", 3)[3]
    manifest = [{"prefix": f"{data}/"}, "train/part-0.pbr"]
    aws.s3.put_object(Bucket=BUCKET, Key=f"{key}/train.manifest", Body=json.dumps(manifest))
    train = recordio_channel("train", f"{data}/train.manifest")
    train["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"

    described = finished_job(
        aws,
        start_job(aws, data, InputDataConfig=[train, recordio_channel("test", f"{data}/test/")]),
    )

    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["FinalMetricDataList"][0]["Value"] == 0.9736842105263158


def test_recordio_records_without_labels_cannot_train(aws: Aws, iris: Iris) -> None:
    prefix = unique("unlabelled")
    body = recordio.encode_dense(iris.train_features)
    aws.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/train/part-0.pbr", Body=body)

    described = finished_job(
        aws,
        start_job(
            aws,
            f"s3://{BUCKET}/{prefix}",
            InputDataConfig=[recordio_channel("train", f"s3://{BUCKET}/{prefix}/train/")],
        ),
    )

    assert described["FailureReason"] == (
        f"ClientError: s3://{BUCKET}/{prefix}/train/part-0.pbr: k-NN training records need a "
        "label ('values' label tensor)"
    )


@pytest.fixture(scope="module")
def endpoint(aws: Aws, iris: Iris) -> str:
    config = create_config(aws, create_model(aws, put_model(aws, iris)))
    name = unique("endpoint")
    aws.sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert in_service(aws, name)["EndpointStatus"] == "InService"
    return name


def test_recordio_requests_and_answers_predict_the_tutorial_labels(
    aws: Aws, iris: Iris, endpoint: str
) -> None:
    body = recordio.encode_dense(iris.test_features)

    answered = aws.runtime.invoke_endpoint(
        EndpointName=endpoint,
        Body=body,
        ContentType=recordio.CONTENT_TYPE,
        Accept=recordio.CONTENT_TYPE,
    )

    assert answered["ContentType"] == recordio.CONTENT_TYPE
    records = recordio.decode(answered["Body"].read())
    assert [sorted(r.label) for r in records] == [["predicted_label"]] * len(iris.test_labels)
    assert all(not r.features for r in records)
    predicted = np.array([r.label["predicted_label"].values[0] for r in records])
    assert (predicted == iris.test_labels).sum() == 37


def test_verbose_recordio_answers_carry_the_neighbours_and_json_answers_recordio_requests(
    aws: Aws, iris: Iris, endpoint: str
) -> None:
    body = recordio.encode_dense(iris.test_features[:2])

    verbose = aws.runtime.invoke_endpoint(
        EndpointName=endpoint,
        Body=body,
        ContentType=recordio.CONTENT_TYPE,
        Accept=f"{recordio.CONTENT_TYPE}; verbose=true",
    )
    as_json = aws.runtime.invoke_endpoint(
        EndpointName=endpoint, Body=body, ContentType=recordio.CONTENT_TYPE
    )

    records = recordio.decode(verbose["Body"].read())
    assert sorted(records[0].label) == ["distances", "labels", "predicted_label"]
    assert records[0].label["distances"].values.size == 1  # k = 1
    predictions = json.loads(as_json["Body"].read())["predictions"]
    assert [p["predicted_label"] for p in predictions] == [
        r.label["predicted_label"].values[0] for r in records
    ]


def test_a_body_that_is_not_recordio_is_a_model_error_saying_so(aws: Aws, endpoint: str) -> None:
    with pytest.raises(ClientError) as raised:
        aws.runtime.invoke_endpoint(
            EndpointName=endpoint, Body=b"5.1,3.5,1.4,0.2\n", ContentType=recordio.CONTENT_TYPE
        )

    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 400
    assert (
        "invalid recordIO-protobuf (byte 0: expected recordIO's magic number"
        in (response["OriginalMessage"])
    )


# ------------------------------------------------------------- what the runtime does not do


def test_async_and_streaming_invocations_say_they_are_not_supported(
    aws: Aws, endpoint: str
) -> None:
    with pytest.raises(ClientError) as asynchronous:
        aws.runtime.invoke_endpoint_async(
            EndpointName=endpoint, InputLocation=f"s3://{BUCKET}/input.csv"
        )
    with pytest.raises(ClientError) as streaming:
        aws.runtime.invoke_endpoint_with_response_stream(
            EndpointName=endpoint, Body=b"1,2,3,4", ContentType="text/csv"
        )

    for raised, operation in (
        (asynchronous, "InvokeEndpointAsync"),
        (streaming, "InvokeEndpointWithResponseStream"),
    ):
        assert error_of(raised) == (
            "ValidationError",
            f"{operation} is not supported by the local SageMaker: its endpoints are "
            "real-time only; use InvokeEndpoint",
        )
