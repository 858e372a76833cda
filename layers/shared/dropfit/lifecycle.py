"""Model lifecycle: delete a model, roll back to a kept run, prune old runs' SageMaker resources.

A run "holds resources" once its SageMaker model and endpoint config exist (it was TRAINED, so its
record has an artifact; a REJECTED run has one too, and nothing else) and until they are deleted
(``pruned_at``). A run can be rolled back to
while it holds them and once trained fine (DEPLOYED or SUPERSEDED).

Deleting a model marks it DELETED (``deleted_at``) before touching SageMaker. From then on no run
created before that instant can be deployed: the table refuses to make it the desired run, and
every event the deploy function gets for the model converges to "no endpoint, no resources"
(:meth:`Lifecycle.clean_up`), whatever was in flight. See docs/design.md for the interleavings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dropfit.aws.sagemaker import SageMakerControl
from dropfit.aws.table import RunsTable
from dropfit.errors import LifecycleConflict, ModelNotFound, RunNotFound
from dropfit.names import check_model_name
from dropfit.records import MODEL_DELETED_REASON, ModelRecord, Run, RunStatus, now_iso

logger = logging.getLogger("dropfit")

ROLLBACK_STATUSES = frozenset({RunStatus.DEPLOYED, RunStatus.SUPERSEDED})
# Runs a deletion ends (with MODEL_DELETED_REASON); FAILED and SUPERSEDED runs are ended already.
RETIRED_BY_DELETION = frozenset(
    {
        RunStatus.FORMATTING,
        RunStatus.PROCESSING,
        RunStatus.TRAINING,
        RunStatus.TRAINED,
        RunStatus.DEPLOYING,
        RunStatus.DEPLOYED,
    }
)
IN_FLIGHT = frozenset({RunStatus.TRAINED, RunStatus.DEPLOYING})
# The endpoint is changing: SageMaker must not have its config deleted now (DeleteEndpointConfig
# API reference); its next state change event deletes it.
CHANGING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def created_resources(run: Run) -> bool:
    """Whether its SageMaker model and endpoint config were created (a REJECTED run records its
    artifact, yet the quality gate stopped it before either)."""
    return run.artifact is not None and run.status is not RunStatus.REJECTED


def holds_resources(run: Run) -> bool:
    return created_resources(run) and run.pruned_at is None


def can_roll_back(run: Run) -> bool:
    return holds_resources(run) and run.status in ROLLBACK_STATUSES


def created_before_deletion(run: Run, record: ModelRecord) -> bool:
    return record.deleted_at is not None and run.created_at <= record.deleted_at


def runs_to_prune(runs: Iterable[Run], record: ModelRecord, keep: int) -> list[Run]:
    """Runs whose resources go: all but the ``keep`` newest that can be rolled back to, the runs
    the model names (desired, deploying, deployed) and those still on their way to the endpoint."""
    holding = [run for run in runs if holds_resources(run)]
    named = {record.desired_run, record.deploying_run, record.deployed_run}
    newest = sorted(
        (run for run in holding if can_roll_back(run)), key=lambda r: r.created_at, reverse=True
    )[:keep]
    kept = named | {run.job for run in newest} | {r.job for r in holding if r.status in IN_FLIGHT}
    return [run for run in holding if run.job not in kept]


def previous_run(runs: Iterable[Run], record: ModelRecord) -> Run | None:
    """The run deployed last before the one that serves, if it can still be rolled back to."""
    earlier = [
        run
        for run in runs
        if run.deployed_at and run.job != record.deployed_run and can_roll_back(run)
    ]
    return max(earlier, key=lambda run: run.deployed_at or "", default=None)


def run_history(runs: Iterable[Run], record: ModelRecord) -> dict[str, Any]:
    """The model's runs, newest first, each saying whether it can be rolled back to."""
    return {
        "model": record.model,
        "status": "deleted" if record.deleted else "active",
        "deployed_run": record.deployed_run,
        "runs": [
            {
                **run.view(),
                "can_roll_back": can_roll_back(run)
                and run.job != record.deployed_run
                and not record.deleted,
            }
            for run in sorted(runs, key=lambda r: r.created_at, reverse=True)
        ],
    }


