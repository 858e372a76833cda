"""A fast engine for plain CSV files, exact where it answers; it defers to the reference engine.

Plain means: comma-separated lines of fields without spaces around the numbers, quotes only
around whole fields that hold no comma, quote or line break (R's and Excel's exports of iris),
``\\n`` or ``\\r\\n`` line ends, blank lines anywhere. For such a file pandas' C parser sees the
same fields as :mod:`dropfit.csvscan` does, so:

- pass 1 streams the rows through pandas' chunked reader (the upload's own bytes when they hold
  no quote nor carriage return, else cleaned blocks of whole lines) with the features as floats
  (a number pandas reads is a number :mod:`dropfit.csvscan` accepts, with the same value) and
  the label as a category, and keeps per row only a 2-byte label id (values and texts are never
  turned into Python objects);
- pass 2 cuts each block into train and test rows with numpy, moving the label to the front as
  its class index and keeping the upload's own text of every number (already plain decimal:
  nothing is re-formatted, which is what makes the naive pandas path slow).

Anything else (a problem to report, spaces, quoted commas, infinities, too many classes, a label
that is not where the first rows said) raises :class:`NotPlain` before any output is written, and
the caller starts over with :mod:`dropfit.csvscan`, which decides exactly what to say.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from dropfit.csvscan import (
    READ_OPTIONS,
    ColumnStats,
    Encoding,
    LabelStats,
    Router,
    Scan,
    check_header,
    distinct,
    first_rows,
    guess_label,
    numeric_class_name,
    to_floats,
)
from dropfit.csvsource import BLOCK_BYTES, BOM, Source, ValidatedReader, line_blocks, open_validated
from dropfit.errors import InvalidUpload
from dropfit.options import FLOAT32_MAX

_PROBE_BYTES = 65536  # rows enough to tell which column is the label
_PIECE_BYTES = 1024 * 1024
_TRAIN, _TEST = 1, 2
_BLANK_LINES = re.compile(rb"\n\n+")
_COMMA, _NEWLINE, _QUOTE = 44, 10, 34
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


class NotPlain(Exception):
    """The upload needs the reference engine (it may be valid, or not)."""


@dataclass(frozen=True, slots=True)
class _Layout:
    header: list[str]
    label: int
    label_as_number: bool  # parse the label as float64 (a regression target)
    row_bytes: int  # about, from the first rows: pandas reads this many rows at a time


# --- blocks -------------------------------------------------------------------------------------


def _clean(block: bytes) -> bytes:
    """CRLF -> LF and simple quotes removed; NotPlain for anything else.

    Blank lines stay: pandas skips them, and pass 2 skips the empty lines it finds.
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


def _data_blocks(reader: ValidatedReader) -> tuple[str, Iterator[bytes]]:
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
        frame = pd.read_csv(io.StringIO(line), header=None, nrows=1, **READ_OPTIONS)
        return check_header([str(name) for name in frame.iloc[0].tolist()])
    except (InvalidUpload, ValueError, IndexError):
        raise NotPlain from None


# --- pass 1 -----------------------------------------------------------------------------------


class _Dirty(Exception):
    """The upload has quotes or carriage returns: read it again in cleaned blocks of lines."""


class _DataStream:
    """The data rows after the header, as pandas' chunked reader reads them.

    Raw chunks of the upload when there is nothing to clean (no line alignment needed), or
    cleaned blocks of whole lines; counts the spaces and tabs on the way. Each read returns a
    whole chunk, whatever size pandas asks for: its C reader takes what it is given, and a
    chunk handed over as is is a chunk not copied.
    """

    def __init__(self, first: bytes, rest: Iterator[bytes]) -> None:
        self._next: bytes | None = first
        self._rest = rest
        self.spaces = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._next if self._next is not None else next(self._rest, b"")
        self._next = None
        self.spaces += _spaces(data)
        return data


def _raw_chunks(reader: ValidatedReader) -> Iterator[bytes]:
    while chunk := reader.read(BLOCK_BYTES):
        if _needs_cleaning(chunk):
            raise _Dirty
        yield chunk


def _needs_cleaning(data: bytes) -> bool:
    return any(c in data for c in (b'"', b"\r", b"\x00", b"\x0b", b"\x0c"))


