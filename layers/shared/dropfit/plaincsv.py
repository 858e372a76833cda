"""A fast engine for plain CSV files, exact where it answers; it defers to the reference engine.

Plain means: comma-separated lines of fields without spaces around the numbers, quotes only
around whole fields that hold no comma, quote or line break (R's and Excel's exports of iris),
``\\n`` or ``\\r\\n`` line ends, blank lines anywhere. Once such a block of lines is cleaned
(quotes and carriage returns removed) its fields are those :mod:`dropfit.csvscan` reads, and numpy
finds them all at once in its bytes (:mod:`dropfit.plainrows`), so:

- pass 1 checks that every line has the header's number of fields and that every feature is a
  plain decimal (``-1.5``, ``12``): a number :mod:`dropfit.csvscan` reads as a finite float32.
  Numbers written otherwise (``1e-5``) go through pandas' float parser, whose numbers it reads
  with the same values. Per row it keeps only a 2-byte label id: the distinct labels are the
  only texts ever turned into Python objects;
- pass 2 (:mod:`dropfit.plainwrite`) cuts each block into train and test rows with numpy,
  moving the label to the front as its class index and keeping the upload's own text of every
  number (nothing is re-formatted, which is what makes the naive pandas path slow).

Anything else (a problem to report, spaces, quoted commas, infinities, too many classes, a label
that is not where the first rows said) raises :class:`NotPlain` before any output is written, and
the caller starts over with :mod:`dropfit.csvscan`, which decides exactly what to say.
"""

from __future__ import annotations

import functools
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from dropfit.csvscan import (
    READ_OPTIONS,
    ColumnStats,
    LabelStats,
    Scan,
    distinct,
    first_rows,
    guess_label,
    parse_header,
    to_floats,
)
from dropfit.csvsource import BLOCK_BYTES, BOM, Source, ValidatedReader, line_blocks, open_validated
from dropfit.errors import InvalidUpload
from dropfit.options import FLOAT32_MAX
from dropfit.parallel import ordered_map
from dropfit.plainrows import (
    Fields,
    blank_labels,
    fields,
    label_codes,
    numbered_pieces,
    padded,
    plain_numbers,
)

_PROBE_BYTES = 65536  # rows enough to tell which column is the label
_TAB, _NEWLINE, _SPACE, _COMMA, _QUOTE = 9, 10, 32, 44, 34
U8 = npt.NDArray[np.uint8]


class NotPlain(Exception):
    """The upload needs the reference engine (it may be valid, or not)."""


@dataclass(frozen=True, slots=True)
class _Layout:
    header: list[str]
    label: int
    label_as_number: bool  # parse the label as float64 (a regression target)


# --- blocks -------------------------------------------------------------------------------------


def _clean(block: bytes) -> bytes:
    """CRLF -> LF and simple quotes removed; NotPlain for anything else.

    Blank lines stay: pandas skips them, and so does :func:`dropfit.plainrows.fields`.
    """
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            raise NotPlain  # a lone CR ends a line for pandas
    if b"\x00" in block or b"\x0b" in block or b"\x0c" in block:
        raise NotPlain
    if b'"' in block:
        block = _unquote(block)
    return block


def _unquote(block: bytes) -> bytes:
    """Remove quotes around whole fields that hold no comma, line feed or quote."""
    arr = np.frombuffer(block, np.uint8)
    quotes = np.flatnonzero(arr == _QUOTE)
    if len(quotes) % 2:
        raise NotPlain
    opens, closes = quotes[0::2], quotes[1::2]
    before = np.where(opens > 0, arr[np.maximum(opens - 1, 0)], _NEWLINE)
    after = arr[np.minimum(closes + 1, len(arr) - 1)]
    if not (np.isin(before, (_COMMA, _NEWLINE)).all() and np.isin(after, (_COMMA, _NEWLINE)).all()):
        raise NotPlain
    separators = np.flatnonzero((arr == _COMMA) | (arr == _NEWLINE))
    if (np.searchsorted(separators, opens) != np.searchsorted(separators, closes)).any():
        raise NotPlain
    keep = np.ones(len(arr), dtype=bool)
    keep[quotes] = False
    return arr[keep].tobytes()


