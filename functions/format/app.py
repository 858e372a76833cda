"""S3 "Object Created" (via EventBridge) -> validated, formatted dataset -> k-NN training job.

Uploads above the stack's threshold are formatted by a SageMaker Processing job instead; its
"Processing Job State Change" event comes back here and starts the training job.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from dropfit.aws.notify import FailureNotifier
from dropfit.aws.s3 import Storage
from dropfit.aws.sagemaker import SageMakerControl
from dropfit.aws.table import RunsTable
from dropfit.events import PROCESSING_JOB_STATE_CHANGE, ProcessingJobStateChange
from dropfit.failures import RunEnder
from dropfit.ingest import Ingestor, UploadedObject
from dropfit.processing import CodePublisher
from dropfit.settings import FormatSettings

logger = Logger()
# The shared package logs through logging.getLogger("dropfit"): same format, level, context.
copy_config_to_registered_loggers(source_logger=logger, include={"dropfit"})
tracer = Tracer()
metrics = Metrics()

settings = FormatSettings.from_env()
table = RunsTable(settings.table_name, boto3.client("dynamodb"))
notifier = FailureNotifier(settings.failure_topic_arn, boto3.client("sns"))
storage = Storage(boto3.client("s3"))
ingestor = Ingestor(
    settings=settings,
    storage=storage,
    table=table,
    sagemaker=SageMakerControl(boto3.client("sagemaker")),
    notifier=notifier,
    ends=RunEnder(table, notifier, settings.async_attempts),
    code=CodePublisher(storage, settings.bucket_name, f"{settings.processing_prefix}code/"),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("detail-type") == PROCESSING_JOB_STATE_CHANGE:
        job = parse(event=event, model=ProcessingJobStateChange).detail
        result = ingestor.on_processing_finished(
            job.ProcessingJobName, job.ProcessingJobStatus, job.FailureReason, job.ExitMessage
        )
        metrics.add_metric(
            name=f"Processing{result.outcome.title()}", unit=MetricUnit.Count, value=1
        )
        return asdict(result)
    upload = parse(event=event, model=S3EventNotificationEventBridgeModel).detail
    obj = upload.object
    result = ingestor.process(
        UploadedObject(
            bucket=upload.bucket.name,
            key=obj.key,
            version_id=obj.version_id,
            etag=obj.etag,
            sequencer=obj.sequencer,
            size=int(obj.size) if obj.size is not None else None,
        )
    )
    metrics.add_metric(name=f"Upload{result.outcome.title()}", unit=MetricUnit.Count, value=1)
    return asdict(result)