def _raw_data(reader: ValidatedReader) -> tuple[str, bytes, Iterator[bytes]]:
    """(header line, first data bytes, the following raw chunks) of an upload with nothing to
    clean; _Dirty at the first quote or carriage return."""
    first = reader.read(BLOCK_BYTES)
    if _needs_cleaning(first):
        raise _Dirty
    chunks = _raw_chunks(reader)
    first = first.removeprefix(BOM).lstrip(b"\n")
    end = first.find(b"\n")
    if not first or end < 0:
        raise _Dirty  # blank lines or a header longer than a block: the careful way
    line, data = first[:end], first[end + 1 :]
    if not line.strip():
        raise NotPlain
    while b"\n" not in data[:_PROBE_BYTES] and (following := next(chunks, None)) is not None:
        data += following  # the probe wants whole rows
    return line.decode("utf-8"), data, chunks


def scan(source: Source, requested: str | None, predictor_type: str | None) -> Scan:
    """Pass 1 of a plain upload; raises NotPlain when it is not one (or has a problem)."""
    try:
        return _scan(source, requested, predictor_type, clean=False)
    except _Dirty:
        return _scan(source, requested, predictor_type, clean=True)


def _scan(source: Source, requested: str | None, predictor_type: str | None, clean: bool) -> Scan:
    with open_validated(source) as reader:
        if clean:
            line, blocks = _data_blocks(reader)
            first = next(blocks, b"")
        else:
            line, first, blocks = _raw_data(reader)
        header = _parse_header(line)
        label = LabelStats()
        layout = _probe(first, header, requested, predictor_type, label)
        stream = _DataStream(first, blocks)
        columns = [ColumnStats() for _ in header]
        ids: list[npt.NDArray[np.uint16]] | None = []
        label_spaces, n_rows = 0, 0
        for frame in _frames(stream, layout):
            row_ids, spaces = _scan_frame(frame, layout, n_rows, columns[layout.label], label)
            ids = None if ids is None or row_ids is None else [*ids, row_ids]
            label_spaces += spaces
            n_rows += len(frame)
        if n_rows == 0 or stream.spaces != label_spaces:
            raise NotPlain  # no rows; or spaces around numbers or in blank-looking rows
        label.whitespace = stream.spaces > 0
        size = reader.offset
    label_ids = np.concatenate(ids) if ids and not layout.label_as_number else None
    return Scan(header, n_rows, columns, layout.label, label, size, True, label_ids)


