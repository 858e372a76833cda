"""Validation figures of a run: metrics, baselines and warnings from labels and predictions.

numpy only (the report function's dependency; predict and deploy never import this module).
Conventions follow scikit-learn: macro averages over the classes found in the truth or the
predictions, a precision or recall with nothing to divide is 0, R² of a constant truth is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Features whose spreads differ by more than this factor make one of them dominate Euclidean
# distances (the wine data: proline's range is ~2,000 times hue's).
SCALE_RATIO_WARNING = 100.0
# Fewer rows than this in a class (whole upload) make its figures a matter of a row or two.
FEW_ROWS = 10


@dataclass(frozen=True, slots=True)
class Advice:
    """Something the user can act on; ``code`` is stable, ``message`` says what to do."""

    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def classification(
    truth: Sequence[int], predicted: Sequence[int], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    ``truth`` and ``predicted`` are class indexes into ``classes``.
    """
    t = np.asarray(truth, dtype=np.int64)
    p = np.asarray(predicted, dtype=np.int64)
    n = len(classes)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (t, p), 1)
    present = sorted(set(t.tolist()) | set(p.tolist()))
    per_class = []
    for i in present:
        tp = int(matrix[i, i])
        support, predicted_n = int(matrix[i].sum()), int(matrix[:, i].sum())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * tp / (support + predicted_n) if support + predicted_n else 0.0
        per_class.append(
            {
                "class": classes[i],
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": support,
            }
        )
    return {
        "accuracy": float(np.mean(t == p)),
        "macro_f1": float(np.mean([c["f1"] for c in per_class])),
        "per_class": per_class,
        "confusion_matrix": {"classes": list(classes), "counts": matrix.tolist()},
    }


def majority_baseline(
    truth: Sequence[int], classes: Sequence[str], train_counts: Mapping[int, int]
) -> dict[str, Any]:
    """Always answering the training rows' most frequent class (ties: the first class)."""
    majority = max(sorted(train_counts), key=lambda i: train_counts[i])
    t = np.asarray(truth, dtype=np.int64)
    return {
        "kind": "majority_class",
        "class": classes[majority],
        "accuracy": float(np.mean(t == majority)),
        "macro_f1": classification(truth, [majority] * len(truth), classes)["macro_f1"],
    }


def regression(truth: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
    """MSE, MAE and R² (0 when the truth is constant and predicted exactly, as scikit-learn)."""
    t = np.asarray(truth, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    errors = p - t
    mse = float(np.mean(errors**2))
    total = float(np.sum((t - t.mean()) ** 2))
    residual = float(np.sum(errors**2))
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return {"mse": mse, "mae": float(np.mean(np.abs(errors))), "r2": r2}


def mean_baseline(truth: Sequence[float], train_mean: float) -> dict[str, Any]:
    """Always answering the training rows' mean label."""
    return {"kind": "mean", "value": train_mean, **regression(truth, [train_mean] * len(truth))}


def feature_spreads(rows: Sequence[Sequence[float]], names: Sequence[str]) -> list[dict[str, Any]]:
    """Each feature's minimum, maximum and standard deviation over ``rows``."""
    values = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names))
    return [
        {
            "feature": name,
            "min": float(values[:, j].min()),
            "max": float(values[:, j].max()),
            "std": float(values[:, j].std()),
        }
        for j, name in enumerate(names)
    ]


def warnings_for(
    *,
    predictor_type: str,
    scale_method: str,
    spreads: Sequence[Mapping[str, Any]],
    class_rows: Mapping[str, int] | None,
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any],
) -> list[Advice]:
    """What the user could change: unscaled features of different ranges, thin classes, a model
    that does no better than its baseline."""
    found: list[Advice] = []
    if scale_method == "none":
        spread = [s for s in spreads if s["std"] > 0]
        if len(spread) >= 2:
            wide = max(spread, key=lambda s: s["std"])
            narrow = min(spread, key=lambda s: s["std"])
            ratio = wide["std"] / narrow["std"]
            if ratio > SCALE_RATIO_WARNING:
                found.append(
                    Advice(
                        "FeatureScales",
                        f"Features are on very different scales: {wide['feature']} spreads "
                        f"{ratio:,.0f} times as wide as {narrow['feature']} "
                        f"({wide['min']:g} to {wide['max']:g} against {narrow['min']:g} to "
                        f"{narrow['max']:g}), so it dominates the neighbours' distances. Upload "
                        "again with the option scale=standard (or scale=auto).",
                    )
                )
    if class_rows:
        thin = sorted((n, c) for c, n in class_rows.items() if n < FEW_ROWS)
        if thin:
            listed = ", ".join(f"{c} ({n})" for n, c in thin[:10])
            more = f" and {len(thin) - 10} more" if len(thin) > 10 else ""
            found.append(
                Advice(
                    "FewRows",
                    f"Classes with fewer than {FEW_ROWS} rows in the upload: {listed}{more}. "
                    "Their precision and recall rest on a row or two; add rows of these classes.",
                )
            )
    if predictor_type == "classifier":
        if metrics["accuracy"] <= baseline["accuracy"]:
            found.append(
                Advice(
                    "NoBetterThanBaseline",
                    f"Accuracy {metrics['accuracy']:.4f} is no better than always answering "
                    f"{baseline['class']!r} ({baseline['accuracy']:.4f}). The features may not "
                    "predict the label: check the label column, scale the features, or try "
                    "another k.",
                )
            )
    elif metrics["mse"] >= baseline["mse"]:
        found.append(
            Advice(
                "NoBetterThanBaseline",
                f"MSE {metrics['mse']:.6g} is no better than always answering the training mean "
                f"{baseline['value']:.6g} (MSE {baseline['mse']:.6g}). The features may not "
                "predict the label: check the label column, scale the features, or try another k.",
            )
        )
    return found
