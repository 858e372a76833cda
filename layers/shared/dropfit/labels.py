"""Label maps: class names <-> the integers the k-NN algorithm trains on.

Pure Python (no numpy): the predict function uses it on every request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def _numeric_key(name: str) -> tuple[int, float, str]:
    try:
        value = float(name)
    except ValueError:
        return (1, 0.0, name)
    if math.isnan(value):
        return (1, 0.0, name)  # "nan" is text here: NaN keys would make the order arbitrary
    return (0, value, name)


def sorted_classes(names: Iterable[str]) -> list[str]:
    """Classes in the order they get their ints: numbers numerically, then text in code-point order.

    The tutorial's iris classes come out setosa=0, versicolor=1, virginica=2.
    """
    return sorted(set(names), key=_numeric_key)


@dataclass(frozen=True, slots=True)
class LabelMap:
    classes: tuple[str, ...]

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelMap:
        return cls(tuple(sorted_classes(labels)))

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def decode(self, predicted: float) -> str:
        """The class name for the algorithm's ``predicted_label`` (a float such as 2.0)."""
        if not math.isfinite(predicted) or predicted != int(predicted):
            raise ValueError(f"predicted_label {predicted!r} is not a class index")
        i = int(predicted)
        if not 0 <= i < len(self.classes):
            raise ValueError(
                f"predicted_label {i} is outside the label map (0..{len(self.classes) - 1})"
            )
        return self.classes[i]

    def decode_many(self, predicted: Sequence[float]) -> list[str]:
        # a dict lookup per answer; decode (and its message) only for what is not a class index
        by_value = {float(i): name for i, name in enumerate(self.classes)}
        return [by_value[p] if p in by_value else self.decode(p) for p in predicted]
