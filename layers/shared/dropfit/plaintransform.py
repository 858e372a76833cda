"""The fast engine for transformed channels of plain uploads: numpy over the bytes, no pandas.

An upload the plain engine reads (:mod:`dropfit.plaincsv`: every feature a number, no empty
cell) with ``scale`` (or ``encode``/``missing``, which then change nothing) takes three passes:

1. :func:`dropfit.plaincsv.scan`, as for untransformed uploads (validation, rows, classes);
2. fit: every training row's features read with :func:`dropfit.plainnumbers.parse`, each
   column's moments (:class:`dropfit.preprocessed.Moments`, in the same groups as the
   reference) and the cross-validation sample;
3. write: every row read again, transformed with the same float64 arithmetic as predict, and
   written by :mod:`dropfit.floattext`, label first, to its channel.

The figures and the bytes written are those of the reference engine
(:func:`dropfit.preprocessed.reference_plan`); a property test compares them. Anything else
(text features, empty cells, a label the first rows misjudged) goes to the reference engine.
Memory: a block of 8 MiB and the numbers of one piece of it (~1 MiB of text) at a time, plus
the split mask and label ids (3 bytes per row) and the cross-validation sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from dropfit import crossval, plaincsv, plainnumbers, plainwrite
from dropfit.csvscan import Encoding, Router, Scan, choose_label, numeric_class_name, to_floats
from dropfit.csvsource import Source, open_validated
from dropfit.dataset import DatasetPlan, TrainLayout, decide, train_parts
from dropfit.options import KChoice, UploadOptions
from dropfit.plainrows import Fields, fields, pieces
from dropfit.preprocessed import Moments, finish, write_rows
from dropfit.preprocessing import NUMBER, Column, Preprocessing
from dropfit.split import holdout_mask, train_order_head

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
_COMMA = 44


def plan(
    source: Source, options: UploadOptions, default_k: KChoice, layout: TrainLayout
) -> DatasetPlan | None:
    """Passes 1 and 2 of a plain upload; None when the reference engine must take it."""
    try:
        found = plaincsv.scan(source, options.label, options.predictor_type)
    except plaincsv.NotPlain:
        return None
    label = choose_label(found.header, [c.numeric for c in found.columns], options.label)
    if label != found.label_index:
        return None
    metadata, encoding, k_auto = decide(found, label, options, default_k)
    if not plainwrite.can_write(found, encoding):
        return None
    is_test = holdout_mask(found.n_rows, options.test_fraction)
    rows = _Reader(source, found, encoding)
    moments, sample = _fit(rows, is_test, options.test_fraction)
    spec = Preprocessing(
        encode=options.encode,
        missing=options.missing,
        columns=[Column(found.header[j], NUMBER) for j in encoding.feature_indices],
    )
    for m in moments:
        m.close()
    spec, metadata = finish(spec, moments, sample, metadata, options=options, k_auto=k_auto)
    offsets = np.array([c.offset for c in spec.columns])
    divisors = np.array([c.divisor for c in spec.columns])

    def write(router: Router) -> None:
        for row0, piece, lines in rows.pieces():
            vectors = (rows.features(piece, lines) - offsets) / divisors
            prefix, keep = rows.prefixes(piece, lines, row0)
            write_rows(router, row0, prefix, keep, vectors)

    parts = train_parts(found.size, metadata, layout)
    return DatasetPlan(metadata, parts, "plain-transform", write)


def _fit(
    rows: _Reader, is_test: npt.NDArray[np.bool_], test_fraction: float
) -> tuple[list[Moments], tuple[F64, F64]]:
    """Pass 2: each feature's moments over the training rows, and the cross-validation sample
    (unscaled features, labels as numbers) in the split's order."""
    wanted = train_order_head(len(is_test), test_fraction, crossval.MAX_ROWS)
    rank = np.argsort(wanted)
    ordered = wanted[rank]
    d = len(rows.encoding.feature_indices)
    moments = [Moments() for _ in range(d)]
    features = np.empty((len(wanted), d))
    labels = np.empty(len(wanted))
    for row0, piece, lines in rows.pieces():
        row1 = row0 + lines.n_rows
        train = rows.features(piece, lines, ~is_test[row0:row1]).T.copy()
        for c, m in enumerate(moments):
            m.add(train[c])
        lo, hi = np.searchsorted(ordered, [row0, row1])
        if hi > lo:
            at = ordered[lo:hi] - row0
            features[rank[lo:hi]] = rows.features(piece, lines, at)
            labels[rank[lo:hi]] = rows.label_values(piece, lines, row0)[at]
    return moments, (features, labels)


