"""The deploy function under moto: training and endpoint state changes -> the model's endpoint.

The runs come from real uploads through the format function, so the training jobs exist in moto.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dropfit.records import RunStatus

from .support import (
    ENDPOINT,
    Function,
    Stack,
    endpoint_event,
    function_env,
    spy_on,
    training_event,
)


@pytest.fixture
def train(stack: Stack, format_function: Function, iris_csv: bytes) -> Callable[[], str]:
    """Upload iris (a new version each call) and start its training job; returns the job."""

    def upload() -> str:
        version = stack.put_upload("incoming/iris.csv", iris_csv)
        job: str = format_function(stack.upload_event("incoming/iris.csv", version))["run"]
        return job

    return upload


def _artifact(stack: Stack, job: str) -> str:
    described = stack.sagemaker.describe_training_job(TrainingJobName=job)
    artifact: str = described["ModelArtifacts"]["S3ModelArtifacts"]
    return artifact


def _completed(stack: Stack, job: str) -> dict[str, object]:
    """The Completed event SageMaker sends for `job`, with the artifact it really wrote."""
    return training_event(job, artifact=_artifact(stack, job))


def test_completed_training_creates_model_serverless_config_and_endpoint(
    stack: Stack, train: Callable[[], str], deploy_function: Function
) -> None:
    env = function_env("deploy")
    job = train()

    result = deploy_function(_completed(stack, job))

    assert result == {"outcome": "create"}
    model = stack.sagemaker.describe_model(ModelName=job)
    assert model["PrimaryContainer"]["Image"] == env["KNN_IMAGE_URI"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == _artifact(stack, job)
    assert model["ExecutionRoleArn"] == stack.role_arn
    config = stack.sagemaker.describe_endpoint_config(EndpointConfigName=job)
    [variant] = config["ProductionVariants"]
    assert (variant["VariantName"], variant["ModelName"]) == (job, job)
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": int(env["SERVERLESS_MEMORY_MB"]),
        "MaxConcurrency": int(env["SERVERLESS_MAX_CONCURRENCY"]),
    }
    assert "InstanceType" not in variant
    endpoint = stack.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointConfigName"] == job
    tags = stack.sagemaker.list_tags(ResourceArn=endpoint["EndpointArn"])["Tags"]
    assert tags == [{"Key": "dropfit:model", "Value": "iris"}, {"Key": "dropfit:run", "Value": job}]


def test_completed_training_moves_the_run_to_deploying_with_the_jobs_metrics(
    stack: Stack, train: Callable[[], str], deploy_function: Function
) -> None:
    job = train()
    described = stack.sagemaker.describe_training_job(TrainingJobName=job)

    deploy_function(_completed(stack, job))

    run = stack.run("iris", job)
    assert run.status is RunStatus.DEPLOYING
    assert run.metrics == {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert run.metrics  # moto reports at least one final metric
    assert run.artifact == _artifact(stack, job)
    model = stack.model("iris")
    assert (model.desired_run, model.deploying_run, model.deployed_run) == (job, job, None)


def test_repeated_completed_event_changes_nothing(
    stack: Stack, train: Callable[[], str], deploy_function: Function
) -> None:
    job = train()
    deploy_function(_completed(stack, job))
    sagemaker_calls = spy_on(deploy_function.module.deployer.sagemaker.client)

    result = deploy_function(_completed(stack, job))

    assert result == {"outcome": "duplicate"}
    assert sagemaker_calls.calls == []
    assert stack.run("iris", job).status is RunStatus.DEPLOYING


def test_endpoint_in_service_marks_the_run_deployed(
    stack: Stack, train: Callable[[], str], deploy_function: Function
) -> None:
    job = train()
    deploy_function(_completed(stack, job))
    sagemaker_calls = spy_on(deploy_function.module.deployer.sagemaker.client)

    result = deploy_function(endpoint_event(ENDPOINT, job))

    assert result == {"outcome": "none"}
    assert sagemaker_calls.writes() == []
    assert stack.run("iris", job).status is RunStatus.DEPLOYED
    model = stack.model("iris")
    assert (model.deployed_run, model.deploying_run) == (job, None)


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_training_fails_the_run_notifies_and_leaves_the_endpoint_alone(
    stack: Stack,
    train: Callable[[], str],
    deploy_function: Function,
    status: str,
) -> None:
    serving = train()
    deploy_function(_completed(stack, serving))
    deploy_function(endpoint_event(ENDPOINT, serving))
    job = train()
    reason = "ClientError: Unable to read data channel 'train'."
    sagemaker_calls = spy_on(deploy_function.module.deployer.sagemaker.client)

    result = deploy_function(training_event(job, status, reason))

    assert result == {"outcome": "failed"}
    expected_reason = f"Training job {status.lower()}: {reason}"
    run = stack.run("iris", job)
    assert (run.status, run.reason) == (RunStatus.FAILED, expected_reason)
    assert stack.failure_notices() == [
        {"model": "iris", "run": job, "stage": "training", "reason": expected_reason}
    ]
    assert sagemaker_calls.calls == []
    assert stack.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == serving
    assert stack.run("iris", serving).status is RunStatus.DEPLOYED
    assert stack.model("iris").deployed_run == serving


def test_repeated_failed_event_notifies_once(
    stack: Stack, train: Callable[[], str], deploy_function: Function
) -> None:
    job = train()
    event = training_event(job, "Failed", "AlgorithmError: k must be at most sample_size")
    deploy_function(event)

    result = deploy_function(event)

    assert result == {"outcome": "duplicate"}
    assert len(stack.failure_notices()) == 1


def test_events_about_resources_dropfit_does_not_know_are_ignored(
    stack: Stack, deploy_function: Function
) -> None:
    sagemaker_calls = spy_on(deploy_function.module.deployer.sagemaker.client)

    training = deploy_function(training_event("dropfit-wine-0123456789ab"))
    endpoint = deploy_function(endpoint_event("dropfit-wine", "dropfit-wine-0123456789ab"))

    assert training == endpoint == {"outcome": "ignored"}
    assert sagemaker_calls.calls == []
    assert stack.table_items() == []
