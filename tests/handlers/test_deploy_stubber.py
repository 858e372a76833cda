"""The deploy function's endpoint updates, with SageMaker scripted by botocore's Stubber.

moto has no UpdateEndpoint, answers every endpoint as InService at once and silently overwrites
duplicate names, so these cases script SageMaker call by call: each test lists every call the
function may make, in order, and any other call (a second create, an update, any delete) fails
it. DynamoDB and SNS stay moto's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from dropfit.deployment import EndpointBusy
from dropfit.records import Run, RunStatus

from .support import (
    ENDPOINT,
    METRICS,
    NEW,
    NEW_AT,
    OLD,
    OLD_AT,
    Function,
    SageMakerScript,
    Stack,
    endpoint_event,
    training_event,
)

# Invocations that raise add no metric; Powertools warns about the empty flush, as expected.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ROLLED_BACK = (
    f"The primary container for production variant {NEW} did not pass the "
    "ping health check. Please check CloudWatch logs for this endpoint."
)


def _artifact(job: str) -> str:
    return f"s3://dropfit-data-example/models/iris/{job}/output/model.tar.gz"


def _completed(job: str) -> dict[str, object]:
    return training_event(job, artifact=_artifact(job))


@pytest.fixture
def sagemaker(deploy_function: Function, stack: Stack) -> Iterator[SageMakerScript]:
    with SageMakerScript(deploy_function.module.deployer.sagemaker.client, stack.region) as script:
        yield script


def _script_training_finished(sagemaker: SageMakerScript, job: str) -> None:
    sagemaker.training_job(job, _artifact(job), METRICS)
    sagemaker.creates_model(job)
    sagemaker.creates_endpoint_config(job)


def test_model_trained_while_the_endpoint_serves_the_old_run_updates_it_in_place(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
    deployed: Run,
) -> None:
    stack.seed_run(NEW, RunStatus.TRAINING, created_at=NEW_AT)
    _script_training_finished(sagemaker, NEW)
    sagemaker.endpoint(ENDPOINT, "InService", OLD)
    sagemaker.updates_endpoint(ENDPOINT, NEW)

    result = deploy_function(_completed(NEW))

    assert result == {"outcome": "update"}
    sagemaker.assert_done()
    new = stack.run("iris", NEW)
    assert (new.status, new.metrics, new.artifact) == (RunStatus.DEPLOYING, METRICS, _artifact(NEW))
    assert stack.run("iris", OLD).status is RunStatus.DEPLOYED
    model = stack.model("iris")
    assert (model.desired_run, model.deploying_run, model.deployed_run) == (NEW, NEW, OLD)


def test_updated_endpoint_in_service_marks_the_new_run_deployed_and_the_old_superseded(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
    deployed: Run,
) -> None:
    new = stack.seed_run(NEW, RunStatus.DEPLOYING, created_at=NEW_AT)
    stack.seed_model(desired=new, deploying=NEW, deployed=OLD)
    sagemaker.endpoint(ENDPOINT, "InService", NEW)

    result = deploy_function(endpoint_event(ENDPOINT, NEW))

    assert result == {"outcome": "none"}
    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.DEPLOYED
    old = stack.run("iris", OLD)
    assert (old.status, old.reason) == (RunStatus.SUPERSEDED, f"Replaced by {NEW}.")
    model = stack.model("iris")
    assert (model.deploying_run, model.deployed_run) == (None, NEW)


@pytest.mark.parametrize("busy", ["Updating", "Creating", "SystemUpdating", "RollingBack"])
def test_model_trained_while_the_endpoint_is_busy_waits_then_deploys_when_it_settles(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
    deployed: Run,
    busy: str,
) -> None:
    stack.seed_run(NEW, RunStatus.TRAINING, created_at=NEW_AT)
    _script_training_finished(sagemaker, NEW)
    sagemaker.endpoint(ENDPOINT, busy, OLD)

    waited = deploy_function(_completed(NEW))

    assert waited == {"outcome": "wait"}
    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.TRAINED
    assert (stack.model("iris").desired_run, stack.model("iris").deploying_run) == (NEW, None)

    sagemaker.endpoint(ENDPOINT, "InService", OLD)
    sagemaker.updates_endpoint(ENDPOINT, NEW)

    settled = deploy_function(endpoint_event(ENDPOINT, OLD))

    assert settled == {"outcome": "update"}
    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.DEPLOYING
    assert stack.model("iris").deploying_run == NEW


def test_update_refused_as_in_progress_is_treated_as_busy(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
    deployed: Run,
) -> None:
    stack.seed_run(NEW, RunStatus.TRAINING, created_at=NEW_AT)
    _script_training_finished(sagemaker, NEW)
    sagemaker.endpoint(ENDPOINT, "InService", OLD)
    sagemaker.refuses_update(
        ENDPOINT,
        NEW,
        "ValidationException",
        f'Cannot update in-progress endpoint "{sagemaker.arn}:endpoint/{ENDPOINT}".',
    )

    result = deploy_function(_completed(NEW))

    assert result == {"outcome": "wait"}
    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.TRAINED
    assert stack.model("iris").deploying_run is None
    assert stack.failure_notices() == []

    sagemaker.endpoint(ENDPOINT, "InService", OLD)
    sagemaker.updates_endpoint(ENDPOINT, NEW)

    retried = deploy_function(endpoint_event(ENDPOINT, OLD))

    assert retried == {"outcome": "update"}
    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.DEPLOYING


def test_update_refused_for_another_reason_raises_and_lambdas_retry_deploys(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
    deployed: Run,
) -> None:
    stack.seed_run(NEW, RunStatus.TRAINING, created_at=NEW_AT)
    _script_training_finished(sagemaker, NEW)
    sagemaker.endpoint(ENDPOINT, "InService", OLD)
    sagemaker.refuses_update(ENDPOINT, NEW, "ThrottlingException", "Rate exceeded")

    with pytest.raises(ClientError, match="ThrottlingException"):
        deploy_function(_completed(NEW))

    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.TRAINED

    sagemaker.endpoint(ENDPOINT, "InService", OLD)
    sagemaker.updates_endpoint(ENDPOINT, NEW)

    retried = deploy_function(_completed(NEW))  # the same event again

    assert retried == {"outcome": "update"}
    sagemaker.assert_done()  # the model and config are not created twice
    assert stack.run("iris", NEW).status is RunStatus.DEPLOYING


MODEL_EXISTS = {
    "resource in use": ("ResourceInUse", "Resource already exists."),
    "already existing": (
        "ValidationException",
        'Cannot create already existing model "arn:aws:sagemaker:eu-west-1:123456789012:model/'
        f'{OLD}".',
    ),
}
CONFIG_EXISTS = {
    "resource in use": ("ResourceInUse", "Resource already exists."),
    "already existing": (
        "ValidationException",
        "Cannot create already existing endpoint configuration "
        f'"arn:aws:sagemaker:eu-west-1:123456789012:endpoint-config/{OLD}".',
    ),
}


@pytest.mark.parametrize("spelling", MODEL_EXISTS.keys())
def test_model_and_config_left_by_an_interrupted_attempt_are_reused(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
    spelling: str,
) -> None:
    stack.seed_run(OLD, RunStatus.TRAINING, created_at=OLD_AT)
    sagemaker.training_job(OLD, _artifact(OLD), METRICS)
    sagemaker.creates_model(OLD, refused_with=MODEL_EXISTS[spelling])
    sagemaker.creates_endpoint_config(OLD, refused_with=CONFIG_EXISTS[spelling])
    sagemaker.no_endpoint(ENDPOINT)
    sagemaker.creates_endpoint(ENDPOINT, OLD)

    result = deploy_function(_completed(OLD))

    assert result == {"outcome": "create"}
    sagemaker.assert_done()
    assert stack.run("iris", OLD).status is RunStatus.DEPLOYING
    assert stack.model("iris").deploying_run == OLD


def test_create_model_refused_for_another_reason_fails_the_run_at_once_and_notifies(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
) -> None:
    stack.seed_run(OLD, RunStatus.TRAINING, created_at=OLD_AT)
    sagemaker.training_job(OLD, _artifact(OLD), METRICS)
    sagemaker.creates_model(
        OLD, refused_with=("ValidationException", "Could not access model data at s3://x.")
    )

    outcome = deploy_function(_completed(OLD))  # no retry: the same request would be refused

    sagemaker.assert_done()
    run = stack.run("iris", OLD)
    assert (outcome, run.status) == ({"outcome": "failed"}, RunStatus.FAILED)
    assert run.reason == (
        "Could not deploy the trained model to its endpoint: CreateModel answered "
        "ValidationException (Could not access model data at s3://x.). Retrying would not help; "
        "this is a problem of the deployment, not of the upload. Tell the stack's operator (the "
        "function's log has the details)."
    )
    assert [n["run"] for n in stack.failure_notices()] == [OLD]


def test_endpoint_rolled_back_to_the_old_config_fails_the_new_run_once(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
    deployed: Run,
) -> None:
    new = stack.seed_run(NEW, RunStatus.DEPLOYING, created_at=NEW_AT)
    stack.seed_model(desired=new, deploying=NEW, deployed=OLD)
    sagemaker.endpoint(ENDPOINT, "InService", OLD, failure_reason=ROLLED_BACK)

    result = deploy_function(endpoint_event(ENDPOINT, OLD))

    assert result == {"outcome": "none"}
    sagemaker.assert_done()  # no update back to NEW, nothing deleted
    reason = f"Deployment failed: {ROLLED_BACK}"
    failed = stack.run("iris", NEW)
    assert (failed.status, failed.reason) == (RunStatus.FAILED, reason)
    assert stack.run("iris", OLD).status is RunStatus.DEPLOYED
    model = stack.model("iris")
    assert (model.desired_run, model.deploying_run, model.deployed_run) == (OLD, None, OLD)
    assert stack.failure_notices() == [
        {"model": "iris", "run": NEW, "stage": "deployment", "reason": reason}
    ]

    sagemaker.endpoint(ENDPOINT, "InService", OLD, failure_reason=ROLLED_BACK)

    again = deploy_function(endpoint_event(ENDPOINT, OLD))

    assert again == {"outcome": "none"}
    sagemaker.assert_done()
    assert stack.failure_notices() == []


def test_first_endpoint_failing_fails_its_run_once(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
) -> None:
    old = stack.seed_run(OLD, RunStatus.DEPLOYING, created_at=OLD_AT)
    stack.seed_model(desired=old, deploying=OLD)
    sagemaker.endpoint(ENDPOINT, "Failed", OLD, failure_reason="Image pull failed.")

    result = deploy_function(endpoint_event(ENDPOINT, OLD, "FAILED"))

    assert result == {"outcome": "none"}
    sagemaker.assert_done()  # the failed endpoint is kept for inspection
    run = stack.run("iris", OLD)
    assert (run.status, run.reason) == (RunStatus.FAILED, "Deployment failed: Image pull failed.")
    model = stack.model("iris")
    assert (model.desired_run, model.deploying_run, model.deployed_run) == (None, None, None)
    assert stack.failure_notices() == [
        {
            "model": "iris",
            "run": OLD,
            "stage": "deployment",
            "reason": "Deployment failed: Image pull failed.",
        }
    ]


def test_next_model_replaces_a_failed_first_endpoint_by_deleting_and_recreating_it(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
) -> None:
    stack.seed_run(
        OLD, RunStatus.FAILED, created_at=OLD_AT, reason="Deployment failed: Image pull failed."
    )
    stack.seed_run(NEW, RunStatus.TRAINING, created_at=NEW_AT)
    _script_training_finished(sagemaker, NEW)
    sagemaker.endpoint(ENDPOINT, "Failed", OLD, failure_reason="Image pull failed.")
    sagemaker.deletes_endpoint(ENDPOINT)

    # Raising makes Lambda retry the event once SageMaker has deleted the endpoint.
    with pytest.raises(EndpointBusy, match=f"the retry creates it with {NEW}"):
        deploy_function(_completed(NEW))

    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.TRAINED
    sagemaker.endpoint(ENDPOINT, "Deleting", OLD)

    with pytest.raises(EndpointBusy, match="is being deleted"):
        deploy_function(_completed(NEW))

    sagemaker.assert_done()
    sagemaker.no_endpoint(ENDPOINT)
    sagemaker.creates_endpoint(ENDPOINT, NEW)

    created = deploy_function(_completed(NEW))

    assert created == {"outcome": "create"}
    sagemaker.assert_done()
    assert stack.run("iris", NEW).status is RunStatus.DEPLOYING
    assert stack.failure_notices() == []


def test_older_run_finishing_after_a_newer_one_is_deployed_is_superseded(
    stack: Stack,
    deploy_function: Function,
    sagemaker: SageMakerScript,
) -> None:
    stack.seed_run(OLD, RunStatus.TRAINING, created_at=OLD_AT)
    new = stack.seed_run(NEW, RunStatus.DEPLOYED, created_at=NEW_AT)
    stack.seed_model(desired=new, deployed=NEW)
    _script_training_finished(sagemaker, OLD)  # and nothing else: no endpoint call at all

    result = deploy_function(_completed(OLD))

    assert result == {"outcome": "superseded"}
    sagemaker.assert_done()
    old = stack.run("iris", OLD)
    assert (old.status, old.reason) == (
        RunStatus.SUPERSEDED,
        "A newer upload of this model was trained first.",
    )
    assert stack.run("iris", NEW).status is RunStatus.DEPLOYED
    model = stack.model("iris")
    assert (model.desired_run, model.deployed_run) == (NEW, NEW)
    assert stack.failure_notices() == []
