"""SageMaker "Endpoint State Change" (in service) -> the served run's validation report."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from dropfit.aws.s3 import Storage
from dropfit.aws.sagemaker import SageMakerControl, SageMakerRuntime
from dropfit.aws.table import RunsTable
from dropfit.events import EndpointStateChange
from dropfit.report import Reporter
from dropfit.settings import ReportSettings

# Lambda's home is read-only: matplotlib keeps its font cache in /tmp instead of warning.
os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "matplotlib"))

logger = Logger()
# The shared package logs through logging.getLogger("dropfit"): same format, level, context.
copy_config_to_registered_loggers(source_logger=logger, include={"dropfit"})
metrics = Metrics()

settings = ReportSettings.from_env()
reporter = Reporter(
    settings=settings,
    storage=Storage(boto3.client("s3")),
    table=RunsTable(settings.table_name, boto3.client("dynamodb")),
    control=SageMakerControl(boto3.client("sagemaker")),
    runtime=SageMakerRuntime(boto3.client("sagemaker-runtime")),
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
@event_parser(model=EndpointStateChange)
def lambda_handler(event: EndpointStateChange, context: LambdaContext) -> dict[str, Any]:
    outcome = reporter.on_endpoint_in_service(event.detail.EndpointName)
    metrics.add_metric(name=f"Report{outcome.title()}", unit=MetricUnit.Count, value=1)
    return {"outcome": outcome}
