"""The train/test split is scikit-learn's ``train_test_split(random_state=0)``, re-implemented."""

from __future__ import annotations

import numpy as np
import pytest
from dropfit.errors import InvalidUpload
from dropfit.split import RANDOM_STATE, holdout_mask, split_indices, split_sizes
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split


def sklearn_split(n_rows: int, test_fraction: float) -> tuple[list[int], list[int]]:
    train, test = train_test_split(
        np.arange(n_rows), test_size=test_fraction, random_state=RANDOM_STATE, shuffle=True
    )
    return train.tolist(), test.tolist()


@pytest.mark.parametrize("n_rows", [2, 3, 4, 5, 7, 10, 33, 100, 150, 1000])
@pytest.mark.parametrize("test_fraction", [0.1, 0.2, 0.25, 0.3, 1 / 3, 0.5, 0.75, 0.9])
def test_split_equals_sklearn(n_rows: int, test_fraction: float) -> None:
    try:
        expected = sklearn_split(n_rows, test_fraction)
    except ValueError:
        # scikit-learn refuses splits that leave a side empty; so must we
        with pytest.raises(InvalidUpload):
            split_indices(n_rows, test_fraction)
        return

    train, test = split_indices(n_rows, test_fraction)

    assert (train.tolist(), test.tolist()) == expected


@settings(max_examples=150, deadline=None)
@given(
    n_rows=st.integers(min_value=2, max_value=3000),
    test_fraction=st.floats(min_value=0.001, max_value=0.999),
)
def test_split_equals_sklearn_for_any_size_and_fraction(n_rows: int, test_fraction: float) -> None:
    n_test = int(np.ceil(test_fraction * n_rows))
    if n_test < 1 or n_test >= n_rows:
        with pytest.raises(InvalidUpload):
            split_indices(n_rows, test_fraction)
        return

    train, test = split_indices(n_rows, test_fraction)

    assert (train.tolist(), test.tolist()) == sklearn_split(n_rows, test_fraction)


def test_split_is_a_partition_of_the_rows() -> None:
    train, test = split_indices(57, 0.3)

    assert sorted([*train.tolist(), *test.tolist()]) == list(range(57))


def test_iris_splits_112_train_38_test() -> None:
    assert split_sizes(150, 0.25) == (112, 38)
    train, test = split_indices(150, 0.25)
    assert (len(train), len(test)) == (112, 38)


def test_too_few_rows_names_the_counts() -> None:
    with pytest.raises(InvalidUpload) as error:
        split_indices(1, 0.25)

    assert error.value.message == (
        "Too few rows to split: 1 data row(s) with test_fraction=0.25 leave 0 for training and 1 "
        "for testing; both need at least 1 row."
    )


def test_a_fraction_that_leaves_no_training_row_is_refused() -> None:
    with pytest.raises(InvalidUpload, match=r"leave 0 for training and 3 for testing"):
        split_sizes(3, 0.9)


@pytest.mark.parametrize("n_rows", [2, 3, 150, 1001, 65_537])
@pytest.mark.parametrize("test_fraction", [0.25, 0.1, 0.5])
def test_the_holdout_mask_marks_the_test_rows_of_the_split(
    n_rows: int, test_fraction: float
) -> None:
    train, test = split_indices(n_rows, test_fraction)

    mask = holdout_mask(n_rows, test_fraction)

    assert np.array_equal(np.flatnonzero(mask), np.sort(test))
    assert np.array_equal(np.flatnonzero(~mask), np.sort(train))
