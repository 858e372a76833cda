"""Processing jobs on the local SageMaker: dropfit's own job request, run for real."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from dropfit.aws.s3 import Storage
from dropfit.dataset import format_dataset
from dropfit.errors import InvalidUpload
from dropfit.options import Defaults, parse_options
from dropfit.processing import CodePublisher, job_options_key, write_job_options
from dropfit.processing_job import JobOptions
from dropfit.sagemaker_requests import ProcessingJobSpec, processing_job_request

from .conftest import BUCKET, DATA, ROLE, Aws

SKLEARN_IMAGE = (
    "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-py312-cpu-py3"
)
BUSY = ("InProgress", "Stopping")
DEFAULTS = {"k": "1", "scale": "none", "encode": "refuse", "missing": "refuse", "min_score": "none"}


def finished(aws: Aws, name: str, timeout: float = 120) -> dict[str, Any]:
    """DescribeProcessingJob once the job has ended (it starts a Python process)."""
    deadline = time.monotonic() + timeout
    while (described := aws.sagemaker.describe_processing_job(ProcessingJobName=name))[
        "ProcessingJobStatus"
    ] in BUSY:
        assert time.monotonic() < deadline, f"still {described['ProcessingJobStatus']}"
        time.sleep(0.1)
    return described


def start(aws: Aws, body: bytes, metadata: dict[str, str] | None = None) -> tuple[str, str]:
    """Upload ``body`` and start dropfit's Processing job on it; (job name, run prefix)."""
    name = f"dropfit-0000aaaa-t-{uuid.uuid4().hex[:12]}"
    key = f"incoming/{name}.csv"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata or {})
    storage = Storage(aws.s3)
    options_key = job_options_key("processing/jobs/", "t", name)
    job_uri = write_job_options(
        storage,
        BUCKET,
        options_key,
        JobOptions(f"{name}.csv", metadata or {}, DEFAULTS, training_instance_count=1),
    )
    run = f"datasets/t/{name}"
    request = processing_job_request(
        ProcessingJobSpec(
            job_name=name,
            model="t",
            image_uri=SKLEARN_IMAGE,
            role_arn=ROLE,
            code_uri=CodePublisher(storage, BUCKET, "processing/code/").publish(),
            job_uri=job_uri,
            upload_uri=f"s3://{BUCKET}/{key}",
            run_uri=f"s3://{BUCKET}/{run}",
            upload_bytes=len(body),
            instance_type="ml.m5.xlarge",
            instance_count=1,
        )
    )
    aws.sagemaker.create_processing_job(**request)
    return name, run


def objects(aws: Aws, prefix: str) -> dict[str, bytes]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {
        item["Key"][len(prefix) :]: aws.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        for item in listed
    }


def test_processing_job_writes_the_channels_the_formatter_writes_and_says_so(aws: Aws) -> None:
    body = (DATA / "iris.csv").read_bytes()

    name, run = start(aws, body, {"k": "3"})
    described = finished(aws, name)

    assert described["ProcessingJobStatus"] == "Completed", described.get("FailureReason")
    expected = format_dataset(body, parse_options({"k": "3"}, Defaults()), 1)
    assert objects(aws, f"{run}/") == {
        "train/train.csv": expected.train_csv,
        "test/test.csv": expected.test_csv,
        "metadata.json": expected.metadata.to_json(),
    }
    assert described["ProcessingStartTime"] <= described["ProcessingEndTime"]
    assert "ExitMessage" not in described
    events = aws.events(described["ProcessingJobArn"], minimum=2)
    assert [e["detail"]["ProcessingJobStatus"] for e in events] == ["InProgress", "Completed"]
    completed = events[-1]
    assert completed["source"] == "aws.sagemaker"
    assert completed["detail-type"] == "SageMaker Processing Job State Change"
    assert completed["detail"]["ProcessingJobName"] == name
    assert completed["detail"]["Tags"] == {"dropfit:model": "t", "dropfit:run": name}
    assert isinstance(completed["detail"]["ProcessingEndTime"], int)  # epoch milliseconds