class _Reader:
    """The pieces of a plain upload, and their features, labels and label prefixes."""

    def __init__(self, source: Source, found: Scan, encoding: Encoding) -> None:
        self.source, self.found, self.encoding = source, found, encoding
        self._features = np.array(encoding.feature_indices)
        self._classes: F64 | None = None
        self._prefixes: tuple[U8, npt.NDArray[np.bool_]] | None = None
        if encoding.classes is not None:
            classes = encoding.classes
            texts = sorted(found.label.text_ids, key=found.label.text_ids.__getitem__)
            if encoding.numeric_classes:
                names = [numeric_class_name(v) for v in to_floats(np.array(texts, dtype=object))]
            else:
                names = texts
            index = [classes[name] for name in names]
            self._classes = np.array(index, dtype=np.float64)
            codes = np.array([f"{i}," for i in index], dtype=np.bytes_)
            table = codes.view(np.uint8).reshape(len(codes), -1)
            self._prefixes = (table, table != 0)

    def pieces(self) -> Iterator[tuple[int, U8, Fields]]:
        """(first row, padded piece, its fields) of every piece, in order."""
        n_columns = len(self.found.header)
        row0 = 0
        with open_validated(self.source) as reader:
            _, blocks = plaincsv.data_blocks(reader)
            for block in blocks:
                arr = np.frombuffer(block, np.uint8)
                for start, end in pieces(block):
                    lines = fields(arr[start:end], n_columns)
                    if lines is None or row0 + lines.n_rows > self.found.n_rows:
                        raise RuntimeError("the upload changed between the passes")
                    if lines.n_rows:
                        yield row0, plainnumbers.padded(lines.piece), lines
                    row0 += lines.n_rows
        if row0 != self.found.n_rows:
            raise RuntimeError("the upload changed between the passes")

    def features(self, piece: U8, lines: Fields, rows: npt.NDArray[Any] | None = None) -> F64:
        """(rows, features) as float() reads them: every line's, or the chosen ones'."""
        edges = lines.edges if rows is None else lines.edges[rows]
        starts = edges[:, self._features]
        return plainnumbers.parse(piece, starts, edges[:, self._features + 1] - 1)

    def label_values(self, piece: U8, lines: Fields, row0: int) -> F64:
        """Each row's label as the channel's number (class index, or the target)."""
        label = self.encoding.label_index
        if self._classes is None:
            return plainnumbers.parse(piece, lines.start(label), lines.end(label))
        ids = self.found.label_ids
        assert ids is not None
        return self._classes[ids[row0 : row0 + lines.n_rows]]

    def prefixes(self, piece: U8, lines: Fields, row0: int) -> tuple[U8, npt.NDArray[np.bool_]]:
        """Each row's label text and a comma, as (rows, width) bytes and which of them count."""
        if self._prefixes is not None:
            ids = self.found.label_ids
            assert ids is not None
            table, keep = self._prefixes
            chosen = ids[row0 : row0 + lines.n_rows]
            return table[chosen], keep[chosen]
        # a regression target: its text as uploaded (a plain number)
        label = self.encoding.label_index
        starts, ends = lines.start(label), lines.end(label)
        lengths = ends - starts
        width = int(lengths.max()) + 1
        at = np.arange(width)
        prefix = piece[np.minimum(starts[:, None] + at + plainnumbers.PAD, len(piece) - 1)]
        prefix[at == lengths[:, None]] = _COMMA
        return prefix, at <= lengths[:, None]
