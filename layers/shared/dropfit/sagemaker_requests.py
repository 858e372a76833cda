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


PROCESSING_ROOT = "/opt/ml/processing"
PROCESSING_MAX_SECONDS = 24 * 3600
# The upload, then its channels (about as large again), on the instance's volume, plus room for
# the image's own files.
PROCESSING_VOLUME_FLOOR_GB = 30


@dataclass(frozen=True, slots=True)
class ProcessingJobSpec:
    job_name: str
    model: str
    image_uri: str
    role_arn: str
    code_uri: str  # s3://bucket/processing/code/<content hash>/ (the dropfit package)
    job_uri: str  # s3://bucket/processing/jobs/<model>/<job>/ (options.json)
    upload_uri: str  # s3://bucket/incoming/<key>
    run_uri: str  # s3://bucket/datasets/<model>/<job> (no trailing slash)
    upload_bytes: int
    instance_type: str
    instance_count: int


def processing_volume_gb(upload_bytes: int) -> int:
    """The upload and its channels (at most ~1.1x its size: labels as ints, no header) on disk."""
    gib = 1024**3
    return max(PROCESSING_VOLUME_FLOOR_GB, -(-upload_bytes * 5 // (2 * gib)) + 10)


def _processing_input(name: str, uri: str) -> dict[str, Any]:
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": f"{PROCESSING_ROOT}/input/{name}",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _processing_output(name: str, uri: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {
            "S3Uri": uri,
            "LocalPath": f"{PROCESSING_ROOT}/output/{name}",
            "S3UploadMode": "EndOfJob",
        },
    }


def processing_job_request(spec: ProcessingJobSpec) -> dict[str, Any]:
    """CreateProcessingJob running ``python3 -m dropfit.processing_job`` in the scikit-learn
    image: the code, the job's options and the upload in; the run's channels and metadata out,
    to the same keys the format function writes."""
    code = f"{PROCESSING_ROOT}/input/code"
    return {
        "ProcessingJobName": spec.job_name,
        "ProcessingInputs": [
            _processing_input("code", spec.code_uri),
            _processing_input("job", spec.job_uri),
            _processing_input("upload", spec.upload_uri),
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                _processing_output("train", f"{spec.run_uri}/train"),
                _processing_output("test", f"{spec.run_uri}/test"),
                _processing_output("metadata", spec.run_uri),
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": spec.instance_count,
                "InstanceType": spec.instance_type,
                "VolumeSizeInGB": processing_volume_gb(spec.upload_bytes),
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": PROCESSING_MAX_SECONDS},
        "AppSpecification": {
            "ImageUri": spec.image_uri,
            "ContainerEntrypoint": ["python3", "-m", "dropfit.processing_job"],
            "ContainerArguments": [
                "--upload",
                f"{PROCESSING_ROOT}/input/upload",
                "--job",
                f"{PROCESSING_ROOT}/input/job/options.json",
                "--output",
                f"{PROCESSING_ROOT}/output",
                "--message",
                "/opt/ml/output/message",
                "--resource-config",
                "/opt/ml/config/resourceconfig.json",
            ],
        },
        "Environment": {"PYTHONPATH": code},
        "RoleArn": spec.role_arn,
        "Tags": tags(spec.model, spec.job_name),
    }
