"""Train/test split, exactly as scikit-learn's ``train_test_split(shuffle=True, random_state=0)``.

scikit-learn is far too big for a Lambda, so this re-implements its ShuffleSplit arithmetic with
numpy: ``n_test = ceil(test_fraction * n)``, ``n_train = n - n_test``, and one permutation of a
``RandomState(random_state)`` whose first ``n_test`` entries are the test rows. A test compares
it with scikit-learn itself.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from dropfit.errors import InvalidUpload

RANDOM_STATE = 0


def split_sizes(n_rows: int, test_fraction: float) -> tuple[int, int]:
    """(n_train, n_test) for ``n_rows``; refuses splits that would leave either side empty."""
    n_test = math.ceil(test_fraction * n_rows)
    n_train = n_rows - n_test
    if n_train < 1 or n_test < 1:
        raise InvalidUpload(
            f"Too few rows to split: {n_rows} data row(s) with test_fraction={test_fraction} "
            f"leave {n_train} for training and {n_test} for testing; both need at least 1 row."
        )
    return n_train, n_test


def split_indices(
    n_rows: int, test_fraction: float, random_state: int = RANDOM_STATE
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row indices (train, test) in the order scikit-learn returns them."""
    n_train, n_test = split_sizes(n_rows, test_fraction)
    permutation = np.random.RandomState(random_state).permutation(n_rows)
    return permutation[n_test : n_test + n_train], permutation[:n_test]


def _shuffled(n_rows: int, random_state: int) -> npt.NDArray[np.signedinteger[Any]]:
    """The split's permutation, drawn into an int32 array (``shuffle`` draws the same numbers
    whatever the dtype): 4 bytes per row."""
    order: npt.NDArray[np.signedinteger[Any]] = np.arange(
        n_rows, dtype=np.int32 if n_rows < 2**31 else np.int64
    )
    np.random.RandomState(random_state).shuffle(order)
    return order


def train_order_head(
    n_rows: int, test_fraction: float, size: int, random_state: int = RANDOM_STATE
) -> npt.NDArray[np.int64]:
    """The first ``size`` training rows in the order scikit-learn returns them.

    A uniform sample of the training rows (the permutation is random), already in
    ``train_test_split``'s order: what cross-validation looks at.
    """
    _, n_test = split_sizes(n_rows, test_fraction)
    return _shuffled(n_rows, random_state)[n_test : n_test + size].astype(np.int64)


def holdout_mask(
    n_rows: int, test_fraction: float, random_state: int = RANDOM_STATE
) -> npt.NDArray[np.bool_]:
    """Which rows :func:`split_indices` puts in the test set, one byte per row.

    The same permutation, drawn into an int32 array (``shuffle`` draws the same numbers whatever
    the dtype), which lives only while the mask is made: about 5 bytes per row at the peak.
    """
    _, n_test = split_sizes(n_rows, test_fraction)
    order = _shuffled(n_rows, random_state)
    mask = np.zeros(n_rows, dtype=bool)
    mask[order[:n_test]] = True
    return mask
