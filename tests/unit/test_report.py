"""The validation report's figures, checked against scikit-learn, and its page.

The predictions here stand for the endpoint's answers (a scikit-learn k-NN, or deliberately poor
guesses): the report must score whatever it is given, exactly as scikit-learn scores it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from dropfit import evaluation
from dropfit.report import (
    HoldoutRows,
    LabelSummary,
    build_report,
    endpoint_batches,
    read_test_rows,
    summarise_labels,
)
from dropfit.report_page import render
from sklearn.datasets import load_diabetes, load_wine
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
)
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

WINE = load_wine()
DIABETES = load_diabetes()
# Written by the quality helper's format step into metadata.json (issue 10); the report reads it.
PREPROCESSING = {
    "scale": {"method": "standard", "chosen_by": "cross-validation"},
    "encode": {"method": "refuse"},
    "missing": {"method": "drop", "rows_dropped": 7},
}
K_SEARCH = {
    "candidates": [1, 3, 5, 7, 9],
    "scores": [0.91, 0.95, 0.97, 0.96, 0.94],
    "metric": "accuracy",
    "folds": 5,
    "chosen": 5,
    "sampled_rows": 133,
}


def _channel(labels: Sequence[Any], features: np.ndarray) -> list[bytes]:
    """Header-less test-channel lines, label first, as the format function writes them."""
    return [
        ",".join([str(label), *(repr(float(v)) for v in row)]).encode()
        for label, row in zip(labels, features, strict=True)
    ]


def _split(data: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, random_state=0)
    return x_train, x_test, y_train, y_test


def _wine_report(metadata_extra: dict[str, Any] | None = None, k: int = 1) -> dict[str, Any]:
    x_train, x_test, y_train, y_test = _split(WINE)
    predicted = KNeighborsClassifier(k).fit(x_train, y_train).predict(x_test)
    rows = read_test_rows(_channel(y_test, x_test))
    metadata = {
        "label_column": "cultivar",
        "feature_names": list(WINE.feature_names),
        "predictor_type": "classifier",
        "classes": ["0", "1", "2"],
        "n_rows": len(WINE.target),
        "n_train": len(y_train),
        "n_test": len(y_test),
        "test_fraction": 0.25,
        "k": k,
        **(metadata_extra or {}),
    }
    train = summarise_labels(_channel(y_train, x_train), "classifier")
    return build_report(
        model="wine",
        run="dropfit-wine-0123456789ab",
        metadata=metadata,
        rows=rows,
        predicted=[float(p) for p in predicted],
        train=train,
        training_metrics={"test:accuracy": 0.75},
        invocations=1,
        created_at="2026-12-04T15:00:00.000Z",
    )


def _diabetes_report() -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    x_train, x_test, y_train, y_test = _split(DIABETES)
    predicted = KNeighborsRegressor(5).fit(x_train, y_train).predict(x_test)
    report = build_report(
        model="diabetes",
        run="dropfit-diabetes-0123456789ab",
        metadata={
            "label_column": "target",
            "feature_names": list(DIABETES.feature_names),
            "predictor_type": "regressor",
            "classes": None,
            "n_rows": len(DIABETES.target),
            "n_train": len(y_train),
            "n_test": len(y_test),
            "test_fraction": 0.25,
            "k": 5,
        },
        rows=read_test_rows(_channel(y_test, x_test)),
        predicted=list(predicted),
        train=summarise_labels(_channel(y_train, x_train), "regressor"),
        training_metrics={"test:mse": 3400.0},
        invocations=1,
        created_at="2026-12-04T15:00:00.000Z",
    )
    return report, y_train, y_test, predicted


# --------------------------------------------------------------------------- figures


def test_classifier_figures_match_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    truth = rng.integers(0, 4, 300)
    predicted = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 5, 300))
    predicted[predicted == 3] = 4  # class 3 is never predicted, class 4 never true
    classes = ["a", "b", "c", "d", "e"]

    figures = evaluation.classification(truth.tolist(), predicted.tolist(), classes)

    assert figures["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert figures["macro_f1"] == pytest.approx(
        f1_score(truth, predicted, average="macro", zero_division=0)
    )
    labels = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    assert [c["class"] for c in figures["per_class"]] == [classes[i] for i in labels]
    assert [c["precision"] for c in figures["per_class"]] == pytest.approx(list(precision))
    assert [c["recall"] for c in figures["per_class"]] == pytest.approx(list(recall))
    assert [c["f1"] for c in figures["per_class"]] == pytest.approx(list(f1))
    assert [c["support"] for c in figures["per_class"]] == list(support)
    assert figures["confusion_matrix"]["counts"] == (
        confusion_matrix(truth, predicted, labels=range(5)).tolist()
    )


def test_majority_baseline_is_scikit_learns_most_frequent_dummy() -> None:
    x_train, x_test, y_train, y_test = _split(WINE)
    dummy = DummyClassifier(strategy="most_frequent").fit(x_train, y_train)
    counts = {int(c): int(n) for c, n in zip(*np.unique(y_train, return_counts=True), strict=True)}

    baseline = evaluation.majority_baseline(y_test.tolist(), ["0", "1", "2"], counts)

    assert baseline["class"] == str(dummy.predict(x_test[:1])[0])
    assert baseline["accuracy"] == pytest.approx(dummy.score(x_test, y_test))


def test_regressor_figures_and_mean_baseline_match_scikit_learn() -> None:
    report, y_train, y_test, predicted = _diabetes_report()

    metrics, baseline = report["metrics"], report["baseline"]
    assert metrics["mse"] == pytest.approx(mean_squared_error(y_test, predicted))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y_test, predicted))
    assert metrics["r2"] == pytest.approx(r2_score(y_test, predicted))
    dummy = DummyRegressor().fit(np.zeros((len(y_train), 1)), y_train)
    mean_guess = dummy.predict(np.zeros((len(y_test), 1)))
    assert baseline["value"] == pytest.approx(float(y_train.mean()))
    assert baseline["mse"] == pytest.approx(mean_squared_error(y_test, mean_guess))
    assert baseline["r2"] == pytest.approx(r2_score(y_test, mean_guess))
    assert report["table"]["rows"][0]["error"] == pytest.approx(predicted[0] - y_test[0])


def test_wine_report_scores_the_given_predictions_and_lists_every_test_row() -> None:
    x_train, x_test, y_train, y_test = _split(WINE)
    predicted = KNeighborsClassifier(1).fit(x_train, y_train).predict(x_test)

    report = _wine_report()

    assert report["metrics"]["accuracy"] == pytest.approx(accuracy_score(y_test, predicted))
    assert report["dataset"]["evaluated_rows"] == len(y_test)
    table = report["table"]
    assert (table["shown"], table["total"]) == (len(y_test), len(y_test))
    first = table["rows"][0]
    assert first["features"] == pytest.approx(list(x_test[0]))
    assert (first["label"], first["prediction"]) == (str(y_test[0]), str(predicted[0]))
    assert [r["correct"] for r in table["rows"]] == list(y_test == predicted)


# --------------------------------------------------------------------------- warnings


def test_unscaled_features_of_very_different_ranges_are_a_warning_naming_them() -> None:
    (warning,) = [w for w in _wine_report()["warnings"] if w["code"] == "FeatureScales"]

    assert "proline" in warning["message"]
    assert "scale=standard" in warning["message"]


def test_scaled_runs_get_no_scale_warning() -> None:
    report = _wine_report({"preprocessing": PREPROCESSING})

    assert "FeatureScales" not in {w["code"] for w in report["warnings"]}


def test_classes_with_few_rows_are_named_with_their_counts() -> None:
    advice = evaluation.warnings_for(
        predictor_type="classifier",
        scale_method="none",
        spreads=[],
        class_rows={"common": 120, "rare": 3, "scarce": 9},
        metrics={"accuracy": 0.9},
        baseline={"accuracy": 0.5, "class": "common"},
    )

    (few,) = [a for a in advice if a.code == "FewRows"]
    assert "rare (3), scarce (9)" in few.message
    assert "common" not in few.message


@pytest.mark.parametrize(
    ("predictor_type", "metrics", "baseline", "warned"),
    [
        ("classifier", {"accuracy": 0.40}, {"accuracy": 0.40, "class": "x"}, True),
        ("classifier", {"accuracy": 0.41}, {"accuracy": 0.40, "class": "x"}, False),
        ("regressor", {"mse": 10.0}, {"mse": 9.0, "value": 1.0}, True),
        ("regressor", {"mse": 8.0}, {"mse": 9.0, "value": 1.0}, False),
    ],
)
def test_a_model_no_better_than_its_baseline_is_a_warning(
    predictor_type: str, metrics: dict[str, Any], baseline: dict[str, Any], warned: bool
) -> None:
    advice = evaluation.warnings_for(
        predictor_type=predictor_type,
        scale_method="standard",
        spreads=[],
        class_rows=None,
        metrics=metrics,
        baseline=baseline,
    )

    assert ("NoBetterThanBaseline" in {a.code for a in advice}) is warned


# ------------------------------------------------------------------ what the format step says


def test_preprocessing_and_k_search_from_metadata_are_reported() -> None:
    report = _wine_report({"preprocessing": PREPROCESSING, "k_search": K_SEARCH})

    assert (report["scaling"], report["rows_dropped"], report["k"]) == ("standard", 7, 5)
    assert report["k_search"] == K_SEARCH
    page = render(report)
    assert 'id="plot-k-curve"' in page
    assert "features as the model sees them (scaled)" in page


def test_without_preprocessing_or_k_search_the_report_says_the_defaults() -> None:
    report = _wine_report(k=3)

    assert (report["scaling"], report["rows_dropped"], report["k"]) == ("none", 0, 3)
    assert (report["k_search"], report["preprocessing"]) == (None, None)
    assert 'id="plot-k-curve"' not in render(report)


# ------------------------------------------------------------------ the endpoint's requests


def test_requests_stay_under_the_limit_and_carry_every_row_once_in_order() -> None:
    lines = [f"{i}.5,{i * 2}.25,{i % 7}".encode() for i in range(1000)]

    batches = list(endpoint_batches(lines, limit=1000, rows=60))

    assert len(batches) > 10
    assert all(len(body) <= 1000 and body.count(b"\n") < 60 for _, body in batches)
    assert b"\n".join(body for _, body in batches) == b"\n".join(lines)
    assert [start for start, _ in batches] == [
        sum(body.count(b"\n") + 1 for _, body in batches[:i]) for i in range(len(batches))
    ]


def test_test_rows_beyond_the_limit_are_counted_not_evaluated() -> None:
    rows = read_test_rows([b"1,0.5,2", b"", b"0,1.5,3\r", b"2,2.5,4"], limit=2)

    assert rows == HoldoutRows(["1", "0"], [[0.5, 2.0], [1.5, 3.0]], [b"0.5,2", b"1.5,3"], 3)


def test_training_labels_give_class_counts_or_the_mean() -> None:
    lines = [b"2,1.0", b"0,3.0", b"2,5.0", b""]

    assert summarise_labels(lines, "classifier") == LabelSummary({2: 2, 0: 1}, None)
    assert summarise_labels(lines, "regressor") == LabelSummary({}, 4 / 3)


# --------------------------------------------------------------------------- the page


def _images(page: str) -> list[str]:
    return re.findall(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)


def test_classifier_page_has_the_table_the_figures_and_the_confusion_matrix() -> None:
    report = _wine_report()

    page = render(report)

    assert page.count("<tr") - page.count("<tr><th") >= report["table"]["total"]
    assert len(re.findall(r"<td>(?:yes|NO)</td>", page)) == report["table"]["total"]
    assert f"{report['metrics']['accuracy']:.6g}" in page
    assert 'id="plot-confusion"' in page
    assert len(_images(page)) == 1
    assert 'data-code="FeatureScales"' in page
    assert not re.search(r"(?:src|href)=\"(?!data:)", page)
    json.dumps(report, allow_nan=False)  # report.json is strict JSON


def test_regressor_page_has_predicted_vs_actual_and_residual_plots() -> None:
    report, *_ = _diabetes_report()

    page = render(report)

    assert 'id="plot-predicted-vs-actual"' in page
    assert 'id="plot-residuals"' in page
    assert len(_images(page)) == 2
    assert f"{report['metrics']['r2']:.6g}" in page
    assert not re.search(r"(?:src|href)=\"(?!data:)", page)


def test_the_table_shows_the_uploads_values_when_the_model_reads_a_transform() -> None:
    """With scaling and one-hot (the format step's preprocessing columns), the test channel
    holds the model's inputs; the table shows the values as uploaded."""
    columns = [
        {"name": "size", "kind": "number", "offset": 10.0, "divisor": 4.0},
        {"name": "colour", "kind": "category", "categories": ["blue", "red"]},
    ]
    uploaded = [(12.0, "red"), (6.0, "blue"), (10.0, None)]  # None: unseen in training
    channel = [
        f"{i % 2},{(size - 10.0) / 4.0!r},{colour == 'blue':d},{colour == 'red':d}".encode()
        for i, (size, colour) in enumerate(uploaded)
    ]
    metadata = {
        "feature_names": ["size", "colour"],
        "predictor_type": "classifier",
        "classes": ["no", "yes"],
        "k": 3,
        "preprocessing": {**PREPROCESSING, "columns": columns},
    }

    report = build_report(
        model="m",
        run="r",
        metadata=metadata,
        rows=read_test_rows(channel),
        predicted=[0.0, 1.0, 0.0],
        train=LabelSummary({0: 5, 1: 4}, None),
        training_metrics=None,
        invocations=1,
        created_at="2026-12-04T15:00:00.000Z",
    )

    assert [r["features"] for r in report["table"]["rows"]] == [list(u) for u in uploaded]
    assert [s["feature"] for s in report["feature_spreads"]] == [
        "size",
        "colour=blue",
        "colour=red",
    ]
    page = render(report)
    assert '<td class="text">red</td>' in page
    assert "(unseen)" in page
    assert "as the model sees them" not in page
