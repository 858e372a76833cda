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
Pieces (~1 MiB of text) are read on every usable CPU (:func:`dropfit.parallel.ordered_map`),
in order. Memory: a few blocks of 8 MiB and the numbers of a few pieces at a time, plus the
split mask and label ids (3 bytes per row) and the cross-validation sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from dropfit import crossval, plaincsv, plainnumbers, plainwrite
from dropfit.csvscan import Encoding, Router, Scan, choose_label, numeric_class_name, to_floats
from dropfit.csvsource import Source, open_validated
from dropfit.dataset import DatasetPlan, TrainLayout, decide, train_parts
from dropfit.heap import keep_freed_memory
from dropfit.options import AUTO, KChoice, UploadOptions
from dropfit.parallel import ordered_map, usable_cpus
from dropfit.plainrows import Fields, fields, numbered_pieces
from dropfit.preprocessed import Moments, finish, rows_text_split
from dropfit.preprocessing import NUMBER, Column, Preprocessing
from dropfit.split import holdout_mask, train_order_head

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
_COMMA = 44


def plan(
    source: Source, options: UploadOptions, default_k: KChoice, layout: TrainLayout
) -> DatasetPlan | None:
    """Passes 1 and 2 of a plain upload; None when the reference engine must take it."""
    keep_freed_memory()  # every piece's arrays: a third of numpy's time would be page faults
    workers = usable_cpus()
    try:
        found = plaincsv.scan(source, options.label, options.predictor_type, workers)
    except plaincsv.NotPlain:
        return None
    label = choose_label(found.header, [c.numeric for c in found.columns], options.label)
    if label != found.label_index:
        return None
    metadata, encoding, k_auto = decide(found, label, options, default_k)
    if not plainwrite.can_write(found, encoding):
        return None
    is_test = holdout_mask(found.n_rows, options.test_fraction)
    rows = _Reader(source, found, encoding, workers)
    searched = options.scale == AUTO or k_auto  # cross-validation needs its sample
    moments, sample = _fit(rows, is_test, options.test_fraction if searched else None)
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

    def cut(item: _Item) -> tuple[memoryview, npt.NDArray[np.int64], memoryview]:
        piece, lines, row0 = rows.read(item)
        vectors = (rows.features(piece, lines) - offsets) / divisors
        prefix, keep = rows.prefixes(piece, lines, row0)
        return rows_text_split(is_test[row0 : row0 + lines.n_rows], prefix, keep, vectors)

    def write(router: Router) -> None:
        for train, train_ends, test in rows.each(cut):
            router.write(train, train_ends, test)

    parts = train_parts(found.size, metadata, layout)
    return DatasetPlan(metadata, parts, "plain-transform", write)


def _fit(
    rows: _Reader, is_test: npt.NDArray[np.bool_], test_fraction: float | None
) -> tuple[list[Moments], tuple[F64, F64]]:
    """Pass 2: each feature's moments over the training rows, and (given the test fraction)
    the cross-validation sample (unscaled features, labels as numbers) in the split's order."""
    wanted = (
        np.zeros(0, np.int64)
        if test_fraction is None
        else train_order_head(len(is_test), test_fraction, crossval.MAX_ROWS)
    )
    rank = np.argsort(wanted)
    ordered = wanted[rank]
    d = len(rows.encoding.feature_indices)
    moments = [Moments() for _ in range(d)]
    features = np.empty((len(wanted), d))
    labels = np.empty(len(wanted))

    def read(item: _Item) -> tuple[F64, int, int, F64, F64]:
        piece, lines, row0 = rows.read(item)
        row1 = row0 + lines.n_rows
        train = rows.features(piece, lines, ~is_test[row0:row1]).T.copy()
        lo, hi = np.searchsorted(ordered, [row0, row1])
        at = ordered[lo:hi] - row0
        return (
            train,
            int(lo),
            int(hi),
            rows.features(piece, lines, at),
            rows.label_values(piece, lines, row0)[at],
        )

    for train, lo, hi, sampled, sampled_labels in rows.each(read):
        for c, m in enumerate(moments):
            m.add(train[c])
        features[rank[lo:hi]] = sampled
        labels[rank[lo:hi]] = sampled_labels
    return moments, (features, labels)


_Item = tuple[U8, int, int]  # a piece of whole lines, its first row, its row count


class _Reader:
    """The pieces of a plain upload, and their features, labels and label prefixes."""

    def __init__(self, source: Source, found: Scan, encoding: Encoding, workers: int) -> None:
        self.source, self.found, self.encoding, self.workers = source, found, encoding, workers
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

    def each[R](self, work: Callable[[_Item], R]) -> Iterator[R]:
        """``work`` of every piece (on the usable CPUs), in upload order."""
        piece_rows = self.found.piece_rows
        assert piece_rows is not None
        with open_validated(self.source) as reader:
            _, blocks = plaincsv.data_blocks(reader)
            counted = 0

            def numbered() -> Iterator[_Item]:
                nonlocal counted
                row0 = 0
                for _, piece in numbered_pieces(blocks):
                    if counted == len(piece_rows):
                        raise RuntimeError("the upload changed between the passes")
                    n_rows = piece_rows[counted]
                    counted += 1
                    yield piece, row0, n_rows
                    row0 += n_rows

            yield from ordered_map(work, numbered(), self.workers)
        if counted != len(piece_rows):
            raise RuntimeError("the upload changed between the passes")

    def read(self, item: _Item) -> tuple[U8, Fields, int]:
        """(padded piece, its fields, its first row)."""
        arr, row0, n_rows = item
        lines = fields(arr, len(self.found.header))
        if lines is None or lines.n_rows != n_rows:
            raise RuntimeError("the upload changed between the passes")
        return plainnumbers.padded(lines.piece), lines, row0

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
