"""Delete, rollback and pruning through the functions, under moto.

The runs come from real uploads through the format function and real deploy events. moto has no
StopTrainingJob nor UpdateEndpoint: those two calls are answered by ``Answers`` (a botocore
``before-call`` hook that records them), everything else is moto's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import Mock

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError
from dropfit.records import MODEL_DELETED_REASON, RunStatus

from .support import (
    ENDPOINT,
    NEW,
    NEW_AT,
    OLD,
    OLD_AT,
    Function,
    Stack,
    api_event,
    endpoint_event,
    http_answer,
    training_event,
)


class Answers:
    """Answers the operations moto lacks, and records their parameters."""

    def __init__(self, client: Any, *operations: str) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for operation in operations:
            client.meta.events.register(f"before-parameter-build.sagemaker.{operation}", self._keep)
            client.meta.events.register(f"before-call.sagemaker.{operation}", self._answer)

    def _keep(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def _answer(self, **_: Any) -> tuple[Any, dict]:
        return AWSResponse("https://sagemaker.local/", 200, HTTPHeaders(), None), {
            "ResponseMetadata": {"HTTPStatusCode": 200}
        }

    def sent(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]


@pytest.fixture
def train(stack: Stack, format_function: Function, iris_csv: bytes) -> Callable[..., str]:
    """Upload iris (a new version each call, with as many blank lines at its end as asked: another
    run) and start its training job; returns the job."""

    def upload(blank_lines: int = 0) -> str:
        version = stack.put_upload("incoming/iris.csv", iris_csv + b"\n" * blank_lines)
        result = format_function(stack.upload_event("incoming/iris.csv", version))
        assert result["outcome"] == "started", result
        job: str = result["run"]
        return job

    return upload


def _completed(stack: Stack, job: str) -> dict[str, Any]:
    described = stack.sagemaker.describe_training_job(TrainingJobName=job)
    return training_event(job, artifact=described["ModelArtifacts"]["S3ModelArtifacts"])


@pytest.fixture
def deploy(stack: Stack, deploy_function: Function) -> Callable[[str], None]:
    """Training completed, endpoint created (moto: InService at once) and its event handled."""

    def run(job: str) -> None:
        assert deploy_function(_completed(stack, job))["outcome"] == "create"
        assert deploy_function(endpoint_event(ENDPOINT, job))["outcome"] == "none"

    return run


def _exists(call: Callable[..., Any], **name: str) -> bool:
    try:
        call(**name)
    except ClientError:
        return False
    return True


def _resources(stack: Stack, job: str) -> tuple[bool, bool]:
    """Whether the run's endpoint config and SageMaker model exist."""
    sagemaker = stack.sagemaker
    return (
        _exists(sagemaker.describe_endpoint_config, EndpointConfigName=job),
        _exists(sagemaker.describe_model, ModelName=job),
    )


def _delete(manage: Function, model: str = "iris") -> Any:
    return http_answer(manage(api_event("DELETE", f"/models/{model}")))


def _stops(manage: Function) -> Answers:
    """StopTrainingJob, which a delete sends for a training run, answered (moto has none)."""
    return Answers(manage.module.lifecycle.sagemaker.client, "StopTrainingJob")


def _delete_first(
    monkeypatch: pytest.MonkeyPatch,
    manage: Function,
    target: Any,
    method: str,
    then: Callable[[], object] = lambda: None,
) -> None:
    """``target.method`` lets the user delete the model (and ``then`` do more) before it works."""
    original = getattr(target, method)

    def deleted_first(*args: Any, **kwargs: Any) -> Any:
        assert _delete(manage).status == 200
        then()
        return original(*args, **kwargs)

    monkeypatch.setattr(target, method, deleted_first)


# --------------------------------------------------------------------------- delete


