"""HTTP API: list and describe models, predict through a model's endpoint."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from dropfit.api_errors import register_error_handlers
from dropfit.aws.s3 import Storage
from dropfit.aws.sagemaker import SageMakerControl, SageMakerRuntime
from dropfit.aws.table import RunsTable
from dropfit.prediction import request_text
from dropfit.run_metadata import RunMetadataStore
from dropfit.serving import ModelService
from dropfit.settings import PredictSettings

logger = Logger()
metrics = Metrics()
# No Powertools Tracer here: importing the X-Ray SDK creates botocore X-Ray clients, ~100 ms of
# every cold start (bench/coldstart.py). Lambda's active tracing still records this function's
# segments; the format function, whose work dwarfs its cold start, keeps the Tracer.
app = APIGatewayHttpResolver()

settings = PredictSettings.from_env()
# One S3 client: metadata.json and report.json, and presigned report links, which are SigV4 on
# the bucket's regional host (the global host may redirect a new bucket's requests, and a
# redirected presigned URL no longer matches its signature).
storage = Storage(
    boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
)
service = ModelService(
    table=RunsTable(settings.table_name, boto3.client("dynamodb")),
    control=SageMakerControl(boto3.client("sagemaker")),
    runtime=SageMakerRuntime(boto3.client("sagemaker-runtime")),
    metadata=RunMetadataStore(storage, settings.bucket_name, settings.datasets_prefix),
    storage=storage,
    bucket=settings.bucket_name,
    allow_neighbors=settings.allow_neighbors,
)

register_error_handlers(app, logger, routes_hint="GET /models and POST /models/{model}/predict")


@app.post("/models/<model>/predict")
def predict(model: str) -> dict[str, Any]:
    event = app.current_event
    neighbors = (event.query_string_parameters or {}).get("neighbors", "").lower() in ("1", "true")
    body = request_text(event.body, event.is_base64_encoded)
    answer = service.predict(unquote(model), body, event.headers.get("content-type"), neighbors)
    metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=answer["count"])
    return answer


@app.get("/models")
def list_models() -> dict[str, Any]:
    metrics.add_metric(name="ModelListings", unit=MetricUnit.Count, value=1)
    return service.list_models()


@app.get("/models/<model>")
def describe_model(model: str) -> dict[str, Any]:
    metrics.add_metric(name="ModelLookups", unit=MetricUnit.Count, value=1)
    # Routes match the raw (percent-encoded) path: /models/%E5%A3%B2... names 売...
    return service.describe_model(unquote(model))


@app.get("/models/<model>/report")
def model_report(model: str) -> dict[str, Any]:
    metrics.add_metric(name="ReportReads", unit=MetricUnit.Count, value=1)
    return service.report(unquote(model))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