def _frames(stream: _DataStream, layout: _Layout) -> Iterator[pd.DataFrame]:
    n = len(layout.header)
    dtypes: dict[int, object] = {j: np.float64 for j in range(n)}
    dtypes[layout.label] = np.float64 if layout.label_as_number else "category"
    try:
        with pd.read_csv(
            stream,
            header=None,
            names=range(n),
            dtype=dtypes,
            na_filter=False,
            chunksize=max(1000, BLOCK_BYTES // layout.row_bytes),
        ) as frames:
            for frame in frames:
                if not isinstance(frame.index, pd.RangeIndex) or len(frame.columns) != n:
                    raise NotPlain
                yield frame
    except (ValueError, TypeError, OverflowError):
        raise NotPlain from None


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
    label.any_fractional = as_number and fractional
    return _Layout(header, index, as_number, max(1, cut // max(1, len(frame))))


def _spaces(data: bytes) -> int:
    # `in` is a memchr, ten times faster than count: most blocks have no space at all
    return (data.count(b" ") if b" " in data else 0) + (data.count(b"\t") if b"\t" in data else 0)


def _scan_frame(
    frame: pd.DataFrame, layout: _Layout, row0: int, label_column: ColumnStats, label: LabelStats
) -> tuple[npt.NDArray[np.uint16] | None, int]:
    """(each row's label id, the spaces and tabs in its label texts) of a chunk of rows."""
    for j in range(len(layout.header)):
        if j != layout.label and not (np.abs(frame[j].to_numpy()) <= FLOAT32_MAX).all():
            raise NotPlain  # NaN, infinite or beyond float32: the reference engine says which
    column = frame[layout.label]
    if layout.label_as_number:
        values = column.to_numpy(np.float64)
        if not (np.abs(values) <= FLOAT32_MAX).all():
            raise NotPlain
        if (values != np.round(values)).any():
            label.any_fractional = True
        return None, 0

    categories = [str(c) for c in column.cat.categories]
    codes = column.cat.codes.to_numpy()
    if len(codes) and codes.min() < 0:
        raise NotPlain
    counts = np.bincount(codes, minlength=len(categories))
    spaces = int(np.dot([c.count(" ") + c.count("\t") for c in categories], counts))
    # Categories that differ only by surrounding spaces are one label.
    texts, of_category = distinct(np.array([c.strip() for c in categories], dtype=object))
    if any(not t for t in texts):
        raise NotPlain  # an empty label: a missing value
    row_codes = of_category[codes]
    text_counts = np.bincount(row_codes, minlength=len(texts))
    firsts = first_rows(row_codes, len(texts), row0)
    values = to_floats(texts)
    label_column.add(values, list(texts), firsts)
    ids = label.add(list(texts), values, text_counts, firsts)
    if ids is None:
        return None, spaces
    return np.asarray(ids, dtype=np.uint16)[row_codes], spaces


# --- pass 2 -----------------------------------------------------------------------------------


def can_write(found: Scan, encoding: Encoding) -> bool:
    """Whether pass 2 can stay plain (a classifier needs every row's label id)."""
    if not found.plain:
        return False
    if encoding.classes is None:
        return not found.label.whitespace
    return found.label_ids is not None


def write(source: Source, found: Scan, encoding: Encoding, router: Router) -> None:
    """Pass 2 of a plain upload: every row to its channel, label first, numbers as uploaded."""
    n_columns = len(found.header)
    prefixes = _code_table(found, encoding) if encoding.classes is not None else None
    ids = found.label_ids
    with open_validated(source) as reader:
        _, blocks = _data_blocks(reader)
        row0 = 0
        for block in blocks:
            arr = np.frombuffer(block, np.uint8)
            starts, ends = _lines(arr)
            if (ends - starts == 1).any():  # blank lines, which pandas skipped
                arr = np.frombuffer(_BLANK_LINES.sub(b"\n", block).lstrip(b"\n"), np.uint8)
                starts, ends = _lines(arr)
            n = len(starts)
            if row0 + n > found.n_rows:
                raise RuntimeError("the upload changed between the two passes")
            # numpy's passes over the bytes run faster on pieces that stay in the CPU cache
            step = max(1, n * _PIECE_BYTES // max(1, len(arr)))
            for a in range(0, n, step):
                b = min(n, a + step)
                low, high = int(starts[a]), int(ends[b - 1])
                piece = arr[low:high]
                rows = _Rows.of(piece, starts[a:b] - low, ends[a:b] - low, n_columns, encoding)
                is_test = router.is_test[row0 + a : row0 + b]
                # One pass over the bytes tells every byte its fate: dropped, train or test.
                fate = rows.fates(is_test)
                outputs = []
                for split, selected in ((_TRAIN, ~is_test), (_TEST, is_test)):
                    if prefixes is not None:
                        assert ids is not None
                        prefix = prefixes.select(ids[row0 + a : row0 + b][selected])
                    else:
                        prefix = rows.label_text(piece, selected)
                    kept = piece[fate == split]
                    outputs.append(rows.emit(kept, selected, *prefix))
                (train, train_ends), (test, _) = outputs
                router.write(train, train_ends, test)
            row0 += n
    if row0 != found.n_rows:
        raise RuntimeError("the upload changed between the two passes")


def _lines(arr: U8) -> tuple[I64, I64]:
    """Start and end (one past the line feed) of each line."""
    newlines = np.flatnonzero(arr == _NEWLINE)
    starts = np.empty(len(newlines), dtype=np.int64)
    starts[:1] = 0
    starts[1:] = newlines[:-1] + 1
    return starts, newlines + 1


@dataclass(frozen=True, slots=True)
class _Prefixes:
    """The class index text (and comma) of every label id, as a padded byte table."""

    table: U8
    lengths: I64

    def select(self, ids: npt.NDArray[np.uint16]) -> tuple[U8, I64]:
        lengths = self.lengths[ids]
        rows = self.table[ids]
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
    def of(cls, arr: U8, starts: I64, ends: I64, n_columns: int, encoding: Encoding) -> _Rows:
        n_rows, label = len(starts), encoding.label_index
        found = np.flatnonzero(arr == _COMMA)
        if len(found) != n_rows * (n_columns - 1):
            raise RuntimeError("the upload changed between the two passes")
        commas = found.reshape(n_rows, n_columns - 1)
        newlines = ends - 1
        if label == 0:  # the rest of the row goes on from its first comma
            return cls(starts, ends, starts, commas[:, 0], starts, commas[:, 0], True)
        if label == n_columns - 1:
            label_from = commas[:, -1] + 1
            return cls(starts, ends, label_from, newlines, commas[:, -1], newlines, False)
        label_from, label_to = commas[:, label - 1] + 1, commas[:, label]
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
