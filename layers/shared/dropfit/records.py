"""What the table holds about models and runs (one run per uploaded object version)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self

from dropfit.public import public_text


class RunStatus(StrEnum):
    FORMATTING = "FORMATTING"  # claimed by the format function
    PROCESSING = "PROCESSING"  # a SageMaker Processing job formats it (dropfit.processing)
    TRAINING = "TRAINING"  # training job started
    TRAINED = "TRAINED"  # model and endpoint config exist; waiting for the endpoint
    DEPLOYING = "DEPLOYING"  # CreateEndpoint/UpdateEndpoint issued for this run
    DEPLOYED = "DEPLOYED"  # the endpoint serves this run
    # a newer upload of the key was made before this one was formatted, or trained, or replaced it
    SUPERSEDED = "SUPERSEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"  # trained, but the quality gate kept it from serving (see ``gate``)


MODEL_DELETED = "DELETED"
MODEL_DELETED_REASON = "The model was deleted; upload its CSV again to recreate it."

TERMINAL = frozenset(
    {RunStatus.DEPLOYED, RunStatus.SUPERSEDED, RunStatus.FAILED, RunStatus.REJECTED}
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Run:
    model: str
    job: str
    status: RunStatus
    created_at: str
    source: dict[str, Any]  # bucket, key, version_id, etag, size
    updated_at: str = ""
    reason: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # Features and label map live in the run's metadata.json (dropfit.run_metadata), not here:
    # the record stays far below DynamoDB's 400 KB whatever the upload.
    predictor_type: str | None = None
    dataset: dict[str, Any] | None = None  # s3 uris and row counts
    # the Processing job that formats a large upload: job, instance_type, instance_count
    processing: dict[str, Any] | None = None
    metrics: dict[str, float] | None = None
    gate: dict[str, Any] | None = None  # the quality gate's figures (dropfit.quality_gate)
    artifact: str | None = None
    report: dict[str, Any] | None = None  # S3 keys of report.json and report.html, once written
    deployed_at: str | None = None  # when the endpoint last started serving this run
    # when this run's endpoint config and SageMaker model were deleted (pruned, or the model was)
    pruned_at: str | None = None

    def to_attributes(self) -> dict[str, Any]:
        values = asdict(self)
        values["status"] = str(self.status)
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_attributes(cls, item: dict[str, Any]) -> Self:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in item.items() if k in known}
        values["status"] = RunStatus(values["status"])
        return cls(**values)

    def view(self) -> dict[str, Any]:
        """The run as the API shows it: no bucket, versions, S3 locations, ARNs or account ids."""
        shown = self.to_attributes()
        if self.reason is not None:
            shown["reason"] = public_text(self.reason)
        shown["run"] = shown.pop("job")
        shown["source"] = {k: v for k, v in self.source.items() if k in ("key", "size")}
        shown.pop("artifact", None)
        shown.pop("report", None)  # GET /models/{model} links it instead
        if self.dataset is not None:
            shown["dataset"] = {k: v for k, v in self.dataset.items() if k != "prefix"}
        return shown


@dataclass(slots=True)
class ModelRecord:
    """Per model: which runs exist, which one should serve, which one does."""

    model: str
    endpoint: str
    created_at: str
    latest_run: str | None = None  # newest upload, whatever its fate
    desired_run: str | None = None  # newest trained run: the endpoint should serve it
    desired_order: str | None = None  # its upload's place in S3's order (dropfit.upload_order)
    latest_order: str | None = None
    deploying_run: str | None = None  # last config we asked the endpoint to take
    deployed_run: str | None = None  # the run the endpoint serves
    updated_at: str = ""
    # The one S3 key whose uploads train this model (absent on records older than the field).
    source_key: str | None = None
    # The last upload refused this name because another key owns it: key, reason, at.
    refused_upload: dict[str, str] | None = None
    status: str | None = None  # DELETED once deleted, until an upload recreates it
    deleted_at: str | None = None  # the last deletion: runs created before it never deploy

    @property
    def deleted(self) -> bool:
        return self.status == MODEL_DELETED

    def to_attributes(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_attributes(cls, item: dict[str, Any]) -> Self:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in item.items() if k in known})
