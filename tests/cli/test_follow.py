"""How ``dropfit train`` reads a run's progress from successive ``GET /models/{model}`` answers."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from rich.console import Console

from dropfit_cli.api import Response
from dropfit_cli.follow import MAX_RETRIES, FollowError, RunWatch, follow
from dropfit_cli.output import stage_table

OLD, NEW = "dropfit-iris-000000000000", "dropfit-iris-111111111111"


def described(run: str, status: str, *, ready_with: str | None = None, **latest: Any) -> dict:
    return {
        "model": "iris",
        "status": "ready" if ready_with else status.lower(),
        "latest_run": {"run": run, "status": status, **latest},
        "deployed_run": {"run": ready_with} if ready_with else None,
        "endpoint": {"name": "dropfit-iris", "status": "InService", "failure_reason": None},
    }


def watch() -> RunWatch:
    return RunWatch(is_new=lambda run: run not in (None, OLD), started=100.0)


def test_the_run_before_the_upload_is_not_ours() -> None:
    following = watch()
    assert not following.observe(described(OLD, "DEPLOYED", ready_with=OLD), now=101.0)
    assert following.run is None and not following.done


def test_each_stage_is_timed_from_the_upload_to_the_next_stage() -> None:
    following = watch()
    assert following.observe(described(NEW, "FORMATTING"), now=100.5)
    assert following.observe(described(NEW, "TRAINING"), now=101.0)
    assert not following.observe(described(NEW, "TRAINING"), now=101.2)
    assert following.observe(described(NEW, "DEPLOYING"), now=103.0)
    assert following.observe(described(NEW, "DEPLOYED", ready_with=NEW), now=103.5)
    assert following.outcome == "ready"
    assert following.stage_seconds(now=104.0) == {
        "formatting": 1.0,
        "training": 2.0,
        "deploying": 0.5,
    }


def test_a_stage_no_poll_caught_starts_when_the_next_one_was_seen() -> None:
    following = watch()
    following.observe(described(NEW, "TRAINED"), now=102.0)  # formatting and training unseen
    assert following.stage == "deploying"
    assert following.seen == {"formatting": 0.0, "training": 2.0, "deploying": 2.0}


def test_deployed_is_not_ready_until_the_model_serves_the_run() -> None:
    following = watch()
    following.observe(described(NEW, "DEPLOYED", ready_with=None), now=101.0)
    assert following.stage == "deploying" and not following.done


def test_a_failed_run_ends_with_its_reason() -> None:
    following = watch()
    reason = "Column 'x' row 3: expected a number, got 'abc'."
    assert following.observe(described(NEW, "FAILED", reason=reason), now=100.3)
    assert following.outcome == "failed" and following.reason == reason
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(stage_table(following))
    assert console.export_text().splitlines()[-1].split() == ["✗", "failed", *reason.split()]


def test_a_status_it_does_not_know_ends_the_run_too() -> None:
    """REJECTED (a quality gate), SUPERSEDED or DELETED: over, whatever its name."""
    following = watch()
    following.observe(described(NEW, "REJECTED", reason="accuracy 0.5 < min_score 0.9"), 101)
    assert following.outcome == "rejected"
    assert following.reason == "accuracy 0.5 < min_score 0.9"


def test_an_upload_refused_for_a_name_another_key_owns_ends_with_the_reason() -> None:
    """No run is recorded for it: the model's refused_upload says so."""
    before = {"key": "iris.csv", "reason": "an older refusal", "at": "2026-01-01T00:00:00Z"}
    following = RunWatch(
        is_new=lambda run: run not in (None, OLD),
        is_refusal=lambda refused: refused != before and refused["key"] == "team/iris.csv",
    )
    owner = described(OLD, "DEPLOYED", ready_with=OLD)
    assert not following.observe({**owner, "refused_upload": before}, now=100.1)
    reason = "The model name 'iris' belongs to incoming/iris.csv; choose another with name=..."
    refusal = {"key": "team/iris.csv", "reason": reason, "at": "2026-12-04T15:00:00Z"}
    assert following.observe({**owner, "refused_upload": refusal}, now=100.4)
    assert (following.outcome, following.reason, following.run) == ("refused", reason, None)


class Answers:
    """An API whose GET answers come from a script: (status, body) pairs."""

    def __init__(self, *answers: tuple[int, dict]) -> None:
        self.answers = list(answers)

    def get(self, path: str) -> Response:
        status, body = self.answers.pop(0)
        return Response(status, {}, json.dumps(body).encode())


def test_a_passing_server_error_while_following_is_asked_again() -> None:
    api = Answers(
        (500, {"error": {"code": "InternalError", "message": "Internal error."}}),
        (429, {"message": "Too Many Requests"}),
        (200, described(NEW, "DEPLOYED", ready_with=NEW)),
    )
    done = follow(api, "iris", watch(), timeout=10, poll_seconds=0)  # type: ignore[arg-type]
    assert done.outcome == "ready"


def test_server_errors_that_last_end_the_follow() -> None:
    error = (500, {"error": {"code": "InternalError", "message": "Internal error."}})
    api = Answers(*[error] * (MAX_RETRIES + 1))
    with pytest.raises(FollowError, match="500"):
        follow(api, "iris", watch(), timeout=10, poll_seconds=0)  # type: ignore[arg-type]
