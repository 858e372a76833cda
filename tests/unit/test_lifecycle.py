"""Which runs keep their SageMaker resources, and which run a rollback picks: pure decisions."""

from __future__ import annotations

from dropfit.lifecycle import can_roll_back, previous_run, run_history, runs_to_prune
from dropfit.records import ModelRecord, Run, RunStatus

DEPLOYED, SUPERSEDED, FAILED = RunStatus.DEPLOYED, RunStatus.SUPERSEDED, RunStatus.FAILED


def _run(n: int, status: RunStatus, *, artifact: bool = True, **fields: str) -> Run:
    return Run(
        model="iris",
        job=f"dropfit-iris-{n:012d}",
        status=status,
        created_at=f"2025-03-14T09:{n:02d}:00.000Z",
        source={"key": "incoming/iris.csv", "bucket": "b"},
        artifact=f"s3://b/models/iris/{n}/model.tar.gz" if artifact else None,
        **fields,  # type: ignore[arg-type]
    )


def _record(**runs: str) -> ModelRecord:
    return ModelRecord(model="iris", endpoint="dropfit-iris", created_at="2025", **runs)


def _jobs(runs: list[Run]) -> list[int]:
    return [int(run.job.rsplit("-", 1)[1]) for run in runs]


def test_all_but_the_newest_runs_that_can_be_rolled_back_to_are_pruned() -> None:
    runs = [_run(n, SUPERSEDED) for n in range(1, 5)] + [_run(5, DEPLOYED)]

    assert _jobs(runs_to_prune(runs, _record(deployed_run=runs[-1].job), keep=3)) == [1, 2]


def test_runs_the_model_names_or_that_are_on_their_way_are_never_pruned() -> None:
    runs = [
        _run(1, SUPERSEDED),  # rolled back to: deployed
        _run(2, SUPERSEDED),
        _run(3, SUPERSEDED),
        _run(4, SUPERSEDED),
        _run(5, RunStatus.TRAINED),  # waiting for the endpoint
        _run(6, RunStatus.DEPLOYING),
    ]
    record = _record(deployed_run=runs[0].job, desired_run=runs[5].job)

    assert _jobs(runs_to_prune(runs, record, keep=2)) == [2]


def test_failed_deployments_lose_their_resources_and_runs_without_any_are_skipped() -> None:
    runs = [
        _run(1, FAILED),  # its endpoint failed: config and model exist
        _run(2, FAILED, artifact=False),  # training failed: nothing was created
        _run(3, SUPERSEDED, pruned_at="2025-03-15"),  # pruned already
        _run(4, RunStatus.REJECTED),  # the quality gate stopped it before anything was created
        _run(5, DEPLOYED),
    ]

    assert _jobs(runs_to_prune(runs, _record(deployed_run=runs[4].job), keep=3)) == [1]


def test_only_trained_runs_that_keep_their_resources_can_be_rolled_back_to() -> None:
    assert can_roll_back(_run(1, SUPERSEDED))
    assert can_roll_back(_run(1, DEPLOYED))
    assert not can_roll_back(_run(1, FAILED))
    assert not can_roll_back(_run(1, SUPERSEDED, pruned_at="2025-03-15"))
    assert not can_roll_back(_run(1, SUPERSEDED, artifact=False))


def test_the_previous_run_is_the_last_deployed_before_the_serving_one() -> None:
    runs = [
        _run(1, SUPERSEDED, deployed_at="2025-03-14T10:00:00Z"),
        _run(2, SUPERSEDED, deployed_at="2025-03-14T12:00:00Z"),  # rolled back from
        _run(3, SUPERSEDED),  # never deployed: superseded before its turn
        _run(4, SUPERSEDED, deployed_at="2025-03-14T11:00:00Z", pruned_at="2025-03-15"),
        _run(5, DEPLOYED, deployed_at="2025-03-14T13:00:00Z"),
    ]

    previous = previous_run(runs, _record(deployed_run=runs[4].job))

    assert previous is not None and _jobs([previous]) == [2]
    assert previous_run(runs[4:], _record(deployed_run=runs[4].job)) is None


def test_the_history_lists_newest_first_and_not_the_serving_run_as_a_rollback() -> None:
    runs = [_run(1, SUPERSEDED), _run(2, DEPLOYED)]

    history = run_history(runs, _record(deployed_run=runs[1].job))

    assert [(r["run"], r["can_roll_back"]) for r in history["runs"]] == [
        (runs[1].job, False),
        (runs[0].job, True),
    ]
    assert history["status"] == "active"
    assert all("bucket" not in r["source"] and "artifact" not in r for r in history["runs"])
