"""The deploy function under moto: training and endpoint state changes -> the model's endpoint.

The runs come from real uploads through the format function, so the training jobs exist in moto.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dropfit.records import RunStatus

from .support import (
    ENDPOINT,
    PREFIX,
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

    training = deploy_function(training_event(f"{PREFIX}-wine-0123456789ab"))
    endpoint = deploy_function(endpoint_event(f"{PREFIX}-wine", f"{PREFIX}-wine-0123456789ab"))

    assert training == endpoint == {"outcome": "ignored"}
    assert sagemaker_calls.calls == []
    assert stack.table_items() == []


# --- the quality gate ------------------------------------------------------------------------


@pytest.fixture
def train_with(
    stack: Stack, format_function: Function, iris_csv: bytes
) -> Callable[[dict[str, str]], str]:
    """Upload iris with options (a new version each call); returns the job."""

    def upload(metadata: dict[str, str]) -> str:
        version = stack.put_upload("incoming/iris.csv", iris_csv, metadata)
        job: str = format_function(stack.upload_event("incoming/iris.csv", version))["run"]
        return job

    return upload


@pytest.fixture
def accuracy_of(deploy_function: Function, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """Test accuracies the training jobs report, by job (moto reports only train:progress)."""
    accuracies: dict[str, float] = {}
    control = deploy_function.module.deployer.sagemaker
    describe = control.describe_training_job

    def with_accuracy(name: str) -> dict[str, object]:
        described = describe(name)
        if name in accuracies:
            metric = {"MetricName": "test:accuracy", "Value": accuracies[name]}
            described["FinalMetricDataList"] = [metric]
        return described

    monkeypatch.setattr(control, "describe_training_job", with_accuracy)
    return accuracies


def _serve(stack: Stack, deploy_function: Function, job: str) -> None:
    deploy_function(_completed(stack, job))
    deploy_function(endpoint_event(ENDPOINT, job))


def test_a_run_below_min_score_is_rejected_and_the_serving_model_stays(
    stack: Stack,
    train: Callable[[], str],
    train_with: Callable[[dict[str, str]], str],
    deploy_function: Function,
    accuracy_of: dict[str, float],
) -> None:
    serving = train()
    accuracy_of[serving] = 0.97
    _serve(stack, deploy_function, serving)
    job = train_with({"min_score": "0.99"})
    accuracy_of[job] = 0.98
    sagemaker_calls = spy_on(deploy_function.module.deployer.sagemaker.client)

    result = deploy_function(_completed(stack, job))

    assert result == {"outcome": "rejected"}
    run = stack.run("iris", job)
    reason = (
        "Test accuracy 0.9800 is below min_score 0.99; the model keeps serving what it serves. "
        "Improve the data or its options (scale=auto, k=auto), or lower min_score."
    )
    assert (run.status, run.reason) == (RunStatus.REJECTED, reason)
    assert run.gate is not None and (run.gate["score"], run.gate["min_score"]) == (0.98, 0.99)
    assert stack.failure_notices() == [
        {"model": "iris", "run": job, "stage": "quality gate", "reason": reason}
    ]
    assert sagemaker_calls.writes() == []  # no model, no endpoint config, no update
    assert stack.model("iris").deployed_run == serving
    assert stack.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == serving


def test_a_run_worse_than_the_serving_one_by_more_than_the_margin_is_rejected(
    stack: Stack,
    train: Callable[[], str],
    deploy_function: Function,
    accuracy_of: dict[str, float],
) -> None:
    margin = float(function_env("deploy")["REPLACE_MARGIN"])
    serving = train()
    accuracy_of[serving] = 0.97
    _serve(stack, deploy_function, serving)
    job = train()
    accuracy_of[job] = 0.97 - margin - 0.01

    result = deploy_function(_completed(stack, job))

    assert result == {"outcome": "rejected"}
    run = stack.run("iris", job)
    assert run.status is RunStatus.REJECTED
    assert run.reason is not None and f"by more than the margin {margin}" in run.reason
    assert run.gate is not None and run.gate["serving_run"] == serving
    assert stack.model("iris").deployed_run == serving


def test_force_replaces_the_serving_model_with_a_worse_one(
    stack: Stack,
    train_with: Callable[[dict[str, str]], str],
    deploy_function: Function,
    accuracy_of: dict[str, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serving = train_with({})
    accuracy_of[serving] = 0.97
    _serve(stack, deploy_function, serving)
    job = train_with({"force": "true"})
    accuracy_of[job] = 0.5
    updates: list[tuple[str, str]] = []
    control = deploy_function.module.deployer.sagemaker
    # moto has no UpdateEndpoint (test_deploy_stubber.py scripts it): record the call
    monkeypatch.setattr(
        control,
        "update_endpoint",
        lambda endpoint, config: updates.append((endpoint, config)) or True,
    )

    result = deploy_function(_completed(stack, job))

    assert result == {"outcome": "update"}
    assert updates == [(ENDPOINT, job)]
    assert stack.run("iris", job).status is RunStatus.DEPLOYING