def test_delete_removes_the_endpoint_configs_and_models_and_keeps_data_and_history(
    stack: Stack,
    train: Callable[..., str],
    deploy: Callable[[str], None],
    manage_function: Function,
) -> None:
    job = train()
    deploy(job)
    objects_before = stack.bucket_versions()

    answer = _delete(manage_function)

    assert answer.status == 200
    assert answer.body == {
        "model": "iris",
        "status": "deleted",
        "endpoint": "Deleting",
        "removed_runs": [job],
        "stopped_training_jobs": [],
    }
    assert not _exists(stack.sagemaker.describe_endpoint, EndpointName=ENDPOINT)
    assert _resources(stack, job) == (False, False)
    assert stack.bucket_versions() == objects_before  # upload, datasets and artifacts stay
    record = stack.model("iris")
    assert (record.status, record.deployed_run, record.desired_run) == ("DELETED", None, None)
    run = stack.run("iris", job)
    assert (run.status, run.reason) == (RunStatus.SUPERSEDED, MODEL_DELETED_REASON)
    assert run.pruned_at is not None and run.deployed_at is not None


def test_a_deleted_model_lists_its_runs_none_of_which_can_be_rolled_back_to(
    stack: Stack,
    train: Callable[..., str],
    deploy: Callable[[str], None],
    manage_function: Function,
) -> None:
    job = train()
    deploy(job)
    _delete(manage_function)

    answer = http_answer(manage_function(api_event("GET", "/models/iris/runs")))

    assert answer.status == 200
    assert answer.body["status"] == "deleted"
    assert [(r["run"], r["can_roll_back"]) for r in answer.body["runs"]] == [(job, False)]
    assert "bucket" not in answer.raw and "arn:" not in answer.raw


def test_deleting_twice_is_fine_and_an_unknown_model_is_404(
    stack: Stack,
    train: Callable[..., str],
    deploy: Callable[[str], None],
    manage_function: Function,
) -> None:
    deploy(train())
    _delete(manage_function)

    again = _delete(manage_function)
    unknown = _delete(manage_function, "wine")

    assert (again.status, again.body["endpoint"]) == (200, "NotCreated")
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "ModelNotFound")


def test_a_new_upload_recreates_a_deleted_model(
    stack: Stack,
    train: Callable[..., str],
    deploy: Callable[[str], None],
    manage_function: Function,
) -> None:
    deploy(train())
    _delete(manage_function)

    job = train(1)
    deploy(job)

    record = stack.model("iris")
    assert (record.status, record.deployed_run) == (None, job)
    assert stack.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == job


def test_deleting_a_model_that_trains_stops_the_job_and_its_completion_deploys_nothing(
    stack: Stack,
    train: Callable[..., str],
    deploy_function: Function,
    manage_function: Function,
) -> None:
    job = train()
    stops = _stops(manage_function)

    answer = _delete(manage_function)
    outcome = deploy_function(_completed(stack, job))  # the job had completed already

    assert answer.body["stopped_training_jobs"] == [job]
    assert stops.sent("StopTrainingJob") == [{"TrainingJobName": job}]
    assert outcome == {"outcome": "duplicate"}
    assert _resources(stack, job) == (False, False)
    assert not _exists(stack.sagemaker.describe_endpoint, EndpointName=ENDPOINT)
    run = stack.run("iris", job)
    assert (run.status, run.reason) == (RunStatus.SUPERSEDED, MODEL_DELETED_REASON)


def test_a_delete_between_creating_a_runs_model_and_recording_it_deletes_them_again(
    stack: Stack,
    train: Callable[..., str],
    deploy_function: Function,
    manage_function: Function,
) -> None:
    job = train()
    _stops(manage_function)
    deploy_client = deploy_function.module.deployer.sagemaker.client

    def delete_now(**_: Any) -> None:  # the user deletes while the deploy function works
        deploy_client.meta.events.unregister(
            "after-call.sagemaker.CreateEndpointConfig", delete_now
        )
        assert _delete(manage_function).status == 200

    deploy_client.meta.events.register("after-call.sagemaker.CreateEndpointConfig", delete_now)

    outcome = deploy_function(_completed(stack, job))

    assert outcome == {"outcome": "deleted"}
    assert _resources(stack, job) == (False, False)
    assert not _exists(stack.sagemaker.describe_endpoint, EndpointName=ENDPOINT)
    run = stack.run("iris", job)
    assert (run.status, run.reason) == (RunStatus.SUPERSEDED, MODEL_DELETED_REASON)
    assert run.pruned_at is not None


