"""Following one upload's run through ``GET /models/{model}``: its stage and each stage's time.

A run goes formatting -> training -> deploying -> ready, or ends early (failed, rejected, ...)
with a reason. :class:`RunWatch` turns successive descriptions of the model into that story;
:func:`follow` polls the API until the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dropfit_cli.api import ApiClient

STAGES = ("formatting", "training", "deploying", "ready")
ROLLBACK_STAGES = STAGES[2:]  # a rollback redeploys a kept run: no formatting, no training
# Answers worth asking again while following (throttled, or a server error that may pass), and
# how many in a row end the follow.
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRIES = 5
# Run statuses (docs/openapi.yaml) -> the stage a person follows.
_STAGE_OF_STATUS = {
    "FORMATTING": "formatting",
    "TRAINING": "training",
    "TRAINED": "deploying",  # the deploy function is on its way
    "DEPLOYING": "deploying",
    "DEPLOYED": "deploying",  # until the model says ready with this run
}


class FollowError(RuntimeError):
    """The API answered something other than the model's description."""


@dataclass
class RunWatch:
    """What is known of one run: its id, stage, when each stage was first seen, its end."""

    is_new: Callable[[str | None], bool]  # which run is ours (not the one before the upload)
    # Whether a refused_upload is ours (the model's name is another key's): no run is recorded.
    is_refusal: Callable[[dict[str, Any]], bool] = lambda refused: False
    started: float = field(default_factory=time.monotonic)
    stages: tuple[str, ...] = STAGES  # those this run goes through, "ready" last
    run: str | None = None
    stage: str = ""  # the first stage until another is seen
    seen: dict[str, float] = field(default_factory=dict)
    outcome: str | None = None  # None while running; "ready" or the run's final status
    reason: str | None = None
    description: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stage = self.stage or self.stages[0]
        self.seen = self.seen or {self.stages[0]: 0.0}

    def observe(self, description: dict[str, Any], now: float | None = None) -> bool:
        """Take one ``GET /models/{model}`` answer; True when it is the run's first, or its
        stage or outcome changed."""
        refused = description.get("refused_upload")
        if refused and self.is_refusal(refused):
            self.outcome, self.reason, self.description = "refused", refused["reason"], description
            return True
        latest = description.get("latest_run") or {}
        if not self.is_new(latest.get("run")):
            return False  # the event has not reached the format function yet
        elapsed = (time.monotonic() if now is None else now) - self.started
        first = self.run is None
        self.run, self.description = latest["run"], description
        status = str(latest.get("status", "")).upper()
        deployed = (description.get("deployed_run") or {}).get("run")
        before = (self.stage, self.outcome)
        if description.get("status") == "ready" and deployed == self.run:
            self._enter("ready", elapsed)
            self.outcome = "ready"
        elif status in _STAGE_OF_STATUS:
            self._enter(_STAGE_OF_STATUS[status], elapsed)
        elif status:  # FAILED, REJECTED, SUPERSEDED, DELETED...: the run is over
            self.outcome = status.lower()
            self.reason = latest.get("reason") or (description.get("endpoint") or {}).get(
                "failure_reason"
            )
        return first or (self.stage, self.outcome) != before

    def _enter(self, stage: str, elapsed: float) -> None:
        # Stages a poll did not catch (a fast one) start when the next one was seen.
        for name in self.stages[: self.stages.index(stage) + 1]:
            self.seen.setdefault(name, elapsed)
        self.stage = stage

    def stage_seconds(self, now: float | None = None) -> dict[str, float]:
        """Seconds spent in each stage seen so far (the current one until ``now``)."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        marks = [(name, self.seen[name]) for name in self.stages if name in self.seen]
        seconds = {}
        for (name, start), (_, end) in zip(marks, [*marks[1:], ("", elapsed)], strict=True):
            seconds[name] = round(max(0.0, end - start), 3)
        if self.outcome == "ready":
            seconds.pop("ready")
        return seconds

    @property
    def done(self) -> bool:
        return self.outcome is not None


def follow(
    api: ApiClient,
    model: str,
    watch: RunWatch,
    *,
    timeout: float,
    poll_seconds: float,
    on_change: Callable[[RunWatch], None] = lambda watch: None,
    on_tick: Callable[[RunWatch], None] = lambda watch: None,
    path: str | None = None,
    view: Callable[[dict[str, Any]], dict[str, Any]] = lambda description: description,
) -> RunWatch:
    """Poll until the run ends or ``timeout`` passes (``watch.done`` says which).

    ``GET /models/{model}`` unless ``path`` names another resource; ``view`` turns its answer
    into what :meth:`RunWatch.observe` reads (see :func:`rollback_view`)."""
    path = path or f"models/{model}"
    deadline = time.monotonic() + timeout
    failures = 0
    while time.monotonic() < deadline:
        answer = api.get(path)
        failures = failures + 1 if answer.status in RETRIED_STATUSES else 0
        if 0 < failures <= MAX_RETRIES:
            time.sleep(poll_seconds)
            continue
        if answer.status == 200:
            if watch.observe(view(answer.json())):
                on_change(watch)
            if watch.done:
                return watch
        elif answer.status != 404:  # 404: no run recorded yet
            raise FollowError(f"GET /{path}: {answer.status} {answer.text[:300]}")
        on_tick(watch)
        time.sleep(poll_seconds)
    return watch


def rollback_view(run: str, replaces: str | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Reads ``GET /models/{model}/runs`` while ``run`` is rolled back to (replacing
    ``replaces``) as :meth:`RunWatch.observe` reads ``GET /models/{model}``: deploying until the
    model records it as deployed; over if it failed, if the model was deleted, or if another run
    (a newer upload) was deployed instead."""

    def view(history: dict[str, Any]) -> dict[str, Any]:
        mine = next((r for r in history.get("runs", []) if r.get("run") == run), None)
        if mine is None:
            return {}
        deployed = history.get("deployed_run")
        if history.get("status") == "deleted":
            mine = {**mine, "status": "DELETED", "reason": "The model was deleted meanwhile."}
        elif deployed == run:
            return {"status": "ready", "deployed_run": {"run": run}, "latest_run": mine}
        elif deployed not in (None, run, replaces):
            mine = {**mine, "status": "SUPERSEDED", "reason": f"Run {deployed} serves instead."}
        elif mine.get("status") in ("DEPLOYING", "DEPLOYED", "SUPERSEDED"):
            # Issued, settling, or queued behind an endpoint change: the deploy function acts.
            mine = {**mine, "status": "DEPLOYING"}
        return {"status": "active", "latest_run": mine}

    return view
