"""The quality gate: whether a trained run is good enough to serve, judged on its test split.

A run's score is a classifier's test accuracy, or a regressor's test R² (1 - MSE / variance of
the test labels, as scikit-learn's ``r2_score``; the formatter records the variance). A run is
REJECTED, and the model keeps serving what it serves, when its score is below ``min_score`` (the
upload's option, else the stack's ``DefaultMinScore``), or when it is worse than the serving
run's score by more than the stack's ``ReplaceMargin``, unless the upload says ``force=true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACCURACY, R2 = "accuracy", "r2"


@dataclass(frozen=True, slots=True)
class Score:
    metric: str  # ACCURACY or R2 (higher is better for both)
    value: float


def score_of(
    predictor_type: str | None,
    metrics: Mapping[str, float] | None,
    dataset: Mapping[str, Any] | None,
) -> Score | None:
    """A run's test score from its metrics (None: the job reported none to judge by)."""
    metrics = metrics or {}
    if predictor_type == "classifier":
        accuracy = metrics.get("test:accuracy")
        return None if accuracy is None else Score(ACCURACY, float(accuracy))
    mse = metrics.get("test:mse")
    variance = (dataset or {}).get("test_label_variance")
    if mse is None or variance is None:
        return None
    mse, variance = float(mse), float(variance)
    if variance > 0:
        return Score(R2, 1.0 - mse / variance)
    # Every test label equal: scikit-learn's convention (1 if perfect, else 0).
    return Score(R2, 1.0 if mse == 0 else 0.0)


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    reason: str | None
    figures: dict[str, Any]  # stored on the run as ``gate``


def judge(
    score: Score | None,
    *,
    min_score: float | None,
    serving: tuple[str, Score] | None,
    margin: float | None,
    force: bool,
) -> Verdict:
    """Whether the run may replace what the model serves, with the figures that decided it."""
    figures: dict[str, Any] = {"min_score": min_score, "margin": margin, "force": force}
    if score is None:
        return Verdict(True, None, figures)
    figures |= {"metric": score.metric, "score": score.value}
    if min_score is not None and score.value < min_score:
        return Verdict(
            False,
            f"Test {score.metric} {score.value:.4f} is below min_score {min_score}; the model "
            "keeps serving what it serves. Improve the data or its options (scale=auto, k=auto), "
            "or lower min_score.",
            figures,
        )
    if serving is not None and serving[1].metric == score.metric:
        run, best = serving
        figures |= {"serving_run": run, "serving_score": best.value}
        if margin is not None and score.value < best.value - margin and not force:
            return Verdict(
                False,
                f"Test {score.metric} {score.value:.4f} is worse than the serving run {run}'s "
                f"{best.value:.4f} by more than the margin {margin}; the model keeps serving it. "
                "Upload with force=true to replace it anyway.",
                figures,
            )
    return Verdict(True, None, figures)