def data_blocks(reader: ValidatedReader) -> tuple[str, Iterator[bytes]]:
    """(the header line, the cleaned blocks of data lines after it)."""
    blocks = line_blocks(reader, BLOCK_BYTES)
    first = next(blocks, b"")
    if first.startswith(BOM):
        first = first[len(BOM) :]
    first = first.lstrip(b"\r\n")
    while not first:  # blank lines before the header fill whole blocks
        following = next(blocks, None)
        if following is None:
            raise NotPlain
        first = following.lstrip(b"\r\n")
    end = first.index(b"\n")
    line = first[:end].removesuffix(b"\r")
    if not line.strip():
        raise NotPlain
    if b'"' in line:
        _unquote(line + b"\n")  # a header of simple fields ends at its first line feed
    rest = _clean(first[end + 1 :])

    def data() -> Iterator[bytes]:
        if rest:
            yield rest
        for block in blocks:
            cleaned = _clean(block)
            if cleaned:
                yield cleaned

    return line.decode("utf-8"), data()


def _parse_header(line: str) -> list[str]:
    try:
        return parse_header(io.StringIO(line))
    except (InvalidUpload, ValueError, IndexError):
        raise NotPlain from None  # the reference engine says what is wrong with it


# --- pass 1 -----------------------------------------------------------------------------------


def scan(
    source: Source, requested: str | None, predictor_type: str | None, workers: int = 1
) -> Scan:
    """Pass 1 of a plain upload; raises NotPlain when it is not one (or has a problem).

    Its pieces are read on ``workers`` threads (:func:`dropfit.parallel.ordered_map`) and what
    they hold is gathered in order, as one thread would.
    """
    with open_validated(source) as reader:
        line, blocks = data_blocks(reader)
        header = _parse_header(line)
        first = next(blocks, b"")
        label = LabelStats()
        layout = _probe(first, header, requested, predictor_type, label)
        columns = [ColumnStats() for _ in header]
        rows = _Pass1(columns[layout.label], label)
        every_piece = numbered_pieces(itertools.chain((first,), blocks))
        for piece in ordered_map(functools.partial(_read_piece, layout), every_piece, workers):
            rows.add(piece)
        rows.end_block()
        if rows.n_rows == 0:
            raise NotPlain
        label.whitespace = rows.label_spaces > 0
        size = reader.offset
    return Scan(
        header,
        rows.n_rows,
        columns,
        layout.label,
        label,
        size,
        plain=True,
        label_ids=rows.label_ids(),
        piece_rows=rows.piece_rows,
    )


def _probe(
    block: bytes,
    header: list[str],
    requested: str | None,
    predictor_type: str | None,
    label: LabelStats,
) -> _Layout:
    """Which column the first rows say is the label, and whether it is a regression target."""
    cut = block.rfind(b"\n", 0, _PROBE_BYTES) + 1 or len(block)
    try:
        frame = pd.read_csv(
            io.BytesIO(block[:cut]), header=None, names=range(len(header)), **READ_OPTIONS
        )
    except (ValueError, TypeError):
        raise NotPlain from None
    values = [to_floats(frame[j].str.strip().to_numpy(object)) for j in range(len(header))]
    index = guess_label(header, [not np.isnan(v).any() for v in values], requested)
    if index is None:
        raise NotPlain
    target = values[index]
    fractional = bool(np.isfinite(target).all() and (target != np.round(target)).any())
    as_number = predictor_type == "regressor" or (predictor_type is None and fractional)
    # Settled for a regression target: it is one because its first rows are fractional, or
    # because predictor_type says so (then nobody asks).
    label.any_fractional = as_number and fractional
    return _Layout(header, index, as_number)


@dataclass(frozen=True, slots=True)
class _Piece:
    """What one piece of a block holds: its rows, and each row's label (for a classifier)."""

    block: int
    n_rows: int
    codes: npt.NDArray[np.intp] | None  # each row's index into texts
    texts: list[str]  # the piece's distinct label texts, as uploaded, in order of appearance


