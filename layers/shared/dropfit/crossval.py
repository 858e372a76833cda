"""k (and the scaling) chosen by 5-fold cross-validation on the training rows, with numpy.

The search is scikit-learn's ``GridSearchCV`` over a ``scaler + KNeighbors`` pipeline, redone in
numpy (scikit-learn is far too big for a Lambda): the same folds (``StratifiedKFold(5)`` for a
classifier, ``KFold(5)`` for a regressor, neither shuffled), the scaler fitted on each fold's
training part only, Euclidean neighbours, a majority vote whose ties go to the smaller class
(the mean of the neighbours' labels for a regressor), the mean of the fold scores, and the first
best candidate in GridSearchCV's order (k, then scaling). The rows are the training rows in the
order ``train_test_split`` returns them, so on the same rows both searches choose alike.

Cost is bounded: at most :data:`MAX_ROWS` training rows take part (a uniform sample: the first of
the split's own shuffled order), so a search costs about 5 distance matrices of 200 x 800 per
scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]

FOLDS = 5
MAX_ROWS = 1000  # training rows the search looks at, at most (a uniform sample beyond)
K_CANDIDATES = tuple(range(1, 31))  # the stated range of k=auto: 1..30 (fewer if rows are few)
SCALES = ("none", "standard", "minmax")


@dataclass(frozen=True, slots=True)
class Search:
    """What the search found: the k curve of the chosen scaling, and the best of each scaling."""

    metric: str  # "accuracy" (higher is better) or "mse" (lower is better)
    candidates: list[int]
    scores: list[float]  # mean fold score of each candidate k, with the chosen scaling
    chosen_k: int
    scale: str
    scale_scores: dict[str, float]  # the best mean fold score of each scaling tried
    sampled_rows: int

    def k_search(self) -> dict[str, object]:
        """``metadata.json``'s ``k_search``: the curve of k, as the report shows it."""
        return {
            "candidates": self.candidates,
            "scores": self.scores,
            "metric": self.metric,
            "folds": FOLDS,
            "chosen": self.chosen_k,
            "sampled_rows": self.sampled_rows,
        }


def fold_of_each_row(labels: F64, classifier: bool) -> Ints:
    """The test fold of every row: ``StratifiedKFold(5)`` or ``KFold(5)``, unshuffled."""
    n = len(labels)
    if not classifier:
        sizes = np.full(FOLDS, n // FOLDS)
        sizes[: n % FOLDS] += 1
        return np.repeat(np.arange(FOLDS), sizes)
    # scikit-learn's allocation: classes numbered by first appearance, each class's rows dealt
    # to the folds in turn over the sorted labels, then given out in row order.
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    _, order = np.unique(first, return_inverse=True)
    encoded = order[inverse]
    n_classes = len(first)
    ordered = np.sort(encoded)
    allocation = np.asarray(
        [np.bincount(ordered[i::FOLDS], minlength=n_classes) for i in range(FOLDS)]
    )
    folds = np.empty(n, dtype=np.intp)
    for c in range(n_classes):
        folds[encoded == c] = np.arange(FOLDS).repeat(allocation[:, c])
    return folds


def fit_scaler(
    kind: str, features: F64, scaled: npt.NDArray[np.bool_] | None = None
) -> tuple[F64, F64]:
    """(offset, divisor) so that the scaled value is ``(x - offset) / divisor``.

    A constant feature gets divisor 1 (as scikit-learn does), so nothing is divided by zero;
    columns not ``scaled`` (one-hot inputs) keep offset 0 and divisor 1.
    """
    width = features.shape[1]
    if kind == "standard":
        offset, divisor = features.mean(axis=0), features.std(axis=0)
    elif kind == "minmax":
        offset = features.min(axis=0)
        divisor = features.max(axis=0) - offset
    else:
        return np.zeros(width), np.ones(width)
    divisor = np.where(divisor > 0, divisor, 1.0)
    if scaled is not None:
        offset, divisor = np.where(scaled, offset, 0.0), np.where(scaled, divisor, 1.0)
    return offset, divisor


def _neighbour_labels(train: F64, train_labels: F64, test: F64, k_max: int) -> F64:
    """The labels of each test row's k_max nearest training rows, nearest first."""
    distances = (
        np.einsum("ij,ij->i", test, test)[:, None]
        - 2.0 * test @ train.T
        + np.einsum("ij,ij->i", train, train)[None, :]
    )
    nearest = np.argpartition(distances, k_max - 1, axis=1)[:, :k_max]
    order = np.argsort(np.take_along_axis(distances, nearest, axis=1), axis=1, kind="stable")
    return train_labels[np.take_along_axis(nearest, order, axis=1)]


def _fold_scores(neighbours: F64, truth: F64, ks: Sequence[int], classifier: bool) -> F64:
    """The fold's score for each k (the first k neighbours of every row)."""
    if not classifier:
        means = np.cumsum(neighbours, axis=1) / np.arange(1, neighbours.shape[1] + 1)
        return np.array([np.mean((means[:, k - 1] - truth) ** 2) for k in ks])
    classes, codes = np.unique(neighbours, return_inverse=True)
    codes = codes.reshape(neighbours.shape)
    votes = np.zeros((len(truth), len(classes)))
    rows = np.arange(len(truth))
    wanted = set(ks)
    scores = {}
    for j in range(neighbours.shape[1]):
        votes[rows, codes[:, j]] += 1
        if j + 1 in wanted:
            # argmax takes the first best: ties go to the smaller class, as in scikit-learn
            scores[j + 1] = np.mean(classes[np.argmax(votes, axis=1)] == truth)
    return np.array([scores[k] for k in ks])


def search(
    features: F64,
    labels: F64,
    classifier: bool,
    ks: Sequence[int],
    scales: Sequence[str],
    *,
    scaled: npt.NDArray[np.bool_] | None = None,
) -> Search:
    """Every (k, scaling) scored by 5-fold cross-validation; the best one, with its k curve.

    ``features`` and ``labels`` are training rows in ``train_test_split``'s order (at most
    :data:`MAX_ROWS`); ``ks`` beyond what a fold's training part holds are left out. Only the
    ``scaled`` columns are scaled (all when None).
    """
    n = len(labels)
    folds = fold_of_each_row(labels, classifier)
    smallest_train = n - int(np.bincount(folds, minlength=FOLDS).max())
    candidates = [k for k in ks if k <= smallest_train]
    if not candidates:
        candidates = [1]
    k_max = max(candidates)
    table = np.zeros((len(scales), len(candidates)))
    used = [fold for fold in range(FOLDS) if (folds == fold).any()]
    for s, scale in enumerate(scales):
        for fold in used:
            test = folds == fold
            train_x, test_x = features[~test], features[test]
            offset, divisor = fit_scaler(scale, train_x, scaled)
            neighbours = _neighbour_labels(
                (train_x - offset) / divisor, labels[~test], (test_x - offset) / divisor, k_max
            )
            table[s] += _fold_scores(neighbours, labels[test], candidates, classifier)
    table /= len(used)
    # GridSearchCV's order: k outer, scaling inner; the first best wins.
    ordered = table.T.ravel()
    best = int(np.argmax(ordered) if classifier else np.argmin(ordered))
    k_index, s_index = divmod(best, len(scales))
    pick = np.max if classifier else np.min
    return Search(
        metric="accuracy" if classifier else "mse",
        candidates=list(candidates),
        scores=[float(v) for v in table[s_index]],
        chosen_k=candidates[k_index],
        scale=scales[s_index],
        scale_scores={scale: float(pick(table[s])) for s, scale in enumerate(scales)},
        sampled_rows=n,
    )
