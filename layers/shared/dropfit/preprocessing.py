"""The transform fitted on a run's training rows, as stored with it, applied to one raw instance.

Pure Python: the predict function applies it to every instance before InvokeEndpoint, with the
run whose variant answers. The formatter applies the same arithmetic with numpy to every row it
writes (``(x - offset) / divisor`` in float64, then the float32 k-NN reads, as text:
:func:`float32_text` here, :mod:`dropfit.floattext` there), so for every test row the vector
predict sends is, text for text, the row the test channel holds (a test proves it).

The model's input, in order: each feature of the upload in its column order, a number as one
value, a text column (``encode=onehot``) as one 0/1 value per category seen in the training rows,
in sorted order; a category never seen there is all zeros, and the answer says so.
"""

from __future__ import annotations

import math
import struct
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NUMBER, CATEGORY = "number", "category"
Raw = float | str | None  # a parsed instance value: a number, a category, or missing


@dataclass(frozen=True, slots=True)
class Column:
    """One feature of the upload and how it becomes model inputs."""

    name: str
    kind: str = NUMBER  # NUMBER or CATEGORY
    offset: float = 0.0  # numbers: (x - offset) / divisor
    divisor: float = 1.0
    median: float | None = None  # numbers: what a missing value becomes (missing=median)
    categories: list[str] = field(default_factory=list)  # CATEGORY: one input each, sorted

    def to_json(self) -> dict[str, Any]:
        if self.kind == CATEGORY:
            return {"name": self.name, "kind": CATEGORY, "categories": self.categories}
        shown: dict[str, Any] = {
            "name": self.name,
            "kind": NUMBER,
            "offset": self.offset,
            "divisor": self.divisor,
        }
        if self.median is not None:
            shown["median"] = self.median
        return shown

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Column:
        if item["kind"] == CATEGORY:
            return cls(item["name"], CATEGORY, categories=list(item["categories"]))
        return cls(
            item["name"],
            NUMBER,
            offset=float(item["offset"]),
            divisor=float(item["divisor"]),
            median=None if item.get("median") is None else float(item["median"]),
        )


@dataclass(frozen=True, slots=True)
class Notes:
    """What the transform had to do to an instance, for the answer to say."""

    unseen: dict[str, str] = field(default_factory=dict)  # feature -> category not in training
    imputed: list[str] = field(default_factory=list)  # features that were missing

    def shown(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        if self.unseen:
            shown["unseen_categories"] = self.unseen
        if self.imputed:
            shown["imputed"] = self.imputed
        return shown


@dataclass(frozen=True, slots=True)
class Preprocessing:
    """``metadata.json``'s ``preprocessing``: every choice, and the figures fitted to make it."""

    scale: str = "none"  # the method used: none, standard or minmax
    scale_chosen_by: str = "option"  # or "cross-validation" (scale=auto)
    scale_scores: dict[str, float] | None = None  # scale=auto: the best CV score of each
    encode: str = "refuse"
    missing: str = "refuse"
    rows_dropped: int = 0  # missing=drop
    values_filled: int = 0  # missing=median: feature values filled in (all rows)
    columns: list[Column] = field(default_factory=list)

    @property
    def width(self) -> int:
        """How many numbers the model reads per instance (its feature_dim)."""
        return sum(len(c.categories) if c.kind == CATEGORY else 1 for c in self.columns)

    def categorical(self) -> list[bool]:
        return [c.kind == CATEGORY for c in self.columns]

    def fillable(self) -> list[bool]:
        """Which features may be missing at predict time: a number with a fitted median, or a
        category when missing=median (all zeros, as an unseen one)."""
        return [
            c.median is not None if c.kind == NUMBER else self.missing == "median"
            for c in self.columns
        ]

    def to_json(self) -> dict[str, Any]:
        scale: dict[str, Any] = {"method": self.scale, "chosen_by": self.scale_chosen_by}
        if self.scale_scores is not None:
            scale["scores"] = self.scale_scores
        return {
            "scale": scale,
            "encode": {"method": self.encode},
            "missing": {
                "method": self.missing,
                "rows_dropped": self.rows_dropped,
                "values_filled": self.values_filled,
            },
            "columns": [c.to_json() for c in self.columns],
        }

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> Preprocessing:
        scale, missing = item["scale"], item["missing"]
        return cls(
            scale=scale["method"],
            scale_chosen_by=scale["chosen_by"],
            scale_scores=scale.get("scores"),
            encode=item["encode"]["method"],
            missing=missing["method"],
            rows_dropped=int(missing.get("rows_dropped", 0)),
            values_filled=int(missing.get("values_filled", 0)),
            columns=[Column.from_json(c) for c in item["columns"]],
        )

    def transform(self, instance: Sequence[Raw]) -> tuple[list[float], Notes]:
        """One instance's raw values (feature order) -> the vector the model reads.

        A missing value (None) is only ever passed for a column with a median: the request
        parser refuses it otherwise.
        """
        vector: list[float] = []
        notes = Notes()
        for column, value in zip(self.columns, instance, strict=True):
            if column.kind == CATEGORY:
                if value is None:
                    notes.imputed.append(column.name)
                elif str(value) not in column.categories:
                    notes.unseen[column.name] = str(value)
                vector.extend(1.0 if value == c else 0.0 for c in column.categories)
                continue
            if value is None:
                if column.median is None:
                    raise ValueError(f"{column.name} has no median to fill a missing value")
                notes.imputed.append(column.name)
                number = column.median
            else:
                number = float(value)
            vector.append((number - column.offset) / column.divisor)
        return vector, notes


# --- transformed numbers as text (the channels and predict's requests) --------------------------

E_MIN, E_MAX = -46, 39  # float32 spans about 1.4e-45 .. 3.4e38
# Both implementations use these same float64 values (never recomputed differently).
POW10 = [10.0**e for e in range(E_MIN, E_MAX + 1)]  # 10**e: where exponent e starts
SCALE = [10.0 ** (8 - e) for e in range(E_MIN, E_MAX + 1)]  # 10**(8 - e): 9 digits
EXACT_INTEGER = 2.0**24  # every integer below it is a float32
DIGITS9 = 10**9


def float32_text(value: float) -> str:
    """One transformed value as the channels hold it: the float32 k-NN reads (``repr`` when
    it is an integer below 2**24, else 9 significant digits, ``-1.2345678e-01``); see
    :mod:`dropfit.floattext`, which writes the same text for whole blocks."""
    try:
        w = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        w = math.copysign(math.inf, value)
    if not math.isfinite(w) or (abs(w) < EXACT_INTEGER and w == int(w)):
        return repr(w)
    m = abs(w)
    e = bisect_right(POW10, m) - 1
    digits = round(m * SCALE[e])
    if digits >= DIGITS9:
        e += 1
        digits = round(m * SCALE[e])
    text = str(digits)
    fraction = text[1:].rstrip("0")
    exponent = e + E_MIN
    return (
        f"{'-' if w < 0 else ''}{text[0]}{'.' + fraction if fraction else ''}"
        f"e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    )
