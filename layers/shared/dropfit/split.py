"""Train/test split, exactly as scikit-learn's ``train_test_split(shuffle=True, random_state=0)``.

scikit-learn is far too big for a Lambda, so this re-implements its ShuffleSplit arithmetic with
numpy: ``n_test = ceil(test_fraction * n)``, ``n_train = n - n_test``, and one permutation of a
``RandomState(random_state)`` whose first ``n_test`` entries are the test rows. A test compares
it with scikit-learn itself.
"""

from __future__ import annotations

import math

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
