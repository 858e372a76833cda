"""Delete, delete while training, and rollback, on the local stack: uploads through the S3 API,
lifecycle calls through the HTTP API (signed as the stack requires), SageMaker state read from
the local SageMaker. Each test uses its own model name."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from dropfit_local import faults

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e

RETRIES = 3  # the deploy function's attempts at an event: 1 + EventInvokeConfig's 2 retries


def _resources(local: Local, model: str) -> dict[str, list[str]]:
    """The model's SageMaker resources: its endpoint, and its runs' configs and models."""
    sagemaker = local.sagemaker
    prefix = f"{local.prefix}-{model}"

    def named(items: list[dict[str, Any]], key: str) -> list[str]:
        return sorted(i[key] for i in items if i[key] == prefix or i[key].startswith(prefix + "-"))

    return {
        "endpoints": named(
            sagemaker.list_endpoints(NameContains=prefix)["Endpoints"], "EndpointName"
        ),
        "configs": named(
            sagemaker.list_endpoint_configs(NameContains=prefix)["EndpointConfigs"],
            "EndpointConfigName",
        ),
        "models": named(sagemaker.list_models(NameContains=prefix)["Models"], "ModelName"),
    }


NOTHING: dict[str, list[str]] = {"endpoints": [], "configs": [], "models": []}


def _delete(local: Local, model: str) -> dict[str, Any]:
    answer = local.client.request("DELETE", f"/models/{model}")
    assert answer.status == 200, answer.text
    return dict(answer.json())


def _runs(local: Local, model: str) -> dict[str, Any]:
    answer = local.client.get(f"/models/{model}/runs")
    assert answer.status == 200, answer.text
    return dict(answer.json())


def _deployed(local: Local, model: str, previous: str | None = None) -> str:
    """Wait for a new run to serve and for the deploy function to have recorded it so (the
    endpoint says InService a moment before its state change event is handled)."""
    run = str(local.wait_for_new_run(model, previous)["deployed_run"]["run"])
    local.wait_until(
        "the run recorded as deployed", lambda: _runs(local, model)["deployed_run"] == run
    )
    return run


def test_delete_removes_the_endpoint_and_its_resources_and_an_upload_recreates_it(
    local: Local,
) -> None:
    model = "lc-delete"
    local.upload(f"{model}.csv", IRIS)
    run = _deployed(local, model)
    assert _resources(local, model)["endpoints"] == [f"{local.prefix}-{model}"]

    deleted = _delete(local, model)

    assert (deleted["status"], deleted["removed_runs"]) == ("deleted", [run])
    local.wait_until("the endpoint gone", lambda: _resources(local, model) == NOTHING)
    description = local.describe(model)
    assert description is not None and description["status"] == "deleted"
    refused = local.predict(model, [[5.1, 3.5, 1.4, 0.2]])
    assert refused.status_code == 404 and "was deleted" in refused.json()["error"]["message"]
    history = _runs(local, model)
    assert [(r["run"], r["status"], r["can_roll_back"]) for r in history["runs"]] == [
        (run, "SUPERSEDED", False)
    ]
    kept = local.s3.list_objects_v2(Bucket=local.bucket, Prefix=f"datasets/{model}/{run}/")
    assert kept["KeyCount"] >= 3  # train, test, metadata.json: the formatted data stays

    local.upload(f"{model}.csv", IRIS + b"\n")
    recreated = local.wait_for_new_run(model, previous=run)

    assert recreated["status"] == "ready", recreated
    assert local.predict(model, [[5.1, 3.5, 1.4, 0.2]]).json()["predictions"] == [
        {"label": "setosa"}
    ]


def test_a_model_deleted_while_its_run_trains_never_gets_an_endpoint(local: Local) -> None:
    model = "lc-training"
    target = "function:DeployFunction"
    # The deploy function fails every attempt at this model's "training finished" event, so the
    # run is still TRAINING when the model is deleted; the event then comes again, late.
    faults.inject(local.faults_dir, target, RETRIES, match=f"{local.prefix}-{model}-")
    try:
        with local.spy(
            {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Training Job State Change"],
                "detail": {"TrainingJobName": [{"prefix": f"{local.prefix}-{model}-"}]},
            }
        ) as training_events:
            local.upload(f"{model}.csv", IRIS)
            [completed] = training_events.wait_for('"Completed"')
            local.wait_until(
                "every attempt failed", lambda: faults.fired(local.faults_dir, target) == RETRIES
            )
            run = _runs(local, model)["runs"][0]
            assert run["status"] == "TRAINING", run

            deleted = _delete(local, model)
            local.redeliver(completed)
            local.wait_until(
                "the late event handled", lambda: local.log_count("repeated training event ignored")
            )
    finally:
        faults.clear(local.faults_dir, target)

    assert deleted["endpoint"] == "NotCreated"
    time.sleep(1)  # anything the late event would have started would have shown by now
    assert _resources(local, model) == NOTHING
    [ended] = _runs(local, model)["runs"]
    assert ended["status"] == "SUPERSEDED"
    assert "deleted" in ended["reason"]


def _relabelled(body: bytes) -> bytes:
    """iris with other class names: a run whose label map differs from iris'."""
    return (
        body.replace(b"setosa", b"small")
        .replace(b"versicolor", b"medium")
        .replace(b"virginica", b"large")
    )


