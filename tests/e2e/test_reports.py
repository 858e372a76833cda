"""Validation reports end to end: a classifier and a regressor uploaded to the local stack, their
reports read through the API, checked against scikit-learn, and shown in a headless Chromium
with no network (screenshots in .local/test-artifacts/)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
)
from sklearn.neighbors import KNeighborsRegressor

from tests.browser import coloured_pixels, show
from tests.template_utils import load_template

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e

TUTORIAL_ACCURACY = 0.9736842105263158
REPORT_SECONDS = 120


@dataclass(frozen=True)
class Served:
    model: str
    description: dict[str, Any]
    report: dict[str, Any]
    page: str  # report.html, fetched through the presigned link
    train: list[tuple[float, list[float]]]
    test: list[tuple[float, list[float]]]


def _channel(local: Local, model: str, run: str, name: str) -> list[tuple[float, list[float]]]:
    datasets = load_template()["Mappings"]["Layout"]["Prefix"]["Datasets"]
    key = f"{datasets}{model}/{run}/{name}"
    text = local.s3.get_object(Bucket=local.bucket, Key=key)["Body"].read().decode()
    rows = []
    for line in text.splitlines():
        label, *features = line.split(",")
        rows.append((float(label), [float(value) for value in features]))
    return rows


def _serve(local: Local, model: str, body: bytes, metadata: dict[str, str] | None) -> Served:
    local.upload(f"{model}.csv", body, metadata)
    description = local.wait_for_new_run(model)
    assert description["status"] == "ready", description
    deadline = time.monotonic() + REPORT_SECONDS
    while (answer := local.client.get(f"/models/{model}/report", timeout=30)).status == 404:
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.5)
    assert answer.status == 200, answer.text
    link = local.describe(model)["report"]  # type: ignore[index]
    with urllib.request.urlopen(link["html_url"], timeout=30) as page:  # no signing: presigned
        html = page.read().decode()
    run = description["deployed_run"]["run"]
    return Served(
        model,
        description,
        answer.json(),
        html,
        _channel(local, model, run, "train/train.csv"),
        _channel(local, model, run, "test/test.csv"),
    )


@pytest.fixture(scope="module")
def classifier(local: Local) -> Served:
    return _serve(local, "iris-report", IRIS, None)


@pytest.fixture(scope="module")
def regressor(local: Local) -> Iterator[Served]:
    data = load_diabetes(scaled=False)
    header = ",".join([*data.feature_names, "progression"])
    lines = [header] + [
        ",".join([*(f"{v:g}" for v in row), f"{y:g}"])
        for row, y in zip(data.data, data.target, strict=True)
    ]
    body = ("\n".join(lines) + "\n").encode()
    yield _serve(local, "diabetes-report", body, {"predictor_type": "regressor", "k": "5"})


def test_the_classifier_report_scores_what_the_api_serves(local: Local, classifier: Served) -> None:
    report = classifier.report
    truth = [int(label) for label, _ in classifier.test]
    classes = classifier.description["classes"]
    answered = local.predict(classifier.model, [f for _, f in classifier.test]).json()
    served = [classes.index(p["label"]) for p in answered["predictions"]]

    assert [r["prediction"] for r in report["table"]["rows"]] == [classes[p] for p in served]
    assert [r["label"] for r in report["table"]["rows"]] == [classes[t] for t in truth]
    metrics = report["metrics"]
    assert metrics["accuracy"] == accuracy_score(truth, served) == TUTORIAL_ACCURACY
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, served, average="macro"))
    precision, recall, f1, support = precision_recall_fscore_support(truth, served)
    assert [c["precision"] for c in metrics["per_class"]] == pytest.approx(list(precision))
    assert [c["recall"] for c in metrics["per_class"]] == pytest.approx(list(recall))
    assert [c["f1"] for c in metrics["per_class"]] == pytest.approx(list(f1))
    assert [c["support"] for c in metrics["per_class"]] == list(support)
    assert metrics["confusion_matrix"]["counts"] == confusion_matrix(truth, served).tolist()
    train_labels = [int(label) for label, _ in classifier.train]
    majority = max(set(train_labels), key=train_labels.count)
    assert report["baseline"]["accuracy"] == accuracy_score(truth, [majority] * len(truth))
    assert report["predictions_from"] == {"source": "endpoint", "invocations": 1}
    assert (report["k"], report["scaling"], report["rows_dropped"]) == (1, "none", 0)


def test_the_regressor_report_scores_what_the_api_serves(local: Local, regressor: Served) -> None:
    report = regressor.report
    truth = [label for label, _ in regressor.test]
    answered = local.predict(regressor.model, [f for _, f in regressor.test]).json()
    served = [p["label"] for p in answered["predictions"]]

    assert [r["prediction"] for r in report["table"]["rows"]] == served
    metrics = report["metrics"]
    assert metrics["mse"] == pytest.approx(mean_squared_error(truth, served))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(truth, served))
    assert metrics["r2"] == pytest.approx(r2_score(truth, served))
    # The endpoint is the k-NN scikit-learn computes (float32 aside).
    x_train = np.array([f for _, f in regressor.train])
    y_train = np.array([label for label, _ in regressor.train])
    reference = KNeighborsRegressor(5).fit(x_train, y_train).predict([f for _, f in regressor.test])
    assert metrics["mse"] == pytest.approx(mean_squared_error(truth, reference), rel=0.02)
    train_mean = float(y_train.mean())
    assert report["baseline"]["value"] == pytest.approx(train_mean)
    assert report["baseline"]["mse"] == pytest.approx(
        mean_squared_error(truth, [train_mean] * len(truth))
    )
    assert report["k"] == 5


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_the_report_page_shows_table_figures_and_plots_offline_in_chromium(
    kind: str, request: pytest.FixtureRequest
) -> None:
    served: Served = request.getfixturevalue(kind)
    plots = {
        "classifier": {"plot-confusion"},
        "regressor": {"plot-predicted-vs-actual", "plot-residuals"},
    }[kind]

    shown = show(served.page, f"report-{kind}")

    assert shown.fetched == []  # nothing but the page itself: it needs no network
    assert {image["id"] for image in shown.images} == plots
    assert all(i["complete"] and i["width"] > 300 and i["height"] > 300 for i in shown.images)
    rows = shown.dom.split('id="validation"', 1)[1].split("</table>", 1)[0].count("<tr") - 1
    assert rows == len(served.test)
    assert f"{served.report['metrics']['accuracy' if kind == 'classifier' else 'mse']:.6g}" in (
        shown.dom
    )
    pixels = coloured_pixels(shown.screenshot)
    assert pixels["blue"] > 5_000, pixels  # the confusion matrix's cells, or the scatter's points
    if kind == "regressor":
        assert pixels["red"] > 200, pixels  # the diagonal and the zero line


def test_the_browser_check_sees_a_page_that_needs_the_network() -> None:
    """A control: the same check fails a page with an image from elsewhere."""
    page = '<html><body><figure id="plot-x"><img src="https://example.com/x.png"></figure></body></html>'

    shown = show(page, "control-remote-image", height=300)

    assert shown.fetched == ["https://example.com/x.png"]
    assert shown.images == [{"id": "plot-x", "complete": True, "width": 0, "height": 0}]
