"""What the formatter learns from the rows it writes: cross-validation's sample, the test labels.

A :class:`ChannelTap` watches the channels being written (pass 2, either engine) and keeps
exactly what the training job will read: the training rows cross-validation looks at (the first
:data:`crossval.MAX_ROWS` of the split's shuffled order, a uniform sample) and, for a regressor,
the mean and variance of the test labels (the quality gate's R² needs them). Memory: 4 bytes per
row while the sample's positions are found, then the sampled lines; for a regressor, 8 bytes per
test row (exact sums need every label: the figures must not depend on how rows were batched).
"""

from __future__ import annotations

import io
import math

import numpy as np
import numpy.typing as npt

from dropfit import crossval
from dropfit.split import train_order_head

F64 = npt.NDArray[np.float64]


class ChannelTap:
    def __init__(
        self,
        is_test: npt.NDArray[np.bool_],
        test_fraction: float,
        sample: bool,
        test_labels: bool,
    ) -> None:
        self._wanted = np.zeros(0, dtype=np.int64)  # training ordinals to keep, ascending
        self._rank = np.zeros(0, dtype=np.int64)  # each one's place in the split's order
        if sample:
            rows = train_order_head(len(is_test), test_fraction, crossval.MAX_ROWS)
            tests_before = np.cumsum(is_test, dtype=np.int32 if len(is_test) < 2**31 else None)
            ordinals = rows - tests_before[rows]  # a training row counts no test row of its own
            del tests_before
            self._rank = np.argsort(ordinals)
            self._wanted = ordinals[self._rank]
        self._lines: list[bytes] = [b""] * len(self._wanted)
        self._test_labels = test_labels
        self._labels: list[F64] = []

    def train(self, ordinal0: int, rows: bytes | memoryview, ends: npt.NDArray[np.int64]) -> None:
        lo, hi = np.searchsorted(self._wanted, [ordinal0, ordinal0 + len(ends)])
        view = memoryview(rows)
        for at in range(int(lo), int(hi)):
            i = int(self._wanted[at]) - ordinal0
            start = int(ends[i - 1]) if i else 0
            self._lines[at] = bytes(view[start : int(ends[i])])

    def test(self, rows: bytes | memoryview) -> None:
        if not self._test_labels:
            return
        lines = bytes(rows).splitlines()
        self._labels.append(np.array([float(line.split(b",", 1)[0]) for line in lines]))

    def test_label_stats(self) -> dict[str, float]:
        """Mean and (population) variance of the test labels: R² = 1 - MSE / variance."""
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0)
        n = max(1, len(labels))
        mean = math.fsum(labels) / n
        return {"mean": mean, "variance": math.fsum((labels - mean) ** 2) / n}

    def sample(self) -> tuple[F64, F64]:
        """(features, labels) of the sampled training rows, as the channel holds them, in the
        split's order."""
        ordered = [b""] * len(self._lines)
        for line, rank in zip(self._lines, self._rank, strict=True):
            ordered[int(rank)] = line if line.endswith(b"\n") else line + b"\n"
        table = np.loadtxt(io.BytesIO(b"".join(ordered)), delimiter=",", ndmin=2)
        return table[:, 1:], table[:, 0]