@dataclass(frozen=True, slots=True)
class Lifecycle:
    table: RunsTable
    sagemaker: SageMakerControl
    keep_runs: int = 3

    # --- API ----------------------------------------------------------------------------

    def delete(self, model: str) -> dict[str, Any]:
        """Delete the model's endpoint, endpoint configs and SageMaker models; stop its training
        jobs. Uploads, formatted data and run history stay. Idempotent."""
        check_model_name(model)
        if self.table.mark_deleted(model) is None:
            raise ModelNotFound(f"No model named {model!r}.")
        record = self._record(model)
        runs = self.table.list_runs(model)
        stopped = [
            run.job
            for run in runs
            if run.status is RunStatus.TRAINING
            and created_before_deletion(run, record)
            and self.sagemaker.stop_training_job(run.job)
        ]
        endpoint, removed = self._converge(record, runs)
        return {
            "model": model,
            "status": "deleted",
            "endpoint": endpoint,
            "removed_runs": removed,
            "stopped_training_jobs": stopped,
        }

    def rollback(self, model: str, run: str | None = None) -> dict[str, Any]:
        """Serve a kept run again (UpdateEndpoint to its config, in place; no retraining)."""
        check_model_name(model)
        record = self._record(model)
        if record.deleted:
            raise LifecycleConflict(
                f"Model {model!r} was deleted: nothing is kept to roll back to. Upload "
                f"incoming/{model}.csv to create it again."
            )
        if (
            record.deployed_run is None
            or record.deploying_run is not None
            or (record.desired_run not in (None, record.deployed_run))
        ):
            raise LifecycleConflict(
                f"Model {model!r} is being deployed; roll back once GET /models/{model} says ready."
            )
        runs = self.table.list_runs(model)
        target = self._rollback_target(model, runs, record, run)
        endpoint = self.sagemaker.describe_endpoint(record.endpoint)
        if endpoint is None or endpoint.status != "InService":
            state = endpoint.status if endpoint else "missing"
            raise LifecycleConflict(
                f"The endpoint of model {model!r} is {state}; roll back once it is InService."
            )
        if not self.table.claim_rollback(record, target):
            raise LifecycleConflict(
                f"Model {model!r} changed while rolling back (a deployment, a deletion or a "
                f"pruning of {target.job}); check GET /models/{model}/runs and retry."
            )
        issued = self.sagemaker.update_endpoint(record.endpoint, target.job)
        if issued:
            self.table.update_run(model, target.job, status=RunStatus.DEPLOYING, reason=None)
            self.table.update_model(model, deploying_run=target.job)
        # Not issued: the endpoint became busy; its next state change event deploys the target.
        return {
            "model": model,
            "run": target.job,
            "replaces": record.deployed_run,
            "status": "deploying" if issued else "queued",
        }

    def history(self, model: str) -> dict[str, Any]:
        check_model_name(model)
        record = self._record(model)
        return run_history(self.table.list_runs(model), record)

    # --- the deploy function ------------------------------------------------------------

    def clean_up(self, record: ModelRecord) -> str:
        """A deleted model's events end here: delete what may have appeared meanwhile."""
        endpoint, _ = self._converge(record, self.table.list_runs(record.model))
        return "pending" if endpoint in CHANGING else "deleted"

    def discard(self, run: Run) -> None:
        """A run that got its model and config after its model was deleted: delete them."""
        self._remove(run.job)
        self.table.update_run(
            run.model,
            run.job,
            status=RunStatus.SUPERSEDED,
            reason=MODEL_DELETED_REASON,
            pruned_at=now_iso(),
        )

    def prune(self, model: str) -> list[str]:
        """Delete the resources of runs beyond the last ``keep_runs`` (see runs_to_prune)."""
        record = self.table.get_model(model)
        if record is None or record.deleted:
            return []
        pruned = []
        for run in runs_to_prune(self.table.list_runs(model), record, self.keep_runs):
            # Claimed first, in one transaction with the model's record: a rollback to this run
            # either happened before (the claim fails) or fails after (the run is pruned).
            if self.table.claim_prune(model, run.job):
                self._remove(run.job)
                pruned.append(run.job)
        if pruned:
            logger.info("pruned runs", extra={"model": model, "runs": pruned})
        return pruned

    # --- helpers ------------------------------------------------------------------------

    def _record(self, model: str) -> ModelRecord:
        record = self.table.get_model(model)
        if record is None:
            raise ModelNotFound(f"No model named {model!r}.")
        return record

    def _rollback_target(
        self, model: str, runs: list[Run], record: ModelRecord, run: str | None
    ) -> Run:
        kept = [r.job for r in sorted(runs, key=lambda r: r.created_at) if can_roll_back(r)]
        choices = ", ".join(j for j in kept if j != record.deployed_run) or "none"
        if run is None:
            target = previous_run(runs, record)
            if target is None:
                raise LifecycleConflict(
                    f"Model {model!r} has no earlier deployed run that is still kept. Runs that "
                    f"can be rolled back to: {choices}."
                )
            return target
        found = next((r for r in runs if r.job == run), None)
        if found is None:
            raise RunNotFound(f"Model {model!r} has no run {run!r}; see GET /models/{model}/runs.")
        if found.job == record.deployed_run:
            raise LifecycleConflict(f"Run {run} already serves model {model!r}.")
        if not can_roll_back(found):
            why = (
                "its endpoint config and model were pruned"
                if found.pruned_at
                else f"it is {found.status} and was never deployable"
            )
            raise LifecycleConflict(
                f"Run {run} cannot be rolled back to: {why}. Runs that can: {choices}."
            )
        return found

    def _converge(self, record: ModelRecord, runs: list[Run]) -> tuple[str, list[str]]:
        """End the runs created before the deletion, delete the endpoint (unless it is changing,
        then its next state change comes back here) and the resources of those runs."""
        dead = [run for run in runs if created_before_deletion(run, record)]
        for run in dead:
            if run.status in RETIRED_BY_DELETION:
                self.table.update_run(
                    record.model,
                    run.job,
                    only_from={run.status},
                    status=RunStatus.SUPERSEDED,
                    reason=MODEL_DELETED_REASON,
                )
        endpoint = self.sagemaker.describe_endpoint(record.endpoint)
        if endpoint is not None and endpoint.status in CHANGING:
            logger.info("endpoint busy; deleted once it settles", extra={"model": record.model})
            return endpoint.status, []
        if endpoint is not None and endpoint.status != "Deleting":
            self.sagemaker.delete_endpoint(record.endpoint)
        removed = []
        # Pruned runs too: a pruning interrupted between its claim and its deletes left them.
        for run in dead:
            if created_resources(run):
                self._remove(run.job)
                removed.append(run.job)
                if run.pruned_at is None:
                    self.table.update_run(record.model, run.job, pruned_at=now_iso())
        return ("Deleting" if endpoint is not None else "NotCreated"), removed

    def _remove(self, job: str) -> None:
        # The config first: it names the model (endpoint config, model and run share the name).
        self.sagemaker.delete_endpoint_config(job)
        self.sagemaker.delete_model(job)
