"""The quality gate: a run below min_score, or worse than the serving run by more than the
margin, is not deployed (unless forced)."""

from __future__ import annotations

import pytest
from dropfit.quality_gate import ACCURACY, R2, Score, judge, score_of


def test_a_classifier_is_scored_by_its_test_accuracy() -> None:
    assert score_of("classifier", {"test:accuracy": 0.9}, None) == Score(ACCURACY, 0.9)


def test_a_regressor_is_scored_by_its_test_r2() -> None:
    score = score_of("regressor", {"test:mse": 25.0}, {"test_label_variance": 100.0})

    assert score == Score(R2, 0.75)


@pytest.mark.parametrize(("mse", "r2"), [(0.0, 1.0), (4.0, 0.0)])
def test_constant_test_labels_follow_scikit_learns_r2(mse: float, r2: float) -> None:
    assert score_of("regressor", {"test:mse": mse}, {"test_label_variance": 0.0}) == Score(R2, r2)


def test_no_test_metric_means_nothing_to_judge() -> None:
    assert score_of("classifier", {"train:progress": 100.0}, None) is None
    assert score_of("regressor", {"test:mse": 1.0}, {}) is None
    verdict = judge(None, min_score=0.9, serving=None, margin=0.05, force=False)
    assert verdict.passed


def test_a_score_below_min_score_is_rejected_with_its_figures() -> None:
    verdict = judge(Score(ACCURACY, 0.8), min_score=0.9, serving=None, margin=None, force=True)

    assert not verdict.passed
    assert verdict.reason == (
        "Test accuracy 0.8000 is below min_score 0.9; the model keeps serving what it serves. "
        "Improve the data or its options (scale=auto, k=auto), or lower min_score."
    )
    assert verdict.figures == {
        "min_score": 0.9,
        "margin": None,
        "force": True,
        "metric": "accuracy",
        "score": 0.8,
    }


def test_a_score_worse_than_the_serving_runs_by_more_than_the_margin_is_rejected() -> None:
    serving = ("dropfit-iris-aaaaaaaaaaaa", Score(ACCURACY, 0.97))

    verdict = judge(
        Score(ACCURACY, 0.90), min_score=None, serving=serving, margin=0.05, force=False
    )

    assert not verdict.passed
    assert verdict.reason == (
        "Test accuracy 0.9000 is worse than the serving run dropfit-iris-aaaaaaaaaaaa's 0.9700 by "
        "more than the margin 0.05; the model keeps serving it. Upload with force=true to "
        "replace it anyway."
    )
    assert verdict.figures["serving_score"] == 0.97


def test_force_replaces_a_better_serving_run() -> None:
    serving = ("dropfit-iris-aaaaaaaaaaaa", Score(ACCURACY, 0.97))

    assert judge(
        Score(ACCURACY, 0.5), min_score=None, serving=serving, margin=0.05, force=True
    ).passed


@pytest.mark.parametrize(("score", "margin"), [(0.93, 0.05), (0.5, None), (0.99, 0.0)])
def test_within_the_margin_or_without_one_the_run_passes(
    score: float, margin: float | None
) -> None:
    serving = ("dropfit-iris-aaaaaaaaaaaa", Score(ACCURACY, 0.97))

    assert judge(
        Score(ACCURACY, score), min_score=None, serving=serving, margin=margin, force=False
    ).passed


def test_scores_of_different_kinds_are_not_compared() -> None:
    serving = ("dropfit-iris-aaaaaaaaaaaa", Score(ACCURACY, 0.97))

    assert judge(Score(R2, 0.1), min_score=None, serving=serving, margin=0.05, force=False).passed
