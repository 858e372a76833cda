"""An upload becomes a run: claim it once, validate and format it, start its training job.

Uploads above the stack's threshold are formatted by a SageMaker Processing job instead
(:mod:`dropfit.processing`); its end (:meth:`Ingestor.on_processing_finished`) starts training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from dropfit.aws.notify import FailureNotifier
from dropfit.aws.s3 import Storage, Upload
from dropfit.aws.sagemaker import SageMakerControl
from dropfit.aws.table import RunsTable
from dropfit.dataset import TrainLayout, plan_dataset
from dropfit.errors import InvalidUpload
from dropfit.failures import RunEnder
from dropfit.names import (
    MODEL_NAME_MAX,
    endpoint_name,
    job_name,
    model_from_job_name,
    model_name_from_key,
    relative_key,
    source_digest,
)
from dropfit.options import UploadOptions, parse_options, requested_model_name
from dropfit.processing import CodePublisher, check_header, job_options_key, write_job_options
from dropfit.processing_job import JobOptions
from dropfit.records import MODEL_DELETED_REASON, Run, RunStatus, now_iso
from dropfit.run_metadata import CONTENT_TYPE as METADATA_CONTENT_TYPE
from dropfit.run_metadata import RunMetadata, metadata_key, run_prefix
from dropfit.sagemaker_requests import (
    ProcessingJobSpec,
    TrainingJobSpec,
    processing_job_request,
    training_job_request,
)
from dropfit.settings import FormatSettings
from dropfit.upload_order import upload_order

# One logger for the package: each handler gives it its Powertools configuration.
logger = logging.getLogger("dropfit")


@dataclass(frozen=True, slots=True)
class UploadedObject:
    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    sequencer: str | None
    size: int | None

    def identity(self) -> str:
        """One id per object version: the version id, or (unversioned) etag and sequencer."""
        return self.version_id or f"{self.etag}:{self.sequencer}"


@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: Literal[
        "started",
        "processing",
        "duplicate",
        "rejected",
        "ignored",
        "superseded",
        "failed",
        "deleted",
    ]
    model: str | None = None
    run: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Ingestor:
    settings: FormatSettings
    storage: Storage
    table: RunsTable
    sagemaker: SageMakerControl
    notifier: FailureNotifier
    ends: RunEnder
    code: CodePublisher

    def process(self, upload: UploadedObject) -> IngestResult:
        settings = self.settings
        if upload.bucket != settings.bucket_name or not upload.key.startswith(
            settings.incoming_prefix
        ):
            # The rule filters these out; a stray event must never touch other data.
            return IngestResult("ignored", reason=f"s3://{upload.bucket}/{upload.key} is not ours")
        # Name the model after the object's real key (events may carry it URL-encoded).
        found = self.storage.find_upload(upload.bucket, upload.key, upload.version_id)
        key = found.key if found is not None else upload.key
        try:
            model = upload_model_name(
                key, settings.incoming_prefix, found.metadata if found else {}
            )
        except InvalidUpload as error:
            # No model name means nowhere to record a run: log and notify only.
            logger.warning("upload rejected", extra={"key": upload.key, "reason": error.message})
            self.notifier.run_failed("-", "-", "naming", error.message)
            return IngestResult("rejected", reason=error.message)
        owner = self.table.claim_model(model, endpoint_name(settings.name_prefix, model), key)
        if owner is not None:
            return self._refuse_taken_name(model, key, owner)
        job = job_name(
            settings.name_prefix,
            model,
            source_digest(upload.bucket, upload.key, upload.identity()),
        )
        run = Run(
            model=model,
            job=job,
            status=RunStatus.FORMATTING,
            created_at=now_iso(),
            source={
                "bucket": upload.bucket,
                "key": key,
                "version_id": upload.version_id,
                "etag": upload.etag,
                "size": upload.size,
                "sequencer": upload.sequencer,
            },
        )
        if not self.table.claim_run(run):
            logger.info("duplicate upload event ignored", extra={"model": model, "run": job})
            return IngestResult("duplicate", model=model, run=job)
        endpoint = endpoint_name(settings.name_prefix, model)
        shown_key = relative_key(key, settings.incoming_prefix)
        options: UploadOptions | None = None
        try:
            if not self.table.record_upload(
                model, endpoint, job, upload_order(upload.sequencer), created_at=run.created_at
            ):
                newer = self.table.get_model(model)
                deleted_at = newer.deleted_at if newer else None
                if deleted_at is not None and deleted_at >= run.created_at:
                    return self._model_deleted(model, job)
                return self._supersede_before_training(
                    model,
                    job,
                    f"A newer upload of {shown_key} ({newer.latest_run if newer else 'unknown'}) "
                    "was made before this one could be formatted; the newer one is trained "
                    "instead, and nothing was spent on this one.",
                )
            if upload.version_id not in (None, "null"):
                current = self.storage.current_version(upload.bucket, key)
                if current is None:
                    raise InvalidUpload(
                        f"{shown_key} was deleted before it could be formatted, so it was not "
                        "trained. Upload it again to train it."
                    )
                if current != upload.version_id:
                    return self._supersede_before_training(
                        model,
                        job,
                        f"{shown_key} was uploaded again before this upload could be formatted; "
                        "the newer upload is trained instead, and nothing was spent on this one.",
                    )
            source = self.storage.open_upload(upload.bucket, key, upload.version_id)
            options = parse_options(source.metadata, settings.defaults())
            if settings.goes_to_processing(upload.size):
                return self._start_processing(
                    upload, key=key, source=source, options=options, model=model, job=job
                )
            return self._format_and_train(upload, source, options, model, job)
        except InvalidUpload as error:
            self.ends.fail(
                model,
                job,
                "validation",
                error.message,
                only_from={RunStatus.FORMATTING},
                options=options.as_record() if options else {},
            )
            logger.warning(
                "upload rejected", extra={"model": model, "run": job, "reason": error.message}
            )
            return IngestResult("rejected", model=model, run=job, reason=error.message)
        except Exception as error:
            if self.ends.should_retry(model, job, error):
                raise
            # No training job will read this run's channels: they go (a job that exists
            # already read them, or failed on its own and says so).
            self.storage.delete_prefix(
                upload.bucket, run_prefix(settings.datasets_prefix, model, job)
            )
            reason = self.ends.end(
                model,
                job,
                "formatting",
                "format this upload and start its training job",
                error,
                only_from={RunStatus.FORMATTING},
                options=options.as_record() if options else {},
            )
            return IngestResult("failed", model=model, run=job, reason=reason)

    def _supersede_before_training(self, model: str, job: str, reason: str) -> IngestResult:
        """A newer upload of the key exists: this one is never trained (nor paid for)."""
        return self._supersede(model, job, reason, RunStatus.FORMATTING)

    def _supersede(self, model: str, job: str, reason: str, from_status: RunStatus) -> IngestResult:
        self.table.update_run(
            model, job, only_from={from_status}, status=RunStatus.SUPERSEDED, reason=reason
        )
        logger.info("upload superseded before training", extra={"model": model, "run": job})
        return IngestResult("superseded", model=model, run=job, reason=reason)

    def _refuse_taken_name(self, model: str, key: str, owner: str) -> IngestResult:
        """Another key owns the name: no run, no training; the owner's model is untouched."""
        prefix = self.settings.incoming_prefix
        ours, theirs = relative_key(key, prefix), relative_key(owner, prefix)
        reason = (
            f"The model name {model!r} belongs to {theirs}; {ours} maps to the same name and was "
            f"not trained ({theirs}'s model is unchanged). Upload it again under a file name of "
            f"its own, or choose its model name with the name option (S3 metadata, e.g. "
            f"--metadata name={_suggested_name(model)})."
        )
        self.table.note_refused_upload(model, ours, reason)
        self.notifier.run_failed(model, "-", "naming", reason)
        logger.warning(
            "upload refused: model name taken",
            extra={"model": model, "key": ours, "owner": theirs, "reason": reason},
        )
        return IngestResult("rejected", model=model, reason=reason)

    def _model_deleted(
        self, model: str, job: str, from_status: RunStatus = RunStatus.FORMATTING
    ) -> IngestResult:
        self.table.update_run(
            model,
            job,
            only_from={from_status},
            status=RunStatus.SUPERSEDED,
            reason=MODEL_DELETED_REASON,
        )
        logger.info("model deleted while its upload was formatted", extra={"run": job})
        return IngestResult("deleted", model=model, run=job, reason=MODEL_DELETED_REASON)

    def _format_and_train(
        self, upload: UploadedObject, source: Upload, options: UploadOptions, model: str, job: str
    ) -> IngestResult:
        settings = self.settings
        defaults = settings.defaults()
        layout = TrainLayout(instance_count=settings.training_instance_count)
        plan = plan_dataset(source.open, options, defaults.k, layout)

        base = run_prefix(settings.datasets_prefix, model, job)
        # Train and test objects appear together once both are complete (or not at all).
        with self.storage.batch(upload.bucket, "text/csv") as batch:
            train = [batch.writer(f"{base}train/{name}") for name in plan.train_object_names()]
            meta = plan.write(train, batch.writer(f"{base}test/test.csv"))
        # What predict needs (features, label map) goes to S3, not to the run record: an item
        # holds at most 400 KB, and 1,000 long feature names alone may exceed it.
        self.storage.put(
            upload.bucket,
            metadata_key(settings.datasets_prefix, model, job),
            meta.to_json(),
            METADATA_CONTENT_TYPE,
        )
        return self._start_training(
            upload.bucket,
            model=model,
            job=job,
            options=options,
            meta=meta,
            train_parts=plan.train_parts,
            from_status=RunStatus.FORMATTING,
        )

    def _start_training(
        self,
        bucket: str,
        *,
        model: str,
        job: str,
        options: UploadOptions,
        meta: RunMetadata,
        train_parts: int,
        from_status: RunStatus,
    ) -> IngestResult:
        """The formatted run's training job (its channels and metadata.json are in S3)."""
        settings = self.settings
        base = run_prefix(settings.datasets_prefix, model, job)
        hyperparameters = {**options.extra_hyperparameters, **meta.hyperparameters()}
        request = training_job_request(
            TrainingJobSpec(
                job_name=job,
                model=model,
                image_uri=settings.knn_image_uri,
                role_arn=settings.sagemaker_role_arn,
                train_uri=f"s3://{bucket}/{base}train/",
                test_uri=f"s3://{bucket}/{base}test/",
                output_uri=f"s3://{bucket}/{settings.artifacts_prefix}{model}/",
                hyperparameters=hyperparameters,
                instance_type=settings.training_instance_type,
                instance_count=settings.training_instance_count,
                max_runtime_seconds=settings.max_training_seconds,
            )
        )
        # Only while the run is still formatting: deleting the model ends its runs, and a deleted
        # model must not start a training job.
        if not self.table.update_run(
            model,
            job,
            only_from={from_status},
            options=options.as_record(),
            predictor_type=meta.predictor_type,
            dataset={
                "prefix": f"s3://{bucket}/{base}",
                "n_features": len(meta.feature_names),
                "n_classes": len(meta.classes) if meta.classes is not None else None,
                "n_train": meta.n_train,
                "train_objects": train_parts,
                "n_test": meta.n_test,
                "label_column": meta.label_column,
                "hyperparameters": hyperparameters,
                # the quality gate's R² of a regressor: 1 - test MSE / this
                "test_label_variance": (
                    meta.test_labels["variance"] if meta.test_labels is not None else None
                ),
            },
        ):
            return self._model_deleted(model, job, from_status)
        started = self.sagemaker.start_training_job(request)
        self.table.update_run(model, job, only_from={from_status}, status=RunStatus.TRAINING)
        logger.info(
            "training job started" if started else "training job already existed",
            extra={"model": model, "run": job, "rows": meta.n_rows, "train_objects": train_parts},
        )
        return IngestResult("started", model=model, run=job)

    def _start_processing(
        self,
        upload: UploadedObject,
        *,
        key: str,
        source: Upload,
        options: UploadOptions,
        model: str,
        job: str,
    ) -> IngestResult:
        """Above the threshold: check what can be checked at once, then start the job that
        formats the upload (its end starts training: :meth:`on_processing_finished`)."""
        settings = self.settings
        check_header(source, options)
        job_uri = write_job_options(
            self.storage,
            upload.bucket,
            job_options_key(f"{settings.processing_prefix}jobs/", model, job),
            JobOptions(
                upload_file=key.rsplit("/", 1)[-1],
                metadata=dict(source.metadata),
                defaults=settings.default_texts(),
                training_instance_count=settings.training_instance_count,
            ),
        )
        request = processing_job_request(
            ProcessingJobSpec(
                job_name=job,
                model=model,
                image_uri=settings.processing_image_uri,
                role_arn=settings.processing_role_arn,
                code_uri=self.code.publish(),
                job_uri=job_uri,
                upload_uri=f"s3://{upload.bucket}/{key}",
                run_uri=f"s3://{upload.bucket}/"
                + run_prefix(settings.datasets_prefix, model, job).rstrip("/"),
                upload_bytes=upload.size or 0,
                instance_type=settings.processing_instance_type,
                instance_count=settings.processing_instance_count,
            )
        )
        processing = {
            "job": job,
            "instance_type": settings.processing_instance_type,
            "instance_count": settings.processing_instance_count,
        }
        if not self.table.update_run(
            model,
            job,
            only_from={RunStatus.FORMATTING},
            options=options.as_record(),
            processing=processing,
        ):
            return self._model_deleted(model, job)
        started = self.sagemaker.start_processing_job(request)
        self.table.update_run(
            model, job, only_from={RunStatus.FORMATTING}, status=RunStatus.PROCESSING
        )
        logger.info(
            "processing job started" if started else "processing job already existed",
            extra={"model": model, "run": job, "bytes": upload.size},
        )
        return IngestResult("processing", model=model, run=job)

    def on_processing_finished(
        self, job: str, status: str, failure_reason: str | None, exit_message: str | None
    ) -> IngestResult:
        """A Processing job ended: start the run's training job, or end the run FAILED (and
        remove what the job may have written under ``datasets/``)."""
        settings = self.settings
        model = model_from_job_name(settings.name_prefix, job)
        try:
            return self._processing_finished(model, job, status, failure_reason, exit_message)
        except Exception as error:
            if self.ends.should_retry(model, job, error):
                raise
            # Uploads are only taken from this bucket, so its channels are there.
            self.storage.delete_prefix(
                settings.bucket_name, run_prefix(settings.datasets_prefix, model, job)
            )
            reason = self.ends.end(
                model,
                job,
                "processing",
                "start the training job of the formatted upload",
                error,
                only_from={RunStatus.PROCESSING},
            )
            return IngestResult("failed", model=model, run=job, reason=reason)

    def _processing_finished(
        self,
        model: str,
        job: str,
        status: str,
        failure_reason: str | None,
        exit_message: str | None,
    ) -> IngestResult:
        settings = self.settings
        run = self.table.get_run(model, job)
        base = run_prefix(settings.datasets_prefix, model, job)
        if run is not None and run.status == RunStatus.SUPERSEDED and run.dataset is None:
            # Ended while its job ran (the model was deleted): no training job will read what
            # the job wrote.
            self.storage.delete_prefix(str(run.source["bucket"]), base)
        if run is None or run.status != RunStatus.PROCESSING:
            # not ours, or a repeated event of a run that moved on (trained, deleted, ended)
            logger.info("processing event ignored", extra={"run": job, "status": status})
            return IngestResult("ignored", model=model, run=job)
        bucket = str(run.source["bucket"])
        key = str(run.source["key"])
        version = run.source.get("version_id")
        shown_key = relative_key(key, settings.incoming_prefix)
        if status != "Completed":
            self.storage.delete_prefix(bucket, base)
            if exit_message:
                # the job's InvalidUpload: the reason the format function would give
                stage, reason = "validation", exit_message
            else:
                stage, reason = (
                    "processing",
                    (
                        f"The SageMaker Processing job that formats {shown_key} ended "
                        f"{status}: {failure_reason or 'no reason given'}. Upload the file "
                        "again to retry."
                    ),
                )
            self.ends.fail(model, job, stage, reason, only_from={RunStatus.PROCESSING})
            return IngestResult("failed", model=model, run=job, reason=reason)
        if version not in (None, "null") and self.storage.current_version(bucket, key) != version:
            # The job read the key as it was when it started: only its version's run trains.
            self.storage.delete_prefix(bucket, base)
            return self._supersede(
                model,
                job,
                f"{shown_key} was uploaded again or deleted while it was formatted; this "
                "upload is not trained.",
                RunStatus.PROCESSING,
            )
        found = self.storage.find_upload(bucket, key, version)
        data = self.storage.read_object(bucket, metadata_key(settings.datasets_prefix, model, job))
        if found is None or data is None:
            missing = "the upload" if found is None else "metadata.json"
            raise RuntimeError(f"the processing job completed but {missing} is missing")
        options = parse_options(found.metadata, settings.defaults())
        train_parts = len(self.storage.list_keys(bucket, f"{base}train/"))
        return self._start_training(
            bucket,
            model=model,
            job=job,
            options=options,
            meta=RunMetadata.from_json(data),
            train_parts=train_parts,
            from_status=RunStatus.PROCESSING,
        )


def upload_model_name(key: str, incoming_prefix: str, metadata: Mapping[str, str]) -> str:
    """The upload's ``name`` option if it has one, else the name its key gives."""
    return requested_model_name(metadata) or model_name_from_key(key, incoming_prefix)


def _suggested_name(model: str) -> str:
    return f"{model[: MODEL_NAME_MAX - 2].rstrip('-')}-2"