def test_rollback_serves_the_previous_run_again_with_its_own_labels(local: Local) -> None:
    model = "lc-rollback"
    local.upload(f"{model}.csv", IRIS)
    first = _deployed(local, model)
    local.upload(f"{model}.csv", _relabelled(IRIS))
    second = _deployed(local, model, previous=first)
    row = [[5.1, 3.5, 1.4, 0.2]]
    assert local.predict(model, row).json()["predictions"] == [{"label": "small"}]
    jobs_before = local.training_jobs(f"{local.prefix}-{model}-")

    answer = local.client.post(f"/models/{model}/rollback")

    assert answer.status == 202, answer.text
    assert answer.json() == {
        "model": model,
        "run": first,
        "replaces": second,
        "status": "deploying",
    }
    served = local.wait_until(
        "the first run served again",
        lambda: (
            (d := local.describe(model))
            and d["status"] == "ready"
            and d["deployed_run"]["run"] == first
            and d
        ),
    )
    assert served["endpoint"]["name"] == f"{local.prefix}-{model}"  # in place: the same endpoint
    local.wait_until("recorded", lambda: _runs(local, model)["deployed_run"] == first)
    prediction = local.predict(model, row).json()
    assert (prediction["run"], prediction["predictions"]) == (first, [{"label": "setosa"}])
    assert local.training_jobs(f"{local.prefix}-{model}-") == jobs_before  # no retraining
    history = {r["run"]: r for r in _runs(local, model)["runs"]}
    assert history[first]["status"] == "DEPLOYED" and not history[first]["can_roll_back"]
    assert history[second]["status"] == "SUPERSEDED" and history[second]["can_roll_back"]

    back = local.client.post(f"/models/{model}/rollback", json={"run": second})

    assert back.status == 202, back.text
    local.wait_until(
        "the second run served again",
        lambda: (d := local.describe(model)) and d["deployed_run"]["run"] == second,
    )
    assert local.predict(model, row).json()["predictions"] == [{"label": "small"}]


def test_rollback_to_an_unknown_run_or_of_a_lone_run_says_why(local: Local) -> None:
    model = "lc-lone"
    local.upload(f"{model}.csv", IRIS)
    _deployed(local, model)

    lone = local.client.post(f"/models/{model}/rollback")
    unknown = local.client.post(f"/models/{model}/rollback", json={"run": "dropfit-x-0"})

    assert (lone.status, lone.json()["error"]["code"]) == (409, "Conflict")
    assert (unknown.status, unknown.json()["error"]["code"]) == (404, "RunNotFound")


def test_the_lifecycle_routes_require_the_apis_authorisation(local: Local) -> None:
    for method, path in (
        ("DELETE", "/models/lc-lone"),
        ("POST", "/models/lc-lone/rollback"),
        ("GET", "/models/lc-lone/runs"),
    ):
        answer = requests.request(method, f"{local.api}{path}", timeout=30)
        assert answer.status_code in (401, 403), (method, path, answer.status_code)


HOLD_SECONDS = 6.0  # the endpoint's deployment, held by the local SageMaker (faults, test only)
TERMINAL = {"DEPLOYED", "SUPERSEDED", "FAILED", "REJECTED"}


@pytest.mark.parametrize("change", ["Creating", "Updating"])
def test_a_model_deleted_while_its_endpoint_changes_gets_no_endpoint_back(
    local: Local, change: str
) -> None:
    """DELETE leaves a changing endpoint alone (SageMaker must not lose its config meanwhile);
    once it settles, its state change event deletes it and every config and model of the runs.
    No endpoint comes back, and every run ends with a reason."""
    model = f"lc-{change.lower()}"
    endpoint = f"{local.prefix}-{model}"
    fault = f"endpoint:{endpoint}"
    if change == "Updating":
        local.upload(f"{model}.csv", IRIS)
        _deployed(local, model)
    faults.inject(local.faults_dir, fault, 1, hold_seconds=HOLD_SECONDS)
    try:
        local.upload(f"{model}.csv", IRIS + b"\n" if change == "Updating" else IRIS)
        local.wait_until(
            "the deployment held", lambda: faults.fired(local.faults_dir, fault), seconds=120
        )
        status = local.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
        deleted = _delete(local, model)
    finally:
        faults.clear(local.faults_dir, fault)

    assert (status, deleted["endpoint"]) == (change, change)
    assert local.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == change
    local.wait_until(
        "the endpoint and every resource gone",
        lambda: _resources(local, model) == NOTHING,
        seconds=HOLD_SECONDS + 60,
    )
    time.sleep(2)  # an endpoint that would come back (a late create or update) shows by now
    assert _resources(local, model) == NOTHING
    runs = _runs(local, model)["runs"]
    assert runs and all(run["status"] in TERMINAL and run["reason"] for run in runs), runs
    assert all("deleted" in run["reason"] for run in runs), runs
    description = local.describe(model)
    assert description is not None and description["status"] == "deleted"


def test_only_the_last_runs_keep_their_configs_and_models_on_the_local_sagemaker(
    local: Local,
) -> None:
    """RollbackRuns (default 3): a fourth deployment prunes the first run's endpoint config and
    SageMaker model; the history says it can no longer be rolled back to."""
    model = "lc-prune"
    runs: list[str] = []
    for blank_lines in range(4):
        local.upload(f"{model}.csv", IRIS + b"\n" * blank_lines)
        runs.append(_deployed(local, model, runs[-1] if runs else None))
    first, *kept = runs

    local.wait_until(
        "the first run pruned", lambda: first not in _resources(local, model)["configs"]
    )

    left = _resources(local, model)
    assert left["configs"] == left["models"] == sorted(kept)
    history = {r["run"]: r for r in _runs(local, model)["runs"]}
    assert history[first]["pruned_at"] and not history[first]["can_roll_back"]
    assert [history[run]["can_roll_back"] for run in kept] == [True, True, False]  # last serves
    refused = local.client.post(f"/models/{model}/rollback", json={"run": first})
    assert refused.status == 409 and "pruned" in refused.json()["error"]["message"]
