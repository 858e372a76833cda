"""Predict overhead: a warm handler's time per request, the endpoint call stubbed.

The predict function runs as deployed (Powertools resolver, Logger, Metrics, the table adapter
and the label mapping), in a fresh process with the template's environment; only its DynamoDB
and SageMaker runtime clients are fakes that answer at once. Baseline, in the same process: the
least a correct handler must do (parse the JSON body, turn the instances into CSV lines, call
invoke_endpoint, parse its JSON answer and return it).

``python -m bench.predict ROWS`` is the child.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.core import ROOT, Context, Result, Target, benchmark, median, run_child

CLASSES = ["setosa", "versicolor", "virginica"]
FEATURES = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"]
RUN = "dropfit-iris-0123456789ab"
ENDPOINT = "dropfit-iris"
ROUNDS = 21


@dataclass
class FakeRuntime:
    """SageMaker runtime that answers every request with the same k-NN JSON."""

    answer: bytes

    def invoke_endpoint(self, **_: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.answer), "InvokedProductionVariant": RUN}


@dataclass
class FakeDynamoDB:
    """DynamoDB that holds one deployed model and its run (items in DynamoDB's JSON)."""

    items: dict[str, dict[str, Any]]

    def get_item(self, *, Key: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        return {"Item": self.items[Key["pk"]["S"]]}


def _items() -> dict[str, dict[str, Any]]:
    from boto3.dynamodb.types import TypeSerializer
    from dropfit.records import ModelRecord, Run, RunStatus

    model = ModelRecord(
        model="iris",
        endpoint=ENDPOINT,
        created_at="2025-03-14T09:00:00.000Z",
        latest_run=RUN,
        desired_run=RUN,
        deployed_run=RUN,
    )
    run = Run(
        model="iris",
        job=RUN,
        status=RunStatus.DEPLOYED,
        created_at="2025-03-14T09:00:00.000Z",
        source={"key": "incoming/iris.csv"},
        feature_names=FEATURES,
        classes=CLASSES,
        predictor_type="classifier",
    )
    serialize = TypeSerializer().serialize
    model_item = {"pk": "MODEL", "sk": "iris", **model.to_attributes()}
    run_item = {"pk": "RUN#iris", "sk": RUN, **run.to_attributes()}
    return {
        item["pk"]: {k: serialize(v) for k, v in item.items()} for item in (model_item, run_item)
    }


def _minimal_handler(runtime: FakeRuntime) -> Any:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        instances = json.loads(event["body"])["instances"]
        body = "\n".join(",".join(map(str, row)) for row in instances).encode()
        response = runtime.invoke_endpoint(
            EndpointName=ENDPOINT, Body=body, ContentType="text/csv", Accept="application/json"
        )
        answer = json.loads(response["Body"].read())
        return {"statusCode": 200, "body": json.dumps(answer)}

    return handler


def _powertools_floor() -> Any:
    """The same Powertools wrapping (resolver, Logger, Metrics) around a constant answer."""
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.metrics import MetricUnit

    logger, metrics, app = Logger(), Metrics(), APIGatewayHttpResolver()

    @app.post("/models/<model>/predict")
    def route(model: str) -> dict[str, Any]:
        metrics.add_metric(name="Predictions", unit=MetricUnit.Count, value=1)
        return {"model": model}

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    return handler


def _load_predict_function() -> Any:
    spec = importlib.util.spec_from_file_location(
        "dropfit_function_predict", ROOT / "functions" / "predict" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _per_call(handler: Any, event: dict[str, Any], context: Any, calls: int) -> float:
    events = [copy.deepcopy(event) for _ in range(calls)]  # Powertools may keep state on it
    started = time.perf_counter()
    for e in events:
        handler(e, context)
    return (time.perf_counter() - started) / calls


def child(rows: int) -> dict[str, Any]:
    """Load the predict function with fakes, then time the handlers, interleaved."""
    from bench.coldstart import lambda_env

    os.environ.update(lambda_env("predict"))
    answer = json.dumps(
        {"predictions": [{"predicted_label": float(i % 3)} for i in range(rows)]}
    ).encode()
    app = _load_predict_function()
    runtime = FakeRuntime(answer)
    app.service.runtime.client = runtime
    app.service.table.client = FakeDynamoDB(_items())

    event = json.loads((ROOT / "events" / "api-predict.json").read_text())
    event["body"] = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * rows})
    context = _Context()
    minimal = _minimal_handler(runtime)

    floor = _powertools_floor()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):  # the metrics' EMF lines, as Lambda's stdout takes them
        response = app.lambda_handler(copy.deepcopy(event), context)  # warm: caches the run
        assert response["statusCode"] == 200, response
        assert json.loads(response["body"])["count"] == rows
        calls = max(1, 400 // rows)
        ours, baseline, powertools = [], [], []
        for _ in range(ROUNDS):
            ours.append(_per_call(app.lambda_handler, event, context, calls))
            baseline.append(_per_call(minimal, event, context, calls))
            powertools.append(_per_call(floor, event, context, calls))
            sink.seek(0)
            sink.truncate()
    return {
        "ours_s": median(ours),
        "baseline_s": median(baseline),
        "powertools_s": median(powertools),
        "calls": calls,
    }


@dataclass(frozen=True)
class _Context:
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    function_name: str = "dropfit-predict"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:dropfit-predict"
    log_group_name: str = "/aws/lambda/dropfit-predict"
    log_stream_name: str = "2025/03/14/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@benchmark("predict")
def predict(ctx: Context) -> Iterator[Result]:
    """Warm predict handler per request (endpoint stubbed) vs the least a handler must do."""
    for rows in (1, 1000):
        measured = run_child(["-m", "bench.predict", str(rows)])
        yield Result(
            f"predict.overhead.{rows}_row{'s' if rows > 1 else ''}",
            measured["ours_s"] * 1e6,
            "us",
            baseline=measured["baseline_s"] * 1e6,
            target=Target("ratio", "<=", 1.5),
            detail={
                "calls_per_round": measured["calls"],
                "rounds": ROUNDS,
                # Powertools' resolver, Logger and Metrics around a constant answer: the part
                # of the handler's time that is not Dropfit's code
                "powertools_only_us": round(measured["powertools_s"] * 1e6, 1),
            },
        )


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]))))
