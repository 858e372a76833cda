"""Pass 2 of the fast engine (:mod:`dropfit.plaincsv`): every row to its channel, with numpy.

Each piece of a block of lines is cut into its train and test rows at once: one pass over the
bytes tells every byte its fate (dropped with the label, train or test), the label moves to the
front as its class index (or its text, for a regression target), and every number keeps the
upload's own text. Nothing is parsed or re-formatted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dropfit.csvscan import Encoding, Router, Scan, numeric_class_name, to_floats
from dropfit.csvsource import Source, open_validated
from dropfit.parallel import ordered_map
from dropfit.plaincsv import data_blocks
from dropfit.plainrows import Fields, fields, numbered_pieces

_TRAIN, _TEST = 1, 2
_COMMA = 44
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def can_write(found: Scan, encoding: Encoding) -> bool:
    """Whether pass 2 can stay plain (a classifier needs every row's label id)."""
    if not found.plain:
        return False
    if encoding.classes is None:
        return not found.label.whitespace
    return found.label_ids is not None


def write(
    source: Source, found: Scan, encoding: Encoding, router: Router, workers: int = 1
) -> None:
    """Pass 2 of a plain upload: every row to its channel, label first, numbers as uploaded.

    Pieces are cut on ``workers`` threads; the router gets them in upload order.
    """
    assert found.piece_rows is not None
    cut = _Cutter(found, encoding, router.is_test)
    with open_validated(source) as reader:
        _, blocks = data_blocks(reader)
        for train, train_ends, test in ordered_map(cut, cut.numbered(blocks), workers):
            router.write(train, train_ends, test)
    if cut.pieces != len(found.piece_rows):
        raise RuntimeError("the upload changed between the two passes")


class _Cutter:
    """Cuts one piece into its train and test rows (pure: pieces are cut on several threads)."""

    def __init__(self, found: Scan, encoding: Encoding, is_test: npt.NDArray[np.bool_]) -> None:
        self._n_columns = len(found.header)
        self._piece_rows = found.piece_rows or []
        self._encoding = encoding
        self._prefixes = _code_table(found, encoding) if encoding.classes is not None else None
        self._ids = found.label_ids
        self._is_test = is_test
        self.pieces = 0  # handed out so far

    def numbered(self, blocks: Iterator[bytes]) -> Iterator[tuple[U8, int, int]]:
        """(piece, its first row, its row count) of every piece, as pass 1 counted them."""
        row0 = 0
        for _, piece in numbered_pieces(blocks):
            if self.pieces == len(self._piece_rows):
                raise RuntimeError("the upload changed between the two passes")
            n_rows = self._piece_rows[self.pieces]
            self.pieces += 1
            yield piece, row0, n_rows
            row0 += n_rows

    def __call__(self, item: tuple[U8, int, int]) -> tuple[memoryview, I64, memoryview]:
        arr, a, n_rows = item
        lines = fields(arr, self._n_columns)
        if lines is None or lines.n_rows != n_rows:
            raise RuntimeError("the upload changed between the two passes")
        b = a + n_rows
        piece = lines.piece
        rows = _Rows.of(lines, self._encoding)
        is_test = self._is_test[a:b]
        # One pass over the bytes tells every byte its fate: dropped, train or test.
        fate = rows.fates(is_test)
        outputs = []
        for split, selected in ((_TRAIN, ~is_test), (_TEST, is_test)):
            if self._prefixes is not None:
                assert self._ids is not None
                prefix = self._prefixes.select(self._ids[a:b][selected])
            else:
                prefix = rows.label_text(piece, selected)
            kept = piece[fate == split]
            outputs.append(rows.emit(kept, selected, *prefix))
        (train, train_ends), (test, _) = outputs
        return train, train_ends, test


@dataclass(frozen=True, slots=True)
class _Prefixes:
    """The class index text (and comma) of every label id, as a padded byte table."""

    table: U8
    lengths: I64

    def select(self, ids: npt.NDArray[np.uint16]) -> tuple[U8, I64]:
        lengths = self.lengths[ids]
        rows = self.table[ids]
        if self.lengths.min() == self.table.shape[1]:  # no padding to leave out
            return rows.ravel(), lengths
        used = np.arange(self.table.shape[1]) < lengths[:, None]
        return rows[used], lengths


def _code_table(found: Scan, encoding: Encoding) -> _Prefixes:
    assert encoding.classes is not None
    separator = "," if encoding.label_index > 0 else ""
    texts = sorted(found.label.text_ids, key=found.label.text_ids.__getitem__)
    if encoding.numeric_classes:
        names = [numeric_class_name(v) for v in to_floats(np.array(texts, dtype=object))]
    else:
        names = texts
    codes = [f"{encoding.classes[name]}{separator}".encode() for name in names]
    width = max(len(c) for c in codes)
    table = np.zeros((len(codes), width), dtype=np.uint8)
    for i, code in enumerate(codes):
        table[i, : len(code)] = np.frombuffer(code, np.uint8)
    return _Prefixes(table, np.array([len(c) for c in codes], dtype=np.int64))


@dataclass(frozen=True, slots=True)
class _Rows:
    """Where each row of a block starts and ends, and which bytes are its label (to move)."""

    starts: I64
    ends: I64  # one past the row's line feed
    label_from: I64
    label_to: I64
    drop_from: I64  # the label field and the comma that goes with it
    drop_to: I64
    label_first: bool

    @classmethod
    def of(cls, lines: Fields, encoding: Encoding) -> _Rows:
        label, last = encoding.label_index, lines.n_columns - 1
        starts, ends = lines.start(0), lines.edges[:, -1]
        label_from, label_to = lines.start(label), lines.end(label)
        if label == 0:  # the rest of the row goes on from its first comma
            return cls(starts, ends, starts, label_to, starts, label_to, True)
        if label == last:  # the comma before the label goes with it, the line feed stays
            return cls(starts, ends, label_from, label_to, label_from - 1, label_to, False)
        return cls(starts, ends, label_from, label_to, label_from, label_to + 1, False)

    def label_text(self, arr: U8, selected: npt.NDArray[np.bool_]) -> tuple[U8, I64]:
        """The selected rows' label text, each with the comma to put after it."""
        before, length = self.label_from - self.starts, self.label_to - self.label_from
        segments = np.stack([before, length, self.ends - self.label_to], axis=1)
        flags = np.zeros(segments.shape, dtype=bool)
        flags[:, 1] = selected
        text, lengths = arr[np.repeat(flags.ravel(), segments.ravel())], segments[selected, 1]
        if self.label_first:
            return text, lengths
        return np.insert(text, np.cumsum(lengths), _COMMA), lengths + 1

    def fates(self, is_test: npt.NDArray[np.bool_]) -> U8:
        """Per byte: 0 for the label field (dropped), else the split of its row."""
        segments = np.stack(
            [self.drop_from - self.starts, self.drop_to - self.drop_from, self.ends - self.drop_to],
            axis=1,
        )
        fate = np.empty(segments.shape, dtype=np.uint8)
        fate[:, 0] = fate[:, 2] = np.where(is_test, _TEST, _TRAIN)
        fate[:, 1] = 0
        return np.repeat(fate.ravel(), segments.ravel())

    def emit(
        self, kept: U8, selected: npt.NDArray[np.bool_], prefix: U8, prefix_lengths: I64
    ) -> tuple[memoryview, I64]:
        """The selected rows' kept bytes, each row behind its prefix; and the rows' ends."""
        lengths = ((self.ends - self.starts) - (self.drop_to - self.drop_from))[selected]
        row_ends = np.cumsum(lengths + prefix_lengths)
        row_starts = row_ends - lengths - prefix_lengths
        # np.insert, without its sort: byte j of a row's prefix goes to its row start + j
        if len(prefix_lengths) and prefix_lengths.min() == prefix_lengths.max():
            at = (row_starts[:, None] + np.arange(int(prefix_lengths[0]))).ravel()
        else:
            prefix_starts = np.cumsum(prefix_lengths) - prefix_lengths
            at = np.repeat(row_starts - prefix_starts, prefix_lengths) + np.arange(len(prefix))
        out = np.empty(len(kept) + len(prefix), dtype=np.uint8)
        keep = np.ones(len(out), dtype=bool)
        keep[at] = False
        out[at] = prefix
        out[keep] = kept
        return out.data, row_ends
