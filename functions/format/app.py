"""S3 "Object Created" (via EventBridge) -> validated, formatted dataset -> k-NN training job."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from dropfit.aws.notify import FailureNotifier
from dropfit.aws.s3 import Storage
from dropfit.aws.sagemaker import SageMakerControl
from dropfit.aws.table import RunsTable
from dropfit.failures import RunEnder
from dropfit.ingest import Ingestor, UploadedObject
from dropfit.settings import FormatSettings

logger = Logger()
# The shared package logs through logging.getLogger("dropfit"): same format, level, context.
copy_config_to_registered_loggers(source_logger=logger, include={"dropfit"})
tracer = Tracer()
metrics = Metrics()

settings = FormatSettings.from_env()
table = RunsTable(settings.table_name, boto3.client("dynamodb"))
notifier = FailureNotifier(settings.failure_topic_arn, boto3.client("sns"))
ingestor = Ingestor(
    settings=settings,
    storage=Storage(boto3.client("s3")),
    table=table,
    sagemaker=SageMakerControl(boto3.client("sagemaker")),
    notifier=notifier,
    ends=RunEnder(table, notifier, settings.async_attempts),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def lambda_handler(
    event: S3EventNotificationEventBridgeModel, context: LambdaContext
) -> dict[str, Any]:
    obj = event.detail.object
    result = ingestor.process(
        UploadedObject(
            bucket=event.detail.bucket.name,
            key=obj.key,
            version_id=obj.version_id,
            etag=obj.etag,
            sequencer=obj.sequencer,
            size=int(obj.size) if obj.size is not None else None,
        )
    )
    metrics.add_metric(name=f"Upload{result.outcome.title()}", unit=MetricUnit.Count, value=1)
    return asdict(result)
