"""The report function: an endpoint in service -> the served run's report.json and report.html.

S3, DynamoDB and SageMaker's control plane are moto's; the endpoint's answers are scripted on the
function's sagemaker-runtime client, so the tests know exactly what the endpoint said and check
that the report scores those answers (never a prediction of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from dropfit.prediction import MAX_ENDPOINT_PAYLOAD
from dropfit.records import Run, RunStatus
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score

from .support import (
    ENDPOINT,
    IRIS_CLASSES,
    IRIS_FEATURES,
    METRICS,
    NEW,
    OLD,
    OLD_AT,
    Function,
    RuntimeScript,
    Stack,
    endpoint_event,
    serve_in_moto,
    spy_on,
    streaming,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

BASE = f"datasets/iris/{OLD}/"
RNG = np.random.default_rng(3)
TEST = [(int(c), [float(v) for v in RNG.normal(5, 2, 4).round(1)]) for c in RNG.integers(0, 3, 38)]
TRAIN = [(i % 3, [1.0, 2.0, 3.0, float(i)]) for i in range(112)]


def _lines(rows: list[tuple[Any, list[float]]]) -> bytes:
    return b"".join(f"{label},{','.join(map(str, v))}\n".encode() for label, v in rows)


def _request(rows: list[tuple[Any, list[float]]]) -> bytes:
    """The text/csv request of those rows: their features as the channel holds them."""
    return b"\n".join(",".join(map(str, v)).encode() for _, v in rows)


def _arrange(stack: Stack, test: list[tuple[Any, list[float]]], **metadata: Any) -> Run:
    """A deployed run: its channels and metadata.json as the format function writes them."""
    predictor_type = metadata.get("predictor_type", "classifier")
    run = stack.seed_run(
        OLD, RunStatus.DEPLOYED, created_at=OLD_AT, metrics=METRICS, predictor_type=predictor_type
    )
    stack.seed_model(desired=run, deployed=OLD)
    serve_in_moto(stack, OLD)
    meta = {
        "label_column": "Species",
        "feature_names": IRIS_FEATURES,
        "predictor_type": "classifier",
        "classes": IRIS_CLASSES,
        "n_rows": len(TRAIN) + len(test),
        "n_train": len(TRAIN),
        "n_test": len(test),
        "test_fraction": 0.25,
        "random_state": 0,
        "k": 1,
        "sample_size": len(TRAIN),
        **metadata,
    }
    stack.s3.put_object(Bucket=stack.bucket, Key=f"{BASE}metadata.json", Body=json.dumps(meta))
    stack.s3.put_object(Bucket=stack.bucket, Key=f"{BASE}train/train.csv", Body=_lines(TRAIN))
    stack.s3.put_object(Bucket=stack.bucket, Key=f"{BASE}test/test.csv", Body=_lines(test))
    return run


@pytest.fixture
def runtime(report_function: Function) -> Iterator[RuntimeScript]:
    with RuntimeScript(report_function.module.reporter.runtime.client) as script:
        yield script


def _report(stack: Stack) -> dict[str, Any]:
    body = stack.read(f"reports/iris/{OLD}/report.json")
    report: dict[str, Any] = json.loads(body)
    return report


def test_the_report_scores_the_endpoints_own_answers_to_the_test_channel(
    stack: Stack, report_function: Function, runtime: RuntimeScript
) -> None:
    _arrange(stack, TEST)
    guesses = [(label + (i % 4 == 0)) % 3 for i, (label, _) in enumerate(TEST)]  # 10 wrong
    runtime.answers(
        _request(TEST),
        {"predictions": [{"predicted_label": float(g)} for g in guesses]},
        OLD,
    )

    result = report_function(endpoint_event(ENDPOINT, OLD))

    assert result == {"outcome": "written"}
    report = _report(stack)
    truth = [label for label, _ in TEST]
    assert report["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, guesses))
    assert report["metrics"]["macro_f1"] == pytest.approx(f1_score(truth, guesses, average="macro"))
    assert report["predictions_from"] == {"source": "endpoint", "invocations": 1}
    assert [r["prediction"] for r in report["table"]["rows"]] == [IRIS_CLASSES[g] for g in guesses]
    assert report["training_job_metrics"] == METRICS
    assert report["baseline"]["class"] == "setosa"  # 38 training rows each: the first class
    page = stack.s3.get_object(Bucket=stack.bucket, Key=f"reports/iris/{OLD}/report.html")
    assert page["ContentType"].startswith("text/html")
    assert b'id="validation"' in page["Body"].read()
    recorded = stack.run("iris", OLD).report
    assert recorded is not None
    assert (recorded["json"], recorded["html"]) == (
        f"reports/iris/{OLD}/report.json",
        f"reports/iris/{OLD}/report.html",
    )


def test_a_repeated_event_writes_no_second_report(
    stack: Stack, report_function: Function, runtime: RuntimeScript
) -> None:
    _arrange(stack, TEST)
    runtime.answers(
        _request(TEST),
        {"predictions": [{"predicted_label": float(label)} for label, _ in TEST]},
        OLD,
    )
    assert report_function(endpoint_event(ENDPOINT, OLD)) == {"outcome": "written"}
    s3 = spy_on(report_function.module.reporter.storage.client)

    assert report_function(endpoint_event(ENDPOINT, OLD)) == {"outcome": "duplicate"}
    assert s3.calls == []


def test_answers_from_a_newer_run_write_nothing(
    stack: Stack, report_function: Function, runtime: RuntimeScript
) -> None:
    _arrange(stack, TEST)
    runtime.answers(
        _request(TEST),
        {"predictions": [{"predicted_label": 0.0} for _ in TEST]},
        NEW,
    )

    assert report_function(endpoint_event(ENDPOINT, OLD)) == {"outcome": "superseded"}
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="reports/")
    assert stack.run("iris", OLD).report is None


class Endpoint:
    """Answers every InvokeEndpoint like a k-NN regressor (the first feature, doubled)."""

    def __init__(self, client: Any) -> None:
        self.bodies: list[bytes] = []
        client.meta.events.register("before-call.sagemaker-runtime.InvokeEndpoint", self._answer)

    def _answer(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        body: bytes = params["body"]
        self.bodies.append(body)
        answers = [
            {"predicted_label": 2 * float(line.split(b",")[0])} for line in body.split(b"\n")
        ]
        parsed = {
            "Body": streaming(json.dumps({"predictions": answers}).encode()),
            "InvokedProductionVariant": OLD,
            "ResponseMetadata": {"HTTPStatusCode": 200},
        }
        return AWSResponse("https://runtime.sagemaker.local/", 200, HTTPHeaders(), None), parsed


@pytest.mark.slow
def test_a_test_channel_over_4_mb_goes_in_several_requests_under_the_limit(
    stack: Stack, report_function: Function
) -> None:
    endpoint = Endpoint(report_function.module.reporter.runtime.client)
    test = [(float(i % 97), [i / 7, 1.0 / (i + 1), 3.25, float(i)]) for i in range(70_000)]
    _arrange(stack, test, predictor_type="regressor", classes=None)

    assert report_function(endpoint_event(ENDPOINT, OLD)) == {"outcome": "written"}

    sizes = [len(body) for body in endpoint.bodies]
    assert len(sizes) >= 2
    assert max(sizes) <= MAX_ENDPOINT_PAYLOAD
    assert b"\n".join(endpoint.bodies).count(b"\n") + 1 == len(test)
    report = _report(stack)
    truth = [label for label, _ in test]
    answered = [2 * v[0] for _, v in test]
    assert report["predictions_from"]["invocations"] == len(sizes)
    assert report["metrics"]["mse"] == pytest.approx(mean_squared_error(truth, answered))
    assert report["metrics"]["r2"] == pytest.approx(r2_score(truth, answered))
    assert report["table"]["shown"] < report["table"]["total"] == len(test)
    assert len(json.dumps(report)) < 6_000_000  # GET /models/{model}/report fits a response
