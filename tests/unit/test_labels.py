"""Label maps: class names <-> the integers k-NN trains on."""

from __future__ import annotations

import itertools
import math

import pytest
from dropfit.labels import LabelMap, sorted_classes
from hypothesis import given, settings
from hypothesis import strategies as st


def test_iris_classes_get_the_tutorials_integers() -> None:
    label_map = LabelMap.from_labels(["virginica", "setosa", "versicolor", "setosa"])

    assert label_map.classes == ("setosa", "versicolor", "virginica")
    assert label_map.index() == {"setosa": 0, "versicolor": 1, "virginica": 2}


def test_numbers_sort_numerically_before_text() -> None:
    assert sorted_classes(["10", "2", "b", "-1", "A", "2.5"]) == ["-1", "2", "2.5", "10", "A", "b"]


def test_nan_named_classes_sort_as_text_so_the_order_is_deterministic() -> None:
    names = ["nan", "3", "NaN", "1", "b", "inf"]

    orders = {tuple(sorted_classes(p)) for p in itertools.permutations(names)}

    assert orders == {("1", "3", "inf", "NaN", "b", "nan")}


def test_decode_maps_the_algorithms_float_back_to_the_class() -> None:
    label_map = LabelMap(("setosa", "versicolor", "virginica"))

    assert label_map.decode(2.0) == "virginica"
    assert label_map.decode_many([0.0, 1.0, 0.0]) == ["setosa", "versicolor", "setosa"]


@pytest.mark.parametrize(
    ("predicted", "message"),
    [
        (1.5, "predicted_label 1.5 is not a class index"),
        (math.nan, "predicted_label nan is not a class index"),
        (math.inf, "predicted_label inf is not a class index"),
        (3.0, "predicted_label 3 is outside the label map (0..2)"),
        (-1.0, "predicted_label -1 is outside the label map (0..2)"),
    ],
)
def test_decode_refuses_what_is_not_a_class_index(predicted: float, message: str) -> None:
    label_map = LabelMap(("setosa", "versicolor", "virginica"))

    with pytest.raises(ValueError) as error:
        label_map.decode(predicted)

    assert str(error.value) == message


NAMES = st.one_of(
    st.text(max_size=8), st.sampled_from(["nan", "NaN", "inf", "-inf", "1", "10", "2.5", "1_0"])
)


@settings(max_examples=200, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=30))
def test_a_label_map_is_a_bijection_onto_0_to_n(names: list[str]) -> None:
    label_map = LabelMap.from_labels(names)
    index = label_map.index()

    assert set(label_map.classes) == set(names)
    assert sorted(index.values()) == list(range(len(set(names))))
    assert all(label_map.decode(float(i)) == name for name, i in index.items())


@settings(max_examples=100, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=30))
def test_the_order_does_not_depend_on_the_order_of_the_rows(names: list[str]) -> None:
    assert sorted_classes(names) == sorted_classes(list(reversed(names)))
