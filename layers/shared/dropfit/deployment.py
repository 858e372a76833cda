"""From a finished training job to the model's stable serverless endpoint.

Event-driven and idempotent. Every event (training finished, endpoint changed state) ends in
:meth:`Deployer.reconcile`, which compares what the table wants served (``desired_run``: the
newest trained run) with what the endpoint serves and issues at most one create, update or
delete. An endpoint that is busy is left alone: its next "Endpoint State Change" event reconciles
again, so a model that finished training during an update is deployed right after it, never lost.
A failed update leaves SageMaker serving the previous config (it rolls back); only an endpoint
whose first deployment failed, which never served, is deleted, to be created afresh.

A deleted model's events go to :meth:`Lifecycle.clean_up` instead (dropfit.lifecycle), and a run
created before the deletion is never deployed: whatever it created is deleted again. Once an
endpoint settles serving a run, runs beyond the last ``keep_runs`` are pruned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from dropfit.aws.notify import FailureNotifier
from dropfit.aws.sagemaker import EndpointState, SageMakerControl
from dropfit.aws.table import RunsTable
from dropfit.failures import RetryLater, RunEnder
from dropfit.lifecycle import Lifecycle, created_before_deletion
from dropfit.names import model_from_endpoint_name, model_from_job_name
from dropfit.quality_gate import Score, Verdict, judge, score_of
from dropfit.records import ModelRecord, Run, RunStatus, now_iso
from dropfit.sagemaker_requests import model_request, serverless_endpoint_config_request, tags
from dropfit.settings import DeploySettings
from dropfit.upload_order import upload_order

# One logger for the package: each handler gives it its Powertools configuration.
logger = logging.getLogger("dropfit")

BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
WAITING_FOR_TRAINING = {RunStatus.FORMATTING, RunStatus.TRAINING}


@dataclass(frozen=True, slots=True)
class Plan:
    """What reconcile should do, decided without side effects."""

    served: str | None = None  # the run the endpoint now serves (mark DEPLOYED)
    failed: str | None = None  # the run whose deployment failed
    failure_reason: str | None = None
    action: Literal["create", "update", "recreate", "wait", "none"] = "none"
    target: str | None = None  # run to create/update the endpoint with


def plan_endpoint(record: ModelRecord, endpoint: EndpointState | None) -> Plan:
    desired = record.desired_run
    if endpoint is None:
        return Plan(action="create", target=desired) if desired else Plan()
    if endpoint.status in BUSY or endpoint.status not in ("InService", "Failed"):
        # Busy, or OutOfService / UpdateRollbackFailed: SageMaker (or an operator) must act first.
        return Plan(action="wait")
    if endpoint.status == "Failed":
        # Only a first deployment leaves an endpoint Failed (an update rolls back instead), so
        # it never served anything; SageMaker allows only DeleteEndpoint on it. Delete it and
        # create it afresh when a newer run is waiting: nothing that served is lost.
        failed = record.deploying_run or endpoint.config_name
        reason = endpoint.failure_reason or "the endpoint failed to start"
        if desired and desired != failed:
            return Plan(failed=failed, failure_reason=reason, action="recreate", target=desired)
        return Plan(failed=failed, failure_reason=reason)
    served = endpoint.config_name
    failed = None
    if record.deploying_run and record.deploying_run != served:
        failed = record.deploying_run  # we asked for it, yet the old config serves: rolled back
    if desired and desired not in (served, failed):
        return Plan(
            served=served,
            failed=failed,
            failure_reason=endpoint.failure_reason,
            action="update",
            target=desired,
        )
    return Plan(served=served, failed=failed, failure_reason=endpoint.failure_reason)


class EndpointBusy(RetryLater):
    """Raised so that Lambda retries the event once SageMaker has finished what it is doing."""


@dataclass(frozen=True, slots=True)
class Deployer:
    settings: DeploySettings
    table: RunsTable
    sagemaker: SageMakerControl
    notifier: FailureNotifier
    ends: RunEnder

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.table, self.sagemaker, self.settings.keep_runs)

    def on_training_finished(
        self, job: str, status: str, failure_reason: str | None, artifact: str | None
    ) -> str:
        model = model_from_job_name(self.settings.name_prefix, job)
        try:
            run = self.table.get_run(model, job)
            if run is None:
                logger.warning("training job has no run record; ignored", extra={"run": job})
                return "ignored"
            return self._training_finished(run, status, failure_reason, artifact)
        except Exception as error:
            return self._end_on(model, job, error)

    def on_endpoint_changed(self, endpoint: str) -> str:
        model = model_from_endpoint_name(self.settings.name_prefix, endpoint)
        try:
            return self.reconcile(model)
        except Exception as error:
            record = self.table.get_model(model)
            pending = record.deploying_run or record.desired_run if record else None
            if record is None or pending is None or pending == record.deployed_run:
                raise  # no run of ours waits on this endpoint: Lambda retries, then the DLQ
            return self._end_on(model, pending, error)

    def _end_on(self, model: str, job: str, error: Exception) -> str:
        """Retry the event (raise) while that may help, else end the run FAILED and make sure
        the endpoint is never asked to serve it. A run whose model was deleted meanwhile (its
        config may be gone) is discarded instead: nothing of it is retried or reported."""
        if self.ends.should_retry(model, job, error):
            raise error
        run = self.table.get_run(model, job)
        if run is not None and (discarded := self._discard_if_deleted(run)):
            return discarded
        self.ends.end(
            model,
            job,
            "deployment",
            "deploy the trained model to its endpoint",
            error,
            only_from=WAITING_FOR_TRAINING | {RunStatus.TRAINED, RunStatus.DEPLOYING},
        )
        record = self.table.get_model(model)
        if record is not None:
            changes: dict[str, Any] = {}
            if record.desired_run == job:
                changes["desired_run"] = record.deployed_run
            if record.deploying_run == job:
                changes["deploying_run"] = None
            if changes:
                self.table.update_model(model, **changes)
        return "failed"

    def _training_finished(
        self, run: Run, status: str, failure_reason: str | None, artifact: str | None
    ) -> str:
        model, job = run.model, run.job
        if run.status is RunStatus.TRAINED:
            # Lambda's retry after an error past this point (e.g. a throttled UpdateEndpoint, or
            # the failed endpoint being deleted): proposing and the endpoint step are
            # idempotent, so redo them.
            return self._propose_and_reconcile(run)
        if run.status not in WAITING_FOR_TRAINING:
            logger.info("repeated training event ignored", extra={"run": job, "status": run.status})
            return "duplicate"
        if status != "Completed":
            reason = f"Training job {status.lower()}: {failure_reason or 'no reason given'}"
            # SageMaker's words in full (the API shows them redacted: dropfit.public)
            logger.warning(
                "training job failed", extra={"model": model, "run": job, "reason": reason}
            )
            if self.table.update_run(
                model, job, only_from=WAITING_FOR_TRAINING, status=RunStatus.FAILED, reason=reason
            ):
                self.notifier.run_failed(model, job, "training", reason)
            return "failed"

        described = self.sagemaker.describe_training_job(job)
        artifact = artifact or described["ModelArtifacts"]["S3ModelArtifacts"]
        metrics = {
            m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList", [])
        }
        verdict = self._judge(model, run, metrics)
        if not verdict.passed:
            # Nothing is created for a rejected run: the endpoint keeps what it serves.
            assert verdict.reason is not None
            if self.table.update_run(
                model,
                job,
                only_from=WAITING_FOR_TRAINING,
                status=RunStatus.REJECTED,
                reason=verdict.reason,
                metrics=metrics,
                gate=verdict.figures,
                artifact=artifact,
            ):
                self.notifier.run_failed(model, job, "quality gate", verdict.reason)
            return "rejected"
        settings = self.settings
        self.sagemaker.create_model(
            model_request(
                name=job,
                model=model,
                image_uri=settings.knn_image_uri,
                artifact_uri=artifact,
                role_arn=settings.sagemaker_role_arn,
            )
        )
        self.sagemaker.create_endpoint_config(
            serverless_endpoint_config_request(
                name=job,
                model=model,
                memory_mb=settings.serverless_memory_mb,
                max_concurrency=settings.serverless_max_concurrency,
            )
        )
        if not self.table.update_run(
            model,
            job,
            only_from=WAITING_FOR_TRAINING,
            status=RunStatus.TRAINED,
            metrics=metrics,
            gate=verdict.figures,
            artifact=artifact,
        ):
            # A concurrent copy of this event got here first, or the model was deleted meanwhile.
            return self._discard_if_deleted(run) or "duplicate"
        return self._propose_and_reconcile(run)

    def _propose_and_reconcile(self, run: Run) -> str:
        """Ask for the trained run to be served unless a newer upload's is (or the model was
        deleted since the run was created: then what it created goes); then act on it."""
        model, job = run.model, run.job
        if not self.table.propose_desired_run(
            model, job, upload_order(run.source.get("sequencer")), created_at=run.created_at
        ):
            if discarded := self._discard_if_deleted(run):
                return discarded
            self.table.update_run(
                model,
                job,
                only_from={RunStatus.TRAINED},
                status=RunStatus.SUPERSEDED,
                reason="A newer upload of this model was trained first.",
            )
            return "superseded"
        return self.reconcile(model)

    def _judge(self, model: str, run: Run, metrics: dict[str, float]) -> Verdict:
        """The quality gate, against the run the model serves now (if any)."""
        serving: tuple[str, Score] | None = None
        record = self.table.get_model(model)
        if record is not None and record.deployed_run and record.deployed_run != run.job:
            current = self.table.get_run(model, record.deployed_run)
            if current is not None:
                best = score_of(current.predictor_type, current.metrics, current.dataset)
                serving = (current.job, best) if best is not None else None
        min_score = run.options.get("min_score")
        return judge(
            score_of(run.predictor_type, metrics, run.dataset),
            min_score=float(min_score) if min_score is not None else None,
            serving=serving,
            margin=self.settings.margin(),
            force=run.options.get("force") == "true",
        )

    def _discard_if_deleted(self, run: Run) -> str | None:
        """ "deleted" (and its model and config deleted) if the run's model was deleted since."""
        record = self.table.get_model(run.model)
        if record is None or not created_before_deletion(run, record):
            return None
        self.lifecycle.discard(run)
        return "deleted"

    def reconcile(self, model: str) -> str:
        record = self.table.get_model(model)
        if record is None:
            return "ignored"
        if record.deleted:
            return self.lifecycle.clean_up(record)
        endpoint = self.sagemaker.describe_endpoint(record.endpoint)
        plan = plan_endpoint(record, endpoint)
        logger.info("reconcile", extra={"model": model, "plan": plan, "endpoint": endpoint})
        changes: dict[str, Any] = {}
        if plan.failed:
            reason = f"Deployment failed: {plan.failure_reason or 'unknown reason'}"
            if self.table.update_run(
                model,
                plan.failed,
                only_from={RunStatus.DEPLOYING, RunStatus.TRAINED},
                status=RunStatus.FAILED,
                reason=reason,
            ):
                self.notifier.run_failed(model, plan.failed, "deployment", reason)
            changes["deploying_run"] = None
            if record.desired_run == plan.failed:
                # Don't retry a run that failed; the endpoint keeps what it serves.
                changes["desired_run"] = plan.served
        if plan.served and plan.served != record.deployed_run:
            self.table.update_run(
                model, plan.served, status=RunStatus.DEPLOYED, reason=None, deployed_at=now_iso()
            )
            if record.deployed_run:
                self.table.update_run(
                    model,
                    record.deployed_run,
                    only_from={RunStatus.DEPLOYED},
                    status=RunStatus.SUPERSEDED,
                    reason=f"Replaced by {plan.served}.",
                )
            changes["deployed_run"] = plan.served
            if record.deploying_run == plan.served:
                changes["deploying_run"] = None
        outcome: str = plan.action
        if plan.action == "recreate":
            self.sagemaker.delete_endpoint(record.endpoint)
        elif plan.action in ("create", "update") and plan.target:
            issued = (
                self.sagemaker.create_endpoint(
                    record.endpoint, plan.target, tags(model, plan.target)
                )
                if plan.action == "create"
                else self.sagemaker.update_endpoint(record.endpoint, plan.target)
            )
            if issued:
                self.table.update_run(model, plan.target, status=RunStatus.DEPLOYING)
                changes["deploying_run"] = plan.target
            else:
                outcome = "wait"  # busy or just created: its next state change reconciles again
        if changes:
            self.table.update_model(model, **changes)
        if plan.served and plan.action == "none":
            self.lifecycle.prune(model)  # settled: older runs' configs and models may go
        if plan.action == "recreate":
            raise EndpointBusy(
                f"Deleting the failed endpoint {record.endpoint}; the retry creates it with "
                f"{plan.target}."
            )
        if endpoint is not None and endpoint.status == "Deleting":
            # No state-change event follows a deletion: let Lambda's retry come back for it.
            raise EndpointBusy(f"{record.endpoint} is being deleted; retrying later.")
        return outcome
