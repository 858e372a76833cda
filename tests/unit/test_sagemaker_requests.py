"""The SageMaker requests Dropfit builds are ones the real API model accepts."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters
from dropfit.names import job_name
from dropfit.sagemaker_requests import (
    MODEL_TAG,
    RUN_TAG,
    TrainingJobSpec,
    model_request,
    serverless_endpoint_config_request,
    training_job_request,
)

SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")
RUN = job_name("dropfit", "iris", "0123456789ab")
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/knn:1"
ROLE = "arn:aws:iam::123456789012:role/dropfit-sagemaker"


def validate(operation: str, params: dict[str, Any]) -> None:
    """What botocore does before sending: raises ParamValidationError on any mismatch."""
    shape = SAGEMAKER.operation_model(operation).input_shape
    assert shape is not None
    validate_parameters(params, shape)


def spec(instance_count: int = 1) -> TrainingJobSpec:
    return TrainingJobSpec(
        job_name=RUN,
        model="iris",
        image_uri=IMAGE,
        role_arn=ROLE,
        train_uri=f"s3://bucket/datasets/iris/{RUN}/train/",
        test_uri=f"s3://bucket/datasets/iris/{RUN}/test/",
        output_uri="s3://bucket/models/iris/",
        hyperparameters={
            "feature_dim": "4",
            "k": "3",
            "sample_size": "112",
            "predictor_type": "classifier",
        },
        instance_type="ml.m5.large",
        instance_count=instance_count,
        max_runtime_seconds=3600,
    )


def test_the_validator_catches_a_bad_request() -> None:
    # guards the tests below: validation really runs against the service model
    request = training_job_request(spec())
    del request["RoleArn"]

    with pytest.raises(ParamValidationError, match="RoleArn"):
        validate("CreateTrainingJob", request)


@pytest.mark.parametrize("instance_count", [1, 2, 5])
def test_the_training_job_request_is_valid(instance_count: int) -> None:
    validate("CreateTrainingJob", training_job_request(spec(instance_count)))


def test_the_training_job_streams_text_csv_channels_in_pipe_mode() -> None:
    request = training_job_request(spec())

    assert request["TrainingJobName"] == RUN
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": IMAGE,
        "TrainingInputMode": "Pipe",
    }
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    assert set(channels) == {"train", "test"}
    assert all(c["ContentType"] == "text/csv" for c in channels.values())
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == spec().train_uri
    assert channels["test"]["DataSource"]["S3DataSource"]["S3Uri"] == spec().test_uri
    assert request["HyperParameters"] == spec().hyperparameters
    assert request["ResourceConfig"]["InstanceCount"] == 1
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def distribution(request: dict[str, Any], channel: str) -> str:
    (found,) = [c for c in request["InputDataConfig"] if c["ChannelName"] == channel]
    return str(found["DataSource"]["S3DataSource"]["S3DataDistributionType"])


def test_one_instance_gets_the_whole_training_set() -> None:
    request = training_job_request(spec(1))

    assert distribution(request, "train") == "FullyReplicated"


def test_several_instances_shard_the_training_set_by_key() -> None:
    request = training_job_request(spec(3))

    assert distribution(request, "train") == "ShardedByS3Key"
    assert distribution(request, "test") == "FullyReplicated"


def test_the_hyperparameters_are_a_copy() -> None:
    training_spec = spec()
    request = training_job_request(training_spec)

    request["HyperParameters"]["k"] = "99"

    assert training_spec.hyperparameters["k"] == "3"


def test_the_model_request_is_valid_and_tagged() -> None:
    request = model_request(
        name=RUN,
        model="iris",
        image_uri=IMAGE,
        artifact_uri=f"s3://bucket/models/iris/{RUN}/output/model.tar.gz",
        role_arn=ROLE,
    )

    validate("CreateModel", request)
    assert request["ModelName"] == RUN
    assert request["PrimaryContainer"]["ModelDataUrl"].endswith("model.tar.gz")
    assert request["Tags"] == [{"Key": MODEL_TAG, "Value": "iris"}, {"Key": RUN_TAG, "Value": RUN}]


def test_the_serverless_endpoint_config_is_valid_with_the_variant_named_after_the_run() -> None:
    request = serverless_endpoint_config_request(
        name=RUN, model="iris", memory_mb=2048, max_concurrency=5
    )

    validate("CreateEndpointConfig", request)
    (variant,) = request["ProductionVariants"]
    assert variant["VariantName"] == RUN
    assert variant["ModelName"] == RUN
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    assert request["Tags"] == [{"Key": MODEL_TAG, "Value": "iris"}, {"Key": RUN_TAG, "Value": RUN}]


def test_every_request_is_tagged_with_model_and_run() -> None:
    request = training_job_request(spec())

    assert request["Tags"] == [{"Key": MODEL_TAG, "Value": "iris"}, {"Key": RUN_TAG, "Value": RUN}]