def _read_piece(layout: _Layout, numbered: tuple[int, U8]) -> _Piece:
    """Check one piece (NotPlain unless every line has the header's fields, every feature a
    number); find its labels. Pure: the pieces of an upload are read on several threads."""
    block, arr = numbered
    found = fields(arr, len(layout.header))
    if found is None:
        raise NotPlain  # ragged rows, or quotes around a comma: the reference says which
    if found.n_rows == 0:
        return _Piece(block, 0, None, [])  # blank lines only
    data = padded(found.piece)
    codes: npt.NDArray[np.intp] | None = None
    texts: list[str] = []
    label: int | None = None
    if not layout.label_as_number:  # else a number like the features
        label = layout.label
        starts, ends = found.start(label), found.end(label)
        if (ends <= starts).any():
            raise NotPlain  # an empty label: a missing value
        labels = label_codes(data, starts, ends)
        if labels is None:
            raise NotPlain
        codes, texts = labels
        blank_labels(data, starts, ends)
    if not plain_numbers(data, found, label):
        _check_numbers(found, data, label)
    return _Piece(block, found.n_rows, codes, texts)


class _Pass1:
    """What pass 1 learns from the data rows, piece after piece, gathered block by block."""

    def __init__(self, label_column: ColumnStats, label: LabelStats) -> None:
        self._label_column = label_column
        self._label = label
        self._ids: list[npt.NDArray[np.uint16]] | None = []
        self.n_rows = 0
        self.label_spaces = 0
        self.piece_rows: list[int] = []
        self._block = 0
        self._block_row0 = 0
        self._texts: dict[str, int] = {}  # the block's distinct label texts, as uploaded
        self._codes: list[npt.NDArray[np.intp]] = []

    def label_ids(self) -> npt.NDArray[np.uint16] | None:
        """Each row's label id; None for a regression target, or too many distinct labels."""
        return np.concatenate(self._ids) if self._ids else None

    def add(self, piece: _Piece) -> None:
        if piece.block != self._block:
            self.end_block()
            self._block = piece.block
        self.piece_rows.append(piece.n_rows)
        self.n_rows += piece.n_rows
        if piece.codes is not None:
            texts = self._texts
            ids = np.array([texts.setdefault(t, len(texts)) for t in piece.texts], np.intp)
            self._codes.append(ids[piece.codes])

    def end_block(self) -> None:
        if self._codes:
            self._add_labels(list(self._texts), np.concatenate(self._codes), self._block_row0)
        self._texts, self._codes = {}, []
        self._block_row0 = self.n_rows

    def _add_labels(self, categories: list[str], codes: npt.NDArray[np.intp], row0: int) -> None:
        """Each row's label id, from the label texts of a block as uploaded (categories)."""
        counts = np.bincount(codes, minlength=len(categories))
        spaces = [c.count(" ") + c.count("\t") for c in categories]
        self.label_spaces += int(np.dot(spaces, counts))
        # Texts that differ only by surrounding spaces are one label.
        texts, of_category = distinct(np.array([c.strip() for c in categories], dtype=object))
        if any(not t for t in texts):
            raise NotPlain  # an empty label: a missing value
        row_codes = of_category[codes]
        text_counts = np.bincount(row_codes, minlength=len(texts))
        firsts = first_rows(row_codes, len(texts), row0)
        values = to_floats(texts)
        self._label_column.add(values, list(texts), firsts)
        ids = self._label.add(list(texts), values, text_counts, firsts)
        if ids is None or self._ids is None:
            self._ids = None
        else:
            self._ids.append(np.asarray(ids, dtype=np.uint16)[row_codes])


def _check_numbers(found: Fields, data: U8, label: int | None) -> None:
    """The careful way, for numbers that are not plain decimals (``1e-5``): pandas' float
    parser, whose numbers :mod:`dropfit.csvscan` accepts, with the same values.

    ``data`` is the piece, its label (if given) blanked; NotPlain unless every other field is a
    finite number within float32.
    """
    body = data[: len(found.piece)]
    if (body == _SPACE).any() or (body == _TAB).any():
        raise NotPlain  # spaces around numbers: the reference engine strips them
    columns = [j for j in range(found.n_columns) if j != label]
    try:
        frame = pd.read_csv(
            io.BytesIO(found.piece.tobytes()),
            header=None,
            names=range(found.n_columns),
            usecols=columns,
            dtype=np.float64,
            na_filter=False,
        )
    except (ValueError, TypeError, OverflowError):
        raise NotPlain from None
    if len(frame) != found.n_rows:
        raise NotPlain
    if not (np.abs(frame.to_numpy()) <= FLOAT32_MAX).all():
        raise NotPlain  # NaN, infinite or beyond float32: the reference engine says which
