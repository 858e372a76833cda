"""Predict overhead: a warm handler's time per request, the endpoint call stubbed.

The predict function runs as deployed (Powertools resolver, Logger, Metrics, the table adapter,
its model-record cache and the label mapping), in a fresh process with the template's
environment and its own boto3 clients; only the HTTP send is stubbed (botocore's ``before-send``
answers at once), so each call still pays botocore's validation, serialisation, SigV4 signing and
parsing, as any handler that calls ``invoke_endpoint`` does. Baseline, in the same process: the
least a correct handler must do (parse the JSON body, turn the instances into CSV lines, call
``invoke_endpoint`` on a boto3 client stubbed the same way, parse its JSON answer and return it).

Reported too, not judged: the same two handlers with the clients replaced by plain Python fakes
(no botocore at all), which isolates the Python both handlers run around the call.

``python -m bench.predict ROWS`` is the child.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from statistics import median
from typing import Any

import boto3
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.compat import HTTPHeaders

from bench.coldstart_child import load_function
from bench.core import ROOT, Context, Result, Target, benchmark, run_child

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


class _Raw:
    """An HTTP body as botocore reads it from urllib3."""

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()

    def read(self, *args: Any, **_: Any) -> bytes:
        return self._body.read(*args)


Answer = Callable[[AWSRequest], tuple[dict[str, str], bytes]]


def _stub_sends(client: Any, operation: str, answer: Answer) -> None:
    """Answer this client's HTTP requests for ``operation`` at once, past all of botocore's work."""

    def send(request: AWSRequest, **_: Any) -> AWSResponse:
        headers, body = answer(request)
        headers = {**headers, "Content-Length": str(len(body))}
        return AWSResponse(str(request.url), 200, HTTPHeaders.from_dict(headers), _Raw(body))

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service}.{operation}", send)


def _endpoint_answer(answer: bytes) -> Answer:
    headers = {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": RUN}
    return lambda _: (headers, answer)


def _table_answer(items: dict[str, dict[str, Any]]) -> Answer:
    headers = {"Content-Type": "application/x-amz-json-1.0"}

    def answer(request: AWSRequest) -> tuple[dict[str, str], bytes]:
        key = json.loads(request.body)["Key"]["pk"]["S"]
        return headers, json.dumps({"Item": items[key]}).encode()

    return answer


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
        predictor_type="classifier",
    )
    serialize = TypeSerializer().serialize
    model_item = {"pk": "MODEL", "sk": "iris", **model.to_attributes()}
    run_item = {"pk": "RUN#iris", "sk": RUN, **run.to_attributes()}
    return {
        item["pk"]: {k: serialize(v) for k, v in item.items()} for item in (model_item, run_item)
    }


def _metadata_answer() -> Answer:
    """The run's metadata.json (features, label map), read once by a warm container."""
    from tests.metadata_fixture import iris_metadata

    metadata = iris_metadata(feature_names=FEATURES, classes=CLASSES).to_json()
    return lambda _: ({"Content-Type": "application/json"}, metadata)


def _minimal_handler(runtime: Any) -> Any:
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


def _per_call(handler: Any, event: dict[str, Any], context: Any, calls: int) -> float:
    events = [copy.deepcopy(event) for _ in range(calls)]  # Powertools may keep state on it
    started = time.perf_counter()
    for e in events:
        handler(e, context)
    return (time.perf_counter() - started) / calls


def _time_interleaved(
    handlers: list[Any], event: dict[str, Any], context: Any, calls: int
) -> list[float]:
    """Median seconds per call of each handler, rounds interleaved so that noise hits all."""
    samples: list[list[float]] = [[] for _ in handlers]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):  # the metrics' EMF lines, as Lambda's stdout takes them
        for _ in range(ROUNDS):
            for handler, times in zip(handlers, samples, strict=True):
                times.append(_per_call(handler, event, context, calls))
            sink.seek(0)
            sink.truncate()
    return [median(times) for times in samples]


def child(rows: int) -> dict[str, Any]:
    """Load the predict function, stub its HTTP sends, then time the handlers, interleaved."""
    from bench.coldstart import lambda_env

    # Lambda gives a function its role's credentials as variables; signing needs some.
    os.environ.update(
        lambda_env("predict"), AWS_ACCESS_KEY_ID="ASIABENCH", AWS_SECRET_ACCESS_KEY="bench"
    )
    answer = json.dumps(
        {"predictions": [{"predicted_label": float(i % 3)} for i in range(rows)]}
    ).encode()
    items = _items()
    app = load_function("predict")
    _stub_sends(app.service.runtime.client, "InvokeEndpoint", _endpoint_answer(answer))
    _stub_sends(app.service.table.client, "GetItem", _table_answer(items))
    _stub_sends(app.service.metadata.storage.client, "GetObject", _metadata_answer())
    runtime = boto3.client("sagemaker-runtime")
    _stub_sends(runtime, "InvokeEndpoint", _endpoint_answer(answer))

    event = json.loads((ROOT / "events" / "api-predict.json").read_text())
    event["body"] = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * rows})
    context = _Context()
    with contextlib.redirect_stdout(io.StringIO()):
        response = app.lambda_handler(copy.deepcopy(event), context)  # warm: caches the run
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["count"] == rows
    calls = max(1, 400 // rows)
    ours, baseline = _time_interleaved(
        [app.lambda_handler, _minimal_handler(runtime)], event, context, calls
    )

    # The same, with no botocore at all: what is left is the Python around the call.
    fake_runtime = FakeRuntime(answer)
    app.service.runtime.client = fake_runtime
    app.service.table.client = FakeDynamoDB(items)
    ours_fakes, baseline_fakes, powertools = _time_interleaved(
        [app.lambda_handler, _minimal_handler(fake_runtime), _powertools_floor()],
        event,
        context,
        calls,
    )
    return {
        "ours_s": ours,
        "baseline_s": baseline,
        "ours_fakes_s": ours_fakes,
        "baseline_fakes_s": baseline_fakes,
        "powertools_s": powertools,
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
                "stubbed": "HTTP send (botocore before-send); all client work is timed",
                # Without botocore: the Python both handlers run around the call
                "fakes_us": round(measured["ours_fakes_s"] * 1e6, 1),
                "fakes_baseline_us": round(measured["baseline_fakes_s"] * 1e6, 1),
                "fakes_ratio": round(measured["ours_fakes_s"] / measured["baseline_fakes_s"], 2),
                # Powertools' resolver, Logger and Metrics around a constant answer: the part
                # of the handler's time that is not Dropfit's code
                "powertools_only_us": round(measured["powertools_s"] * 1e6, 1),
            },
        )


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]))))
