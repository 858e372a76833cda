"""SageMaker training and endpoint state changes -> the model's serverless endpoint."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from dropfit.aws.notify import FailureNotifier
from dropfit.aws.sagemaker import SageMakerControl
from dropfit.aws.table import RunsTable
from dropfit.deployment import Deployer
from dropfit.events import (
    ENDPOINT_STATE_CHANGE,
    TRAINING_JOB_STATE_CHANGE,
    EndpointStateChange,
    TrainingJobStateChange,
)
from dropfit.failures import RunEnder
from dropfit.settings import DeploySettings

logger = Logger()
# The shared package logs through logging.getLogger("dropfit"): same format, level, context.
copy_config_to_registered_loggers(source_logger=logger, include={"dropfit"})
metrics = Metrics()
# No Powertools Tracer here: importing the X-Ray SDK creates botocore X-Ray clients, ~100 ms of
# every cold start (bench/coldstart.py). Lambda's active tracing still records this function's
# segments; the format function, whose work dwarfs its cold start, keeps the Tracer.

settings = DeploySettings.from_env()
table = RunsTable(settings.table_name, boto3.client("dynamodb"))
notifier = FailureNotifier(settings.failure_topic_arn, boto3.client("sns"))
deployer = Deployer(
    settings=settings,
    table=table,
    sagemaker=SageMakerControl(boto3.client("sagemaker")),
    notifier=notifier,
    ends=RunEnder(table, notifier, settings.async_attempts),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    kind = event.get("detail-type")
    if kind == TRAINING_JOB_STATE_CHANGE:
        training = parse(event=event, model=TrainingJobStateChange).detail
        outcome = deployer.on_training_finished(
            training.TrainingJobName,
            training.TrainingJobStatus,
            training.FailureReason,
            training.ModelArtifacts.S3ModelArtifacts if training.ModelArtifacts else None,
        )
    elif kind == ENDPOINT_STATE_CHANGE:
        endpoint = parse(event=event, model=EndpointStateChange).detail
        outcome = deployer.on_endpoint_changed(endpoint.EndpointName)
    else:
        raise ValueError(f"unexpected event type {kind!r}")
    metrics.add_metric(name=f"Deploy{outcome.title()}", unit=MetricUnit.Count, value=1)
    return {"outcome": outcome}
