"""HTTP API for operators: delete a model, roll it back to a kept run, list its runs.

A function of its own so that the predict function, which serves every prediction request, holds
no right to delete or redeploy anything (least privilege).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from dropfit.api_errors import register_error_handlers
from dropfit.aws.sagemaker import SageMakerControl
from dropfit.aws.table import RunsTable
from dropfit.errors import BadRequest
from dropfit.lifecycle import Lifecycle
from dropfit.prediction import request_text
from dropfit.settings import ManageSettings

logger = Logger()
# The shared package logs through logging.getLogger("dropfit"): same format, level, context.
copy_config_to_registered_loggers(source_logger=logger, include={"dropfit"})
metrics = Metrics()
app = APIGatewayHttpResolver()

settings = ManageSettings.from_env()
lifecycle = Lifecycle(
    table=RunsTable(settings.table_name, boto3.client("dynamodb")),
    sagemaker=SageMakerControl(boto3.client("sagemaker")),
)
register_error_handlers(app, logger, routes_hint="docs/openapi.yaml")


def rollback_run(body: str) -> str | None:
    """The optional ``{"run": "<run>"}`` of a rollback request (an empty body: the previous run)."""
    if not body.strip():
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        raise BadRequest('The body must be JSON: {"run": "<run>"}, or empty.') from None
    if not isinstance(parsed, dict) or set(parsed) - {"run"}:
        raise BadRequest('The body may only hold "run": {"run": "<run>"}, or be empty.')
    run = parsed.get("run")
    if run is not None and not isinstance(run, str):
        raise BadRequest('"run" must be a run id, as GET /models/{model}/runs lists them.')
    return run


@app.delete("/models/<model>")
def delete_model(model: str) -> dict[str, Any]:
    metrics.add_metric(name="ModelDeletions", unit=MetricUnit.Count, value=1)
    return lifecycle.delete(model)


@app.post("/models/<model>/rollback")
def rollback(model: str) -> Response:
    event = app.current_event
    run = rollback_run(request_text(event.body, event.is_base64_encoded))
    answer = lifecycle.rollback(model, run)
    metrics.add_metric(name="Rollbacks", unit=MetricUnit.Count, value=1)
    return Response(status_code=202, content_type="application/json", body=json.dumps(answer))


@app.get("/models/<model>/runs")
def runs(model: str) -> dict[str, Any]:
    return lifecycle.history(model)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