def test_an_upload_found_invalid_fails_the_job_with_its_reason_and_writes_nothing(
    aws: Aws,
) -> None:
    body = b"a,b,label\n1,2,x\n3,oops,y\n" + b"5,6,x\n" * 20

    name, run = start(aws, body)
    described = finished(aws, name)

    assert described["ProcessingJobStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: See job logs for more detail."
    with pytest.raises(InvalidUpload) as refused:  # what the format function says in place
        format_dataset(body, parse_options({}, Defaults()), 1)
    assert described["ExitMessage"] == refused.value.message
    assert objects(aws, f"{run}/") == {}
    events = aws.events(described["ProcessingJobArn"], minimum=2)
    assert events[-1]["detail"]["ExitMessage"] == described["ExitMessage"]


def _sleeping_job(aws: Aws, name: str) -> None:
    aws.sagemaker.create_processing_job(
        ProcessingJobName=name,
        ProcessingResources={
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.xlarge",
                "VolumeSizeInGB": 30,
            }
        },
        AppSpecification={
            "ImageUri": SKLEARN_IMAGE,
            "ContainerEntrypoint": ["python3", "-c", "import time; time.sleep(60)"],
        },
        RoleArn=ROLE,
    )


def test_stop_processing_job_ends_it_stopped_and_lists_filter(aws: Aws) -> None:
    name = f"sleeper-{uuid.uuid4().hex[:8]}"
    _sleeping_job(aws, name)

    aws.sagemaker.stop_processing_job(ProcessingJobName=name)
    described = finished(aws, name)

    assert described["ProcessingJobStatus"] == "Stopped"
    statuses = [
        e["detail"]["ProcessingJobStatus"]
        for e in aws.events(described["ProcessingJobArn"], minimum=3)
    ]
    assert statuses == ["InProgress", "Stopping", "Stopped"]
    with pytest.raises(ClientError) as raised:
        aws.sagemaker.stop_processing_job(ProcessingJobName=name)
    assert "in status Stopped" in raised.value.response["Error"]["Message"]
    listed = aws.sagemaker.list_processing_jobs(NameContains=name)["ProcessingJobSummaries"]
    assert [(s["ProcessingJobName"], s["ProcessingJobStatus"]) for s in listed] == [
        (name, "Stopped")
    ]
    assert (
        aws.sagemaker.list_processing_jobs(NameContains=name, StatusEquals="Completed")[
            "ProcessingJobSummaries"
        ]
        == []
    )


def test_processing_requests_are_validated_as_aws_does(aws: Aws) -> None:
    name = f"twice-{uuid.uuid4().hex[:8]}"
    _sleeping_job(aws, name)
    with pytest.raises(ClientError) as raised:
        _sleeping_job(aws, name)
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    aws.sagemaker.stop_processing_job(ProcessingJobName=name)

    with pytest.raises(ClientError) as raised:
        aws.sagemaker.describe_processing_job(ProcessingJobName="nobody-here")
    assert raised.value.response["Error"]["Code"] == "ValidationException"

    with pytest.raises(ClientError) as raised:
        aws.sagemaker.create_processing_job(
            ProcessingJobName=f"bad-{uuid.uuid4().hex[:8]}",
            ProcessingInputs=[
                {
                    "InputName": "data",
                    "S3Input": {
                        "S3Uri": f"s3://{BUCKET}/incoming/",
                        "LocalPath": "/tmp/data",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            ProcessingResources={
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.xlarge",
                    "VolumeSizeInGB": 30,
                }
            },
            AppSpecification={"ImageUri": SKLEARN_IMAGE, "ContainerEntrypoint": ["python3"]},
            RoleArn=ROLE,
        )
    assert "must be under /opt/ml/processing/" in raised.value.response["Error"]["Message"]
