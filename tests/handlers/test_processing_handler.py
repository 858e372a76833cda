"""The format function's Processing path under moto: a large upload -> a Processing job -> its
state-change event -> the training job (or the run FAILED with the job's reason)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dropfit.names import job_name, source_digest
from dropfit.processing_job import JobOptions, format_upload
from dropfit.records import RunStatus

from tests.conftest import load_function

from .support import PREFIX, Function, LambdaContextStub, Stack, function_env

KEY = "incoming/iris.csv"


@pytest.fixture
def processing_format(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Function:
    """The format function with ProcessingThresholdMB=0: every upload goes to Processing."""
    for variable, value in function_env("format").items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("PROCESSING_THRESHOLD_MB", "0")
    return Function(load_function("format"), LambdaContextStub(function_name="dropfit-format"))


def processing_event(job: str, status: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "7f1c2d3e-0000-4000-8000-000000000000",
        "detail-type": "SageMaker Processing Job State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2025-03-14T09:31:02Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{job}"],
        "detail": {"ProcessingJobName": job, "ProcessingJobStatus": status, **detail},
    }


def keys(stack: Stack, prefix: str) -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listed)


def run_the_job_as_sagemaker_would(stack: Stack, job: str, tmp_path: Path) -> None:
    """The job's entry point on the upload, its outputs put where its request says."""
    options = JobOptions.from_json(stack.read(f"processing/jobs/iris/{job}/options.json"))
    upload = tmp_path / options.upload_file
    upload.write_bytes(stack.read(KEY))
    format_upload(upload, options, tmp_path / "out")
    base = f"datasets/iris/{job}/"
    for path in sorted((tmp_path / "out").rglob("*.*")):
        relative = path.relative_to(tmp_path / "out")
        key = base + ("metadata.json" if relative.parts[0] == "metadata" else relative.as_posix())
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=path.read_bytes())


def test_a_large_upload_starts_a_processing_job_and_its_end_starts_training(
    stack: Stack, processing_format: Function, iris_csv: bytes, tmp_path: Path
) -> None:
    env = function_env("format")
    version = stack.put_upload(KEY, iris_csv, {"k": "3"})

    result = processing_format(stack.upload_event(KEY, version))

    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))
    assert result == {"outcome": "processing", "model": "iris", "run": job, "reason": None}
    run = stack.run("iris", job)
    assert run.status == RunStatus.PROCESSING
    assert run.processing == {
        "job": job,
        "instance_type": env["PROCESSING_INSTANCE_TYPE"],
        "instance_count": int(env["PROCESSING_INSTANCE_COUNT"]),
    }
    described = stack.sagemaker.describe_processing_job(ProcessingJobName=job)
    assert described["AppSpecification"]["ImageUri"] == env["PROCESSING_IMAGE_URI"]
    assert described["RoleArn"] == env["PROCESSING_ROLE_ARN"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in described["ProcessingInputs"]}
    assert inputs["upload"] == f"s3://{stack.bucket}/{KEY}"
    code = inputs["code"].removeprefix(f"s3://{stack.bucket}/")
    assert f"{code}dropfit/processing_job.py" in keys(stack, code)
    assert f"{code}COMPLETE" in keys(stack, code)
    assert keys(stack, "datasets/") == []  # nothing formatted in the function
    assert stack.training_jobs() == []

    run_the_job_as_sagemaker_would(stack, job, tmp_path)
    started = processing_format(processing_event(job, "Completed"))

    assert started == {"outcome": "started", "model": "iris", "run": job, "reason": None}
    assert stack.training_jobs() == [job]
    training = stack.sagemaker.describe_training_job(TrainingJobName=job)
    assert training["HyperParameters"] == {
        "feature_dim": "4",
        "k": "3",
        "sample_size": "112",
        "predictor_type": "classifier",
    }
    run = stack.run("iris", job)
    assert run.status == RunStatus.TRAINING
    assert run.dataset is not None and run.dataset["train_objects"] == 1
    assert run.options["k"] == "3"
    # a repeated event changes nothing
    assert processing_format(processing_event(job, "Completed"))["outcome"] == "ignored"


def test_a_failed_processing_job_ends_the_run_with_its_reason_and_leaves_no_channels(
    stack: Stack, processing_format: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    processing_format(stack.upload_event(KEY, version))
    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))
    stack.s3.put_object(Bucket=stack.bucket, Key=f"datasets/iris/{job}/train/x", Body=b"1")
    stack.failure_notices()

    reason = "Label column 'Species' has a class with 1 row; ..."
    result = processing_format(
        processing_event(
            job, "Failed", FailureReason="AlgorithmError: See job logs", ExitMessage=reason
        )
    )

    assert result["outcome"] == "failed"
    run = stack.run("iris", job)
    assert (run.status, run.reason) == (RunStatus.FAILED, reason)
    assert keys(stack, "datasets/") == []
    assert [n["reason"] for n in stack.failure_notices()] == [reason]
    assert stack.training_jobs() == []


def test_a_stopped_processing_job_ends_the_run_saying_so(
    stack: Stack, processing_format: Function, iris_csv: bytes
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    processing_format(stack.upload_event(KEY, version))
    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))

    processing_format(processing_event(job, "Stopped"))

    run = stack.run("iris", job)
    assert run.status == RunStatus.FAILED
    assert run.reason is not None and "ended Stopped" in run.reason


def test_a_large_upload_with_a_bad_header_fails_at_once_and_starts_no_job(
    stack: Stack, processing_format: Function
) -> None:
    version = stack.put_upload(KEY, b"a,a,label\n1,2,x\n", {"label": "Species"})

    result = processing_format(stack.upload_event(KEY, version))

    assert result["outcome"] == "rejected"
    assert result["reason"] == "Column name 'a' appears more than once; names must be unique."
    assert stack.sagemaker.list_processing_jobs()["ProcessingJobSummaries"] == []
    assert keys(stack, "processing/jobs/") == []


def test_a_model_deleted_while_its_upload_is_processed_never_trains_and_keeps_no_channels(
    stack: Stack, processing_format: Function, iris_csv: bytes, tmp_path: Path
) -> None:
    version = stack.put_upload(KEY, iris_csv)
    processing_format(stack.upload_event(KEY, version))
    job = job_name(PREFIX, "iris", source_digest(stack.bucket, KEY, version))
    stack.runs.update_run(
        "iris", job, only_from={RunStatus.PROCESSING}, status=RunStatus.SUPERSEDED
    )  # what DELETE /models/iris does to a run in flight
    run_the_job_as_sagemaker_would(stack, job, tmp_path)

    result = processing_format(processing_event(job, "Completed"))

    assert result["outcome"] == "ignored"
    assert stack.training_jobs() == []
    assert keys(stack, "datasets/") == []