def test_a_run_older_than_a_delete_is_never_proposed_even_once_the_model_is_recreated(
    stack: Stack,
    train: Callable[..., str],
    deploy_function: Function,
    manage_function: Function,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = train()
    _stops(manage_function)
    recreated: list[str] = []

    def upload_again() -> None:
        recreated.append(train(1))

    # Between TRAINED and the proposal: the model is deleted, then a new upload recreates it
    # (the record is no longer DELETED); only deleted_at tells the old run apart.
    table = deploy_function.module.deployer.table
    _delete_first(monkeypatch, manage_function, table, "propose_desired_run", then=upload_again)

    outcome = deploy_function(_completed(stack, old))

    assert outcome == {"outcome": "deleted"}
    assert _resources(stack, old) == (False, False)
    assert not _exists(stack.sagemaker.describe_endpoint, EndpointName=ENDPOINT)
    record = stack.model("iris")
    assert (record.status, record.desired_run, record.latest_run) == (None, None, recreated[0])
    assert stack.run("iris", old).status is RunStatus.SUPERSEDED


def test_a_delete_just_before_create_endpoint_fails_it_and_the_retry_deploys_nothing(
    stack: Stack,
    train: Callable[..., str],
    deploy_function: Function,
    manage_function: Function,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = train()
    _stops(manage_function)
    # The deploy function read the model before the deletion, which deletes the config.
    sagemaker = deploy_function.module.deployer.sagemaker
    _delete_first(monkeypatch, manage_function, sagemaker, "create_endpoint")
    event = _completed(stack, job)
    # CreateEndpoint fails (its config is gone): the run is discarded, not FAILED nor retried.
    assert deploy_function(event) == {"outcome": "deleted"}
    monkeypatch.undo()

    outcome = deploy_function(event)  # Lambda's retry

    assert outcome == {"outcome": "duplicate"}
    assert not _exists(stack.sagemaker.describe_endpoint, EndpointName=ENDPOINT)
    assert _resources(stack, job) == (False, False)
    assert stack.run("iris", job).status is RunStatus.SUPERSEDED


def test_an_endpoint_created_while_its_model_was_deleted_is_deleted_when_it_settles(
    stack: Stack,
    train: Callable[..., str],
    deploy_function: Function,
    manage_function: Function,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = train()
    _stops(manage_function)
    manage_client = manage_function.module.lifecycle.sagemaker.client
    sagemaker = deploy_function.module.deployer.sagemaker
    create = sagemaker.create_endpoint

    def create_during_the_delete(*args: Any) -> bool:
        # The deploy function read the model before the deletion; it creates the endpoint just
        # after the delete looked for one (and found none), before the config is deleted.
        created = []

        def create_now(**_: Any) -> None:
            manage_client.meta.events.unregister(
                "after-call.sagemaker.DescribeEndpoint", create_now
            )
            created.append(create(*args))

        manage_client.meta.events.register("after-call.sagemaker.DescribeEndpoint", create_now)
        assert _delete(manage_function).body["endpoint"] == "NotCreated"
        return bool(created[0])

    monkeypatch.setattr(sagemaker, "create_endpoint", create_during_the_delete)
    deploy_function(_completed(stack, job))
    monkeypatch.undo()
    assert _exists(stack.sagemaker.describe_endpoint, EndpointName=ENDPOINT)  # the race's result

    outcome = deploy_function(endpoint_event(ENDPOINT, job))  # its "InService" event

    assert outcome == {"outcome": "deleted"}
    assert not _exists(stack.sagemaker.describe_endpoint, EndpointName=ENDPOINT)
    assert _resources(stack, job) == (False, False)
    run = stack.run("iris", job)
    assert (run.status, run.reason) == (RunStatus.SUPERSEDED, MODEL_DELETED_REASON)
    record = stack.model("iris")  # the deploy function could not put its run back on it
    assert (record.status, record.deploying_run, record.deployed_run) == ("DELETED", None, None)


def test_an_upload_claimed_before_a_delete_starts_no_training_job(
    stack: Stack,
    format_function: Function,
    manage_function: Function,
    iris_csv: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = stack.put_upload("incoming/iris.csv", iris_csv)
    format_function(stack.upload_event("incoming/iris.csv", first))
    _stops(manage_function)
    _delete(manage_function)
    jobs_before = stack.training_jobs()
    storage = format_function.module.ingestor.storage
    _delete_first(monkeypatch, manage_function, storage, "put")  # while it formats
    second = stack.put_upload("incoming/iris.csv", iris_csv + b"\n")

    result = format_function(stack.upload_event("incoming/iris.csv", second))

    assert result["outcome"] == "deleted"
    assert stack.training_jobs() == jobs_before
    run = stack.run("iris", result["run"])
    assert (run.status, run.reason) == (RunStatus.SUPERSEDED, MODEL_DELETED_REASON)
    assert stack.model("iris").status == "DELETED"


def test_an_upload_claimed_before_a_delete_does_not_recreate_the_model(
    stack: Stack,
    format_function: Function,
    manage_function: Function,
    iris_csv: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = stack.put_upload("incoming/iris.csv", iris_csv)
    format_function(stack.upload_event("incoming/iris.csv", first))
    _stops(manage_function)
    table = format_function.module.ingestor.table
    _delete_first(monkeypatch, manage_function, table, "record_upload")  # just after its claim
    second = stack.put_upload("incoming/iris.csv", iris_csv + b"\n")

    result = format_function(stack.upload_event("incoming/iris.csv", second))

    assert result["outcome"] == "deleted"
    assert stack.model("iris").status == "DELETED"
    assert stack.run("iris", result["run"]).status is RunStatus.SUPERSEDED


# --------------------------------------------------------------------------- rollback, pruning


class EndpointUpdates(Answers):
    """UpdateEndpoint as SageMaker ends it: the endpoint serves the new config (in moto)."""

    def __init__(self, stack: Stack, *clients: Any) -> None:
        for client in clients:
            super().__init__(client, "UpdateEndpoint")
        self.stack = stack

    def _answer(self, **kwargs: Any) -> tuple[Any, dict]:
        from moto.sagemaker.models import sagemaker_backends

        _, params = self.calls[-1]
        backend = sagemaker_backends["123456789012"][self.stack.region]
        backend.endpoints[params["EndpointName"]].endpoint_config_name = params[
            "EndpointConfigName"
        ]
        return super()._answer(**kwargs)


@pytest.fixture
def updates(stack: Stack, deploy_function: Function, manage_function: Function) -> EndpointUpdates:
    return EndpointUpdates(
        stack,
        deploy_function.module.deployer.sagemaker.client,
        manage_function.module.lifecycle.sagemaker.client,
    )


@pytest.fixture
def trained_runs(
    stack: Stack,
    train: Callable[..., str],
    deploy_function: Function,
    updates: EndpointUpdates,
) -> Callable[[int], list[str]]:
    """Upload and deploy iris `n` times (each run settles before the next); the runs, oldest
    first."""

    def deploy_all(n: int) -> list[str]:
        jobs = []
        for i in range(n):
            job = train(i)
            assert deploy_function(_completed(stack, job))["outcome"] in ("create", "update")
            assert deploy_function(endpoint_event(ENDPOINT, job))["outcome"] == "none"
            jobs.append(job)
        return jobs

    return deploy_all


def _rollback(manage: Function, body: str | None = None) -> Any:
    return http_answer(manage(api_event("POST", "/models/iris/rollback", body)))


def test_rollback_redeploys_the_previous_run_in_place_without_training(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    deploy_function: Function,
    manage_function: Function,
    updates: EndpointUpdates,
) -> None:
    first, second = trained_runs(2)
    jobs_before = stack.training_jobs()

    answer = _rollback(manage_function)

    assert answer.status == 202
    assert answer.body == {"model": "iris", "run": first, "replaces": second, "status": "deploying"}
    assert updates.sent("UpdateEndpoint")[-1] == {
        "EndpointName": ENDPOINT,
        "EndpointConfigName": first,
    }
    assert stack.training_jobs() == jobs_before
    assert stack.run("iris", first).status is RunStatus.DEPLOYING

    deploy_function(endpoint_event(ENDPOINT, first))  # the endpoint settles

    record = stack.model("iris")
    assert (record.deployed_run, record.deploying_run, record.desired_run) == (first, None, first)
    assert stack.run("iris", first).status is RunStatus.DEPLOYED
    assert stack.run("iris", second).status is RunStatus.SUPERSEDED


def test_rolling_back_twice_returns_to_the_run_rolled_back_from(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    deploy_function: Function,
    manage_function: Function,
) -> None:
    first, second = trained_runs(2)
    _rollback(manage_function)
    deploy_function(endpoint_event(ENDPOINT, first))

    answer = _rollback(manage_function)

    assert (answer.status, answer.body["run"], answer.body["replaces"]) == (202, second, first)


def test_rollback_to_a_named_run(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    manage_function: Function,
) -> None:
    first, _, third = trained_runs(3)

    answer = _rollback(manage_function, f'{{"run": "{first}"}}')

    assert (answer.status, answer.body["run"], answer.body["replaces"]) == (202, first, third)


def test_a_new_upload_after_a_rollback_is_deployed(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    deploy_function: Function,
    manage_function: Function,
) -> None:
    first, _ = trained_runs(2)
    _rollback(manage_function)
    deploy_function(endpoint_event(ENDPOINT, first))

    [third] = trained_runs(1)

    assert stack.model("iris").deployed_run == third
    assert stack.run("iris", first).status is RunStatus.SUPERSEDED


def test_after_each_deployment_only_the_last_runs_keep_their_configs_and_models(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    manage_function: Function,
) -> None:
    jobs = trained_runs(5)  # events/env.json: KEEP_RUNS=3

    assert [_resources(stack, job) for job in jobs] == [(False, False)] * 2 + [(True, True)] * 3
    history = http_answer(manage_function(api_event("GET", "/models/iris/runs"))).body
    assert history["deployed_run"] == jobs[-1]
    assert [(r["run"], r["can_roll_back"]) for r in history["runs"]] == [
        (jobs[4], False),  # serves
        (jobs[3], True),
        (jobs[2], True),
        (jobs[1], False),  # pruned
        (jobs[0], False),
    ]
    assert stack.run("iris", jobs[0]).pruned_at is not None


@pytest.mark.parametrize(
    "case",
    [
        ('{"run": "dropfit-iris-000000000000"}', 404, "RunNotFound", "has no run"),
        ("{not json", 400, "BadRequest", "must be JSON"),
        ('{"run": 3}', 400, "BadRequest", '"run" must be a run id'),
        ('{"model": "x"}', 400, "BadRequest", 'may only hold "run"'),
    ],
)
def test_rollback_requests_that_cannot_be_served_say_why(
    trained_runs: Callable[[int], list[str]],
    manage_function: Function,
    case: tuple[str, int, str, str],
) -> None:
    body, status, code, message = case
    trained_runs(2)

    answer = _rollback(manage_function, body)

    assert (answer.status, answer.body["error"]["code"]) == (status, code)
    assert message in answer.body["error"]["message"]


def test_rollback_to_a_pruned_run_is_refused_naming_those_that_can(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    manage_function: Function,
) -> None:
    jobs = trained_runs(4)

    answer = _rollback(manage_function, f'{{"run": "{jobs[0]}"}}')

    assert (answer.status, answer.body["error"]["code"]) == (409, "Conflict")
    assert answer.body["error"]["message"] == (
        f"Run {jobs[0]} cannot be rolled back to: its endpoint config and model were pruned. "
        f"Runs that can: {jobs[1]}, {jobs[2]}."
    )


def test_rollback_of_the_serving_run_or_a_lone_run_or_a_deleted_model_is_refused(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    manage_function: Function,
) -> None:
    [only] = trained_runs(1)

    serving = _rollback(manage_function, f'{{"run": "{only}"}}')
    lone = _rollback(manage_function)
    _stops(manage_function)
    _delete(manage_function)
    deleted = _rollback(manage_function)

    assert [a.status for a in (serving, lone, deleted)] == [409, 409, 409]
    assert serving.body["error"]["message"] == f"Run {only} already serves model 'iris'."
    assert "no earlier deployed run that is still kept" in lone.body["error"]["message"]
    assert "was deleted" in deleted.body["error"]["message"]


def test_rollback_while_a_deployment_is_in_progress_is_refused(
    stack: Stack,
    trained_runs: Callable[[int], list[str]],
    train: Callable[..., str],
    deploy_function: Function,
    manage_function: Function,
) -> None:
    trained_runs(2)
    job = train(3)
    deploy_function(_completed(stack, job))  # UpdateEndpoint issued, no state change yet

    answer = _rollback(manage_function)

    assert answer.status == 409
    assert "is being deployed" in answer.body["error"]["message"]


@pytest.mark.parametrize("first", ["prune", "rollback"])
def test_a_rollback_and_a_pruning_of_the_same_run_never_both_succeed(
    stack: Stack, first: str
) -> None:
    old = stack.seed_run(OLD, RunStatus.SUPERSEDED, created_at=OLD_AT)
    new = stack.seed_run(NEW, RunStatus.DEPLOYED, created_at=NEW_AT)
    stack.seed_model(desired=new, deployed=NEW)
    record = stack.model("iris")
    table = stack.runs

    def prune() -> bool:
        return table.claim_prune("iris", OLD)

    def rollback() -> bool:
        return table.claim_rollback(record, old)

    winner, loser = (prune, rollback) if first == "prune" else (rollback, prune)

    assert (winner(), loser()) == (True, False)
    pruned = stack.run("iris", OLD).pruned_at is not None
    assert pruned == (first == "prune")
    assert stack.model("iris").desired_run == (NEW if first == "prune" else OLD)


# ------------------------------------------- a rollback, then events of newer uploads (design.md)


def test_retried_events_of_the_run_rolled_back_from_leave_the_rollback_serving(
    stack: Stack,
    format_function: Function,
    trained_runs: Callable[[int], list[str]],
    deploy_function: Function,
    manage_function: Function,
) -> None:
    """Its upload is newer than the rollback's target, yet it served already: its S3 event, its
    "training finished" event and its endpoint's events, delivered again, deploy nothing."""
    first, second = trained_runs(2)
    _rollback(manage_function)
    deploy_function(endpoint_event(ENDPOINT, first))
    version = stack.run("iris", second).source["version_id"]

    again = format_function(stack.upload_event("incoming/iris.csv", version))
    finished = deploy_function(_completed(stack, second))
    settled = deploy_function(endpoint_event(ENDPOINT, first))

    assert (again["outcome"], finished["outcome"], settled["outcome"]) == (
        "duplicate",
        "duplicate",
        "none",
    )
    record = stack.model("iris")
    assert (record.desired_run, record.deployed_run, record.deploying_run) == (first, first, None)
    assert stack.run("iris", second).status is RunStatus.SUPERSEDED
    assert stack.sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == first


def test_a_newer_upload_trained_before_a_rollback_whose_event_is_retried_after_it_is_deployed(
    stack: Stack,
    train: Callable[..., str],
    trained_runs: Callable[[int], list[str]],
    deploy_function: Function,
    manage_function: Function,
) -> None:
    """A rollback re-serves a run that served before; it cancels no upload. A run that had not
    served yet (here TRAINED, its event throttled and retried by Lambda after the rollback) is
    newer than the rollback's target in S3's order, so it is deployed once trained, as any
    upload after the rollback is (docs/design.md, Rollback)."""
    first, second = trained_runs(2)
    third = train(2)
    table = deploy_function.module.deployer.table
    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")
    with (
        pytest.MonkeyPatch.context() as patch,
        pytest.raises(ClientError),
    ):
        patch.setattr(table, "propose_desired_run", Mock(side_effect=throttled))
        deploy_function(_completed(stack, third))  # Lambda retries the event later
    assert stack.run("iris", third).status is RunStatus.TRAINED
    assert _rollback(manage_function).status == 202  # the model serves second, nothing deploys
    deploy_function(endpoint_event(ENDPOINT, first))
    assert stack.model("iris").deployed_run == first

    retried = deploy_function(_completed(stack, third))
    deploy_function(endpoint_event(ENDPOINT, third))

    assert retried["outcome"] == "update"
    record = stack.model("iris")
    assert (record.desired_run, record.deployed_run) == (third, third)
    assert stack.run("iris", first).status is RunStatus.SUPERSEDED
    assert stack.run("iris", second).status is RunStatus.SUPERSEDED
