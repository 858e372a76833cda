"""The API's behaviour: list and describe models, predict through a model's endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dropfit.aws.s3 import Storage
from dropfit.aws.sagemaker import (
    EndpointState,
    Invocation,
    SageMakerControl,
    SageMakerRuntime,
    VariantNotServing,
)
from dropfit.aws.table import RunsTable
from dropfit.errors import (
    ApiError,
    ModelNotFound,
    ModelNotReady,
    NeighborsDisabled,
    ReportNotFound,
    UnprocessableRequest,
)
from dropfit.names import model_name_from_path
from dropfit.prediction import Cells, parse_endpoint_answer, parse_instances, to_endpoint_csv
from dropfit.preprocessing import Notes, Preprocessing, float32_text
from dropfit.public import public_text
from dropfit.records import ModelRecord, Run
from dropfit.run_metadata import RunMetadata, RunMetadataStore

JSON = "application/json"
VERBOSE_JSON = "application/json; verbose=true"
# How long a warm container serves predictions from the model record it last read, instead of
# paying a DynamoDB read per request (Powertools' parameter providers default to the same 5 s).
# A new deployment is seen at once anyway: an answer from a variant the record does not name, or
# an endpoint error, drops the cached record.
MODEL_RECORD_TTL_SECONDS = 5.0
NEIGHBORS_DISABLED = (
    "Neighbours are disabled on this API: they are exact training rows with their labels. "
    "Ask without ?neighbors=true, or redeploy the stack with AllowNeighbors=true."
)
# How long a link to a report stays valid: long enough to open it, short enough not to be shared.
REPORT_LINK_SECONDS = 900


@dataclass
class ModelService:
    table: RunsTable
    control: SageMakerControl
    runtime: SageMakerRuntime
    metadata: RunMetadataStore
    storage: Storage
    bucket: str  # where the reports are
    # ?neighbors=true answers training rows: only when the stack's AllowNeighbors parameter says.
    allow_neighbors: bool = False
    clock: Callable[[], float] = time.monotonic
    # A run's features and label map never change: cache them for the life of the container.
    _runs: dict[tuple[str, str], RunMetadata] = field(default_factory=dict)
    # A run's fitted transform (None: features go as sent), parsed once per run.
    _transforms: dict[tuple[str, str], Preprocessing | None] = field(default_factory=dict)
    # Models with a serving run, as last read, and when (see MODEL_RECORD_TTL_SECONDS).
    _serving: dict[str, tuple[float, ModelRecord]] = field(default_factory=dict)

    def _model(self, model: str) -> ModelRecord:
        record = self.table.get_model(model, consistent=False)
        if record is None:
            raise ModelNotFound(
                f"No model named {model!r}. Upload incoming/{model}.csv to create it."
            )
        return record

    def _run_metadata(self, model: str, job: str) -> RunMetadata | None:
        """What the run's model expects (features, label map): one S3 read per run, ever."""
        key = (model, job)
        if key not in self._runs:
            metadata = self.metadata.read(model, job)
            if metadata is None:
                return None
            self._runs[key] = metadata
        return self._runs[key]

    def _run(self, model: str, job: str) -> RunMetadata:
        metadata = self._run_metadata(model, job)
        if metadata is None:
            raise ModelNotReady(f"Run {job} of model {model!r} is not recorded yet.")
        return metadata

    def _serving_model(self, model: str) -> tuple[ModelRecord, str, bool]:
        """The model's record, the run it serves, and whether the record came from the cache."""
        now = self.clock()
        cached = self._serving.get(model)
        from_cache = cached is not None and now - cached[0] < MODEL_RECORD_TTL_SECONDS
        record = cached[1] if cached is not None and from_cache else self._model(model)
        if record.deleted:
            raise ModelNotFound(
                f"Model {model!r} was deleted. Upload incoming/{model}.csv to create it again."
            )
        serving = record.deployed_run or record.deploying_run
        if serving is None:
            latest = self.table.get_run(model, record.latest_run) if record.latest_run else None
            state = ""
            if latest is not None:
                detail = f": {latest.reason}" if latest.reason else ""
                state = f" (latest run: {latest.status}{detail})"
            raise ModelNotReady(f"Model {model!r} has no endpoint in service yet{state}.")
        if not from_cache:
            self._serving[model] = (now, record)
        return record, serving, from_cache

    def predict(
        self, model: str, body: str, content_type: str | None, neighbors: bool = False
    ) -> dict[str, Any]:
        if neighbors and not self.allow_neighbors:
            raise NeighborsDisabled(NEIGHBORS_DISABLED)
        return self._predict(model_name_from_path(model), body, content_type, neighbors)

    def _predict(
        self,
        model: str,
        body: str,
        content_type: str | None,
        neighbors: bool,
        retried: bool = False,
    ) -> dict[str, Any]:
        record, serving, from_cache = self._serving_model(model)
        expected = self._run(model, serving)
        try:
            request = _Request.of(expected, self._transform(model, serving), body, content_type)
        except UnprocessableRequest:
            if not from_cache:
                raise
            # A new run with other features may serve by now: judge by the current record.
            self._serving.pop(model, None)
            return self._predict(model, body, content_type, neighbors, retried)
        # A run with a fitted transform must answer the vectors made with it: aim at its variant.
        pin = serving if request.transformed else None
        try:
            invocation = self._invoke(record, request, neighbors, pin)
        except VariantNotServing:
            self._serving.pop(model, None)  # the update is done: the record is behind
            if retried:
                raise ModelNotReady("The model is being updated; retry shortly.", 1) from None
            return self._predict(model, body, content_type, neighbors, retried=True)
        except ApiError:
            if from_cache:
                self._serving_model(model)  # read afresh: a deleted model says so (404)
            raise
        if invocation.variant is not None and invocation.variant != serving:
            self._serving.pop(model, None)  # a newer run answers: the record is behind
        # Map labels with the run whose variant answered: during an update both may answer.
        answered_run = invocation.variant or serving
        answered = self._run(model, answered_run)
        answered_transform = self._transform(model, answered_run)
        if answered_run != serving and answered_transform is not None:
            # A newer run with a transform answered vectors not made with it: ask it again,
            # with its own transform, aimed at it.
            request = _Request.of(answered, answered_transform, body, content_type)
            try:
                invocation = self._invoke(record, request, neighbors, answered_run)
            except VariantNotServing:
                raise ModelNotReady("The model is being updated; retry shortly.", 1) from None
        predictions = parse_endpoint_answer(
            invocation.body, request.count, answered.label_map(), neighbors
        )
        for prediction, notes in zip(predictions, request.notes, strict=False):
            prediction.update(notes.shown())
        return {
            "model": model,
            "run": answered_run,
            "predictor_type": answered.predictor_type,
            "count": len(predictions),
            "predictions": predictions,
        }

    def _transform(self, model: str, job: str) -> Preprocessing | None:
        key = (model, job)
        if key not in self._transforms:
            self._transforms[key] = self._run(model, job).transform()
        return self._transforms[key]

    def _invoke(
        self, record: ModelRecord, request: _Request, neighbors: bool, variant: str | None
    ) -> Invocation:
        try:
            return self.runtime.invoke(
                record.endpoint,
                request.payload,
                "text/csv",
                VERBOSE_JSON if neighbors else JSON,
                variant,
            )
        except ApiError:
            self._serving.pop(record.model, None)  # the endpoint may have changed: read again
            raise

    def list_models(self) -> dict[str, Any]:
        models = sorted(self.table.list_models(), key=lambda m: m.model)
        return {
            "models": [
                {
                    "model": m.model,
                    "endpoint": m.endpoint,
                    "latest_run": m.latest_run,
                    "deployed_run": m.deployed_run,
                    "updated_at": m.updated_at,
                }
                for m in models
            ]
        }

    def _deployed(self, model: str) -> tuple[ModelRecord, EndpointState | None, Run | None]:
        """The model, its endpoint, and the run the endpoint serves (its config names it)."""
        record = self._model(model)
        endpoint = self.control.describe_endpoint(record.endpoint)
        serving_job = (
            endpoint.config_name
            if endpoint is not None and endpoint.status in ("InService", "Updating")
            else None
        )
        return record, endpoint, self.table.get_run(model, serving_job) if serving_job else None

    def _report_link(self, model: str, run: Run | None) -> dict[str, Any] | None:
        if run is None or not run.report:
            return None
        return {
            "run": run.job,
            "html_url": self.storage.presigned_get(
                self.bucket, run.report["html"], REPORT_LINK_SECONDS
            ),
            "expires_in": REPORT_LINK_SECONDS,
            "json": f"/models/{model}/report",
        }

    def report(self, model: str) -> dict[str, Any]:
        """report.json of the run the model's endpoint serves."""
        model = model_name_from_path(model)
        _, _, deployed = self._deployed(model)
        if deployed is None:
            raise ModelNotReady(f"Model {model!r} has no endpoint in service, so no report yet.")
        if not deployed.report:
            raise ReportNotFound(
                f"Run {deployed.job} of model {model!r} serves, but its report is not written "
                "yet: it follows within a minute or two of deployment. Retry shortly."
            )
        data = self.storage.read_object(self.bucket, deployed.report["json"])
        if data is None:
            raise ReportNotFound(f"The report of run {deployed.job} is gone; redeploy the model.")
        report: dict[str, Any] = json.loads(data)
        return report

    def describe_model(self, model: str) -> dict[str, Any]:
        model = model_name_from_path(model)
        record, endpoint, deployed = self._deployed(model)
        latest = self.table.get_run(model, record.latest_run) if record.latest_run else None
        shown = deployed or latest
        expects = self._run_metadata(model, shown.job) if shown is not None else None
        if record.deleted:
            status = "deleted"
        elif deployed is not None:
            status = "ready"
        elif latest is not None:
            status = latest.status.lower()
        else:
            status = "unknown"
        return {
            "model": model,
            "status": status,
            "endpoint": {
                "name": record.endpoint,
                "status": endpoint.status if endpoint else "NotCreated",
                # SageMaker's words: they may name buckets, ARNs and images
                "failure_reason": (
                    public_text(endpoint.failure_reason)
                    if endpoint and endpoint.failure_reason
                    else None
                ),
            },
            "features": expects.feature_names if expects else None,
            "classes": expects.classes if expects else None,
            "predictor_type": shown.predictor_type if shown else None,
            "metrics": deployed.metrics if deployed else None,
            "deployed_run": deployed.view() if deployed else None,
            "latest_run": latest.view() if latest else None,
            # Never a run of this model: another key's upload that this name was refused to.
            "refused_upload": (
                {**record.refused_upload, "reason": public_text(record.refused_upload["reason"])}
                if record.refused_upload
                else None
            ),
            "report": self._report_link(model, deployed),
        }


@dataclass(frozen=True, slots=True)
class _Request:
    """What one predict request sends the endpoint, made with one run's metadata."""

    payload: bytes
    count: int
    transformed: bool  # made with the run's fitted transform
    notes: list[Notes]  # per instance, what the transform had to do (empty: nothing)

    @classmethod
    def of(
        cls, run: RunMetadata, spec: Preprocessing | None, body: str, content_type: str | None
    ) -> _Request:
        if spec is None:
            rows = parse_instances(body, content_type, run.feature_names)
            return cls(to_endpoint_csv(rows), len(rows), False, [])
        raw = parse_instances(
            body, content_type, run.feature_names, Cells(spec.categorical(), spec.fillable())
        )
        vectors, notes = zip(*map(spec.transform, raw), strict=True)
        return cls(to_endpoint_csv(vectors, float32_text), len(raw), True, list(notes))
