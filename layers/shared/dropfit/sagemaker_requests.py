"""Builders for the SageMaker requests Dropfit makes: pure functions over plain data.

botocore validates the result against the real API model when it is sent; tests do the same
offline with ``botocore.validate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODEL_TAG = "dropfit:model"
RUN_TAG = "dropfit:run"
TRAINING_VOLUME_GB = 5  # Pipe mode streams the channels; the volume only holds logs and the model


@dataclass(frozen=True, slots=True)
class TrainingJobSpec:
    job_name: str
    model: str
    image_uri: str
    role_arn: str
    train_uri: str  # s3://bucket/datasets/<model>/<job>/train/
    test_uri: str
    output_uri: str  # s3://bucket/models/<model>/
    hyperparameters: dict[str, str]
    instance_type: str
    instance_count: int
    max_runtime_seconds: int


def tags(model: str, run: str) -> list[dict[str, str]]:
    return [{"Key": MODEL_TAG, "Value": model}, {"Key": RUN_TAG, "Value": run}]


def _channel(name: str, uri: str, distribution: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": distribution,
            }
        },
        "ContentType": "text/csv",
        "CompressionType": "None",
    }


def training_job_request(spec: TrainingJobSpec) -> dict[str, Any]:
    """CreateTrainingJob for the built-in k-NN: Pipe mode, text/csv train and test channels."""
    # Several instances each index a shard of the training data (k-NN merges them at inference).
    train_distribution = "ShardedByS3Key" if spec.instance_count > 1 else "FullyReplicated"
    return {
        "TrainingJobName": spec.job_name,
        "AlgorithmSpecification": {
            "TrainingImage": spec.image_uri,
            "TrainingInputMode": "Pipe",
        },
        "RoleArn": spec.role_arn,
        "InputDataConfig": [
            _channel("train", spec.train_uri, train_distribution),
            _channel("test", spec.test_uri, "FullyReplicated"),
        ],
        "OutputDataConfig": {"S3OutputPath": spec.output_uri},
        "ResourceConfig": {
            "InstanceType": spec.instance_type,
            "InstanceCount": spec.instance_count,
            "VolumeSizeInGB": TRAINING_VOLUME_GB,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_seconds},
        "HyperParameters": dict(spec.hyperparameters),
        "Tags": tags(spec.model, spec.job_name),
    }


def model_request(
    *, name: str, model: str, image_uri: str, artifact_uri: str, role_arn: str
) -> dict[str, Any]:
    return {
        "ModelName": name,
        "PrimaryContainer": {"Image": image_uri, "ModelDataUrl": artifact_uri},
        "ExecutionRoleArn": role_arn,
        "Tags": tags(model, name),
    }


def serverless_endpoint_config_request(
    *, name: str, model: str, memory_mb: int, max_concurrency: int
) -> dict[str, Any]:
    """One serverless variant named after its run, so answers say which run produced them."""
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": name,
                "ModelName": name,
                "ServerlessConfig": {
                    "MemorySizeInMB": memory_mb,
                    "MaxConcurrency": max_concurrency,
                },
            }
        ],
        "Tags": tags(model, name),
    }
