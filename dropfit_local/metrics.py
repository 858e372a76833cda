"""Evaluation metrics the built-in k-NN reports on the test channel (numpy only)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true, dtype=np.float64).ravel()
    pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} values but y_pred has {pred.size}")
    if true.size == 0:
        raise ValueError("cannot score an empty set of predictions")
    return true, pred


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of predictions equal to the true label."""
    true, pred = _pair(y_true, y_pred)
    return float(np.mean(true == pred))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Unweighted mean of the per-class F1 scores.

    Classes are the union of the true and predicted labels, as in scikit-learn's
    ``f1_score(average="macro")``; a class that is predicted but never occurs (or occurs but
    is never predicted) scores 0.
    """
    true, pred = _pair(y_true, y_pred)
    classes, true_idx = np.unique(np.concatenate([true, pred]), return_inverse=True)
    t, p = true_idx[: true.size], true_idx[true.size :]
    n = classes.size
    tp = np.bincount(t[t == p], minlength=n).astype(np.float64)
    support = np.bincount(t, minlength=n)
    predicted = np.bincount(p, minlength=n)
    # F1 = 2tp / (2tp + fp + fn) = 2tp / (support + predicted).
    denominator = (support + predicted).astype(np.float64)
    f1 = np.divide(2.0 * tp, denominator, out=np.zeros(n), where=denominator > 0)
    return float(f1.mean())


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error."""
    true, pred = _pair(y_true, y_pred)
    return float(np.mean((true - pred) ** 2))
