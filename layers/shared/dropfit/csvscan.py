"""The rules an upload must follow, what a pass over it learns, and the reference engine.

The reference engine reads any CSV with pandas (``dtype=str``) in chunks, exactly as reading the
whole file at once would, and records the first occurrence of every problem; the problems are
raised at the end of the pass in the order a whole-file check would meet them. It is the
definition of what Dropfit accepts. :mod:`dropfit.plaincsv` is a much faster engine for the
common, plain files; it defers to this one for anything else.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import numpy as np
import numpy.typing as npt
import pandas as pd

from dropfit.csvsource import Source, open_text
from dropfit.errors import InvalidUpload
from dropfit.options import DECIMAL, FLOAT32_MAX

MAX_FEATURES = 1000
MAX_CLASSES = 1000
MAX_NAME_LENGTH = 128
# Distinct labels counted exactly; beyond, the upload is refused as "more than" this many classes
# (or is a regression target), so memory stays bounded whatever the label column holds.
TALLY_LIMIT = 10 * MAX_CLASSES
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
READ_OPTIONS: dict[str, Any] = {
    "dtype": str,
    "keep_default_na": False,
    "skip_blank_lines": True,
    "skipinitialspace": True,
}
_CHUNK_CELLS = 400_000  # ~30 MB of Python strings per pandas chunk

Floats = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


# --- the header ------------------------------------------------------------------------------


def parse_header(text: TextIO) -> list[str]:
    """The header row's names; raises :class:`InvalidUpload` naming what is wrong with it."""
    # The same parser and options as the data rows, so both agree on where fields begin and end.
    try:
        first = pd.read_csv(text, header=None, nrows=1, **READ_OPTIONS)
    except pd.errors.EmptyDataError:
        raise InvalidUpload("The file is empty; upload a CSV with a header row.") from None
    except pd.errors.ParserError as exc:
        raise InvalidUpload(f"The header row is not valid CSV: {exc}.") from None
    return check_header([str(name) for name in first.iloc[0].tolist()])


def check_header(header: list[str]) -> list[str]:
    names = [name.strip() for name in header]
    if len(names) < 2:
        for delimiter, word in _OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raise InvalidUpload(
                    f"Only one column was found and the header contains {word}s: the file seems "
                    f"to be {word}-separated. Dropfit reads comma-separated CSV."
                )
        raise InvalidUpload(
            "The CSV has a single column; it needs at least one feature column and a label column."
        )
    if all_numbers(names):
        # a header-less file would silently lose its first row to the column names
        raise InvalidUpload(
            "The first line looks like data, not a header (every field in it is a number); "
            "the CSV needs a header row naming the columns."
        )
    for position, name in enumerate(names, start=1):
        if not name:
            raise InvalidUpload(f"Column {position} of the header has no name; name every column.")
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidUpload(
                f"Column {position} has a name of {len(name)} characters; "
                f"at most {MAX_NAME_LENGTH} are allowed."
            )
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidUpload(
                f"Column name {name!r} appears more than once; names must be unique."
            )
        seen.add(name)
    if len(names) - 1 > MAX_FEATURES:
        raise InvalidUpload(
            f"The CSV has {len(names) - 1} feature columns; at most {MAX_FEATURES} are supported."
        )
    return names


def choose_label(header: list[str], numeric: Sequence[bool], requested: str | None) -> int:
    """The label column: as requested, else the only non-numeric column, else the last one."""
    if requested is not None:
        if requested in header:
            return header.index(requested)
        folded = [i for i, name in enumerate(header) if name.lower() == requested.lower()]
        if len(folded) == 1:
            return folded[0]
        if folded:
            raise InvalidUpload(
                f"Label column {requested!r} matches several columns when case is ignored "
                f"({', '.join(header[i] for i in folded)}); give its exact name with "
                "label=<column>."
            )
        raise InvalidUpload(
            f"Label column {requested!r} was not found; the columns are {', '.join(header)}."
        )
    non_numeric = [i for i, is_numeric in enumerate(numeric) if not is_numeric]
    if len(non_numeric) == 1:
        return non_numeric[0]
    if not non_numeric:
        return len(header) - 1
    raise InvalidUpload(
        f"Columns {', '.join(header[i] for i in non_numeric)} are not numeric, but only the label "
        "may be: features must be numbers. If one of them is the label, name it with the "
        "metadata option label=<column>."
    )


def guess_label(header: list[str], numeric: Sequence[bool], requested: str | None) -> int | None:
    """The label as far as the rows read so far tell (None: the upload will be refused)."""
    try:
        return choose_label(header, numeric, requested)
    except InvalidUpload:
        return None


# --- what a pass learns about the columns ------------------------------------------------------


TOO_LARGE = "too large"  # finite, but infinite once k-NN casts it to float32


@dataclass(frozen=True, slots=True)
class BadValue:
    row: int  # data row, from 0
    raw: str
    kind: str  # "non-finite", "non-numeric" or TOO_LARGE


def to_floats(values: Any) -> Floats:
    """Numbers as pandas reads them (``3``, `` 3.0 ``, ``1e3``); NaN where a value is not one."""
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64
    )


def all_numbers(values: Sequence[str]) -> bool:
    return not np.isnan(to_floats(values)).any()


@dataclass(slots=True)
class ColumnStats:
    numeric: bool = True  # no value failed to parse (infinities count as numbers)
    first_bad: BadValue | None = None  # the first value that is not a finite number

    def add(self, values: Floats, raw: Sequence[str], rows: npt.NDArray[np.int64]) -> None:
        """Values (parsed), their stripped text and their data rows, in any order."""
        nan = np.isnan(values)
        # A literal NaN is a (non-finite) number, not text: it must not make a numeric column
        # look like the label, nor turn integer classes into text; first_bad reports it.
        if nan.any() and any(str(raw[int(i)]).lower() != "nan" for i in np.flatnonzero(nan)):
            self.numeric = False
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(values) <= FLOAT32_MAX)  # NaN, infinite, or beyond float32
        if not bad.any():
            return
        at = int(np.flatnonzero(bad)[np.argmin(rows[bad])])
        row = int(rows[at])
        if self.first_bad is None or row < self.first_bad.row:
            text = raw[at]
            finite_or_nan = not math.isnan(values[at]) or text.lower() == "nan"
            kind = "non-finite" if finite_or_nan else "non-numeric"
            if math.isfinite(values[at]):
                kind = TOO_LARGE
            self.first_bad = BadValue(row, text, kind)


def numeric_class_name(value: float) -> str:
    """3, 3.0 and 03 are one class, named after the integer value."""
    # float(): a numpy float's repr is "np.float64(1.5)"
    return str(int(value)) if value == int(value) else repr(float(value))


@dataclass(slots=True)
class _Tally:
    """Distinct values with their row count and first row; at most TALLY_LIMIT of them."""

    first_rows: dict[Any, int] = field(default_factory=dict)
    counts: dict[Any, int] = field(default_factory=dict)
    overflow: bool = False

    def add(self, key: Any, count: int, first_row: int) -> None:
        if self.overflow:
            return
        if key in self.counts:
            self.counts[key] += count
            self.first_rows[key] = min(self.first_rows[key], first_row)
        elif len(self.counts) < TALLY_LIMIT:
            self.counts[key] = count
            self.first_rows[key] = first_row
        else:
            self.overflow = True


@dataclass(slots=True)
class LabelStats:
    """What the classes will be, gathered from the distinct label values of each chunk."""

    texts: _Tally = field(default_factory=_Tally)  # stripped text -> rows
    values: _Tally = field(default_factory=_Tally)  # finite number -> rows
    text_ids: dict[str, int] = field(default_factory=dict)  # stripped text -> its id (see add)
    any_fractional: bool = False
    # (row, length) of the first text, and of the first number's class name, that is too long
    first_long_text: tuple[int, int] | None = None
    first_long_number: tuple[int, int] | None = None
    whitespace: bool = False  # (plain engine) a label field has a space or tab in or around it

    def add(
        self, texts: Sequence[str], values: Floats, counts: npt.NDArray[np.intp], first_rows: I64
    ) -> list[int] | None:
        """Distinct stripped label texts of a chunk (with their numbers, counts and first rows).

        Returns an id per text (the order texts were first seen), or None once there are too
        many distinct texts for a classifier.
        """
        finite = np.isfinite(values)
        if (finite & (values != np.round(values))).any():
            self.any_fractional = True
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        long = np.flatnonzero(lengths > MAX_NAME_LENGTH)
        if len(long):
            at = long[np.argmin(first_rows[long])]
            self.first_long_text = _earliest(
                self.first_long_text, (int(first_rows[at]), int(lengths[at]))
            )
        for at in np.flatnonzero(finite & (np.abs(values) >= 1e127)):  # 128+ digit class names
            name = numeric_class_name(float(values[at]))
            if len(name) > MAX_NAME_LENGTH:
                found = (int(first_rows[at]), len(name))
                self.first_long_number = _earliest(self.first_long_number, found)
        for i, text in enumerate(texts):
            if self.texts.overflow and self.values.overflow:
                break
            first = int(first_rows[i])
            self.texts.add(text, int(counts[i]), first)
            if finite[i]:
                self.values.add(float(values[i]), int(counts[i]), first)
        if self.texts.overflow:
            return None
        for text in texts:
            self.text_ids.setdefault(text, len(self.text_ids))
        return [self.text_ids[text] for text in texts]


def _earliest(current: tuple[int, int] | None, found: tuple[int, int]) -> tuple[int, int]:
    return found if current is None else min(current, found)


def distinct(texts: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[np.intp]]:
    """(distinct values, index of each row's value) in order of first appearance."""
    codes, uniques = pd.factorize(texts, use_na_sentinel=False)
    return np.asarray(uniques, dtype=object), codes


def first_rows(codes: npt.NDArray[np.intp], n_codes: int, row0: int) -> npt.NDArray[np.int64]:
    first = np.empty(n_codes, dtype=np.int64)
    order = np.arange(len(codes) - 1, -1, -1)
    first[codes[order]] = order  # later writes win: the first occurrence is written last
    return first + row0


@dataclass(slots=True)
class Scan:
    """What pass 1 learnt: enough to decide every refusal and to route every row in pass 2."""

    header: list[str]
    n_rows: int
    columns: list[ColumnStats]
    label_index: int | None  # whose LabelStats were gathered
    label: LabelStats
    size: int  # bytes read
    plain: bool = False  # found by the plain engine (dropfit.plaincsv): plainwrite can write it
    label_ids: npt.NDArray[np.uint16] | None = None  # plain: each row's label id (classifier)
    piece_rows: list[int] | None = None  # plain: the data rows of each piece, in order


# --- the reference engine ---------------------------------------------------------------------


def scan(source: Source, requested: str | None, label_hint: int | None = None) -> Scan:
    """Pass 1 over any CSV; raises :class:`InvalidUpload` for problems of the file's shape."""
    header_problem: InvalidUpload | None = None
    with open_text(source) as text:
        try:
            header = parse_header(text)
        except InvalidUpload as problem:
            header_problem = problem
    with open_text(source) as text:
        if header_problem is not None:
            drain(text)  # a decoding problem anywhere in the file comes first
            raise header_problem
        found = _scan_rows(text, header, requested, label_hint)
    if isinstance(found, Scan):
        return found
    raise_first_ragged(source, header)
    raise found


def drain(text: TextIO) -> None:
    raw = text.buffer.raw  # type: ignore[attr-defined]
    raw.drain()


def _chunks(text: TextIO, n_columns: int) -> Iterator[pd.DataFrame]:
    rows = max(1, _CHUNK_CELLS // n_columns)
    with pd.read_csv(text, chunksize=rows, **READ_OPTIONS) as reader:
        yield from reader


def _strip(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda column: column.str.strip())


def _scan_rows(
    text: TextIO, header: list[str], requested: str | None, label_index: int | None
) -> Scan | InvalidUpload:
    """The scan, or the problem to report once the first ragged row (if any) is ruled out."""
    columns = [ColumnStats() for _ in header]
    label = LabelStats()
    n_rows = 0
    misshapen = False
    first_missing: tuple[int, int] | None = None
    try:
        for frame in _chunks(text, len(header)):
            if (
                n_rows == 0
                and len(frame)
                and (
                    not isinstance(frame.index, pd.RangeIndex) or len(frame.columns) != len(header)
                )
            ):
                # pandas silently makes a leading extra field of every row the index: data rows
                # longer than the header would otherwise shift every value one column right.
                misshapen = True
            if not misshapen and first_missing is None and len(frame):
                # After a problem of shape the rest is only read for a parser error further on.
                cells = _strip(frame)
                empty = cells.to_numpy() == ""
                if empty.any():
                    row, column = (int(i) for i in np.argwhere(empty)[0])
                    first_missing = (n_rows + row, column)
                else:
                    _add_columns(cells, n_rows, columns)
                    if label_index is None and n_rows == 0:
                        label_index = guess_label(header, [c.numeric for c in columns], requested)
                    if label_index is not None:
                        add_label_texts(cells.iloc[:, label_index].to_numpy(object), n_rows, label)
            n_rows += len(frame)
    except pd.errors.ParserError as exc:
        drain(text)  # a decoding problem anywhere in the file comes first
        match = _RAGGED.search(str(exc))
        if match:
            expected, line, saw = match.groups()
            raise InvalidUpload(
                f"Line {line} has {saw} fields but the header has {expected} (ragged rows); "
                "quote values that contain commas."
            ) from None
        raise InvalidUpload(f"The file is not valid CSV: {exc}.") from None
    if n_rows == 0:
        raise InvalidUpload("The file has a header but no data rows.")
    if misshapen:
        return InvalidUpload(
            f"The data rows do not have the {len(header)} fields of the header (ragged rows)."
        )
    if first_missing is not None:
        row, column = first_missing
        # pandas pads short rows with empty strings: raise_first_ragged tells them apart.
        return InvalidUpload(
            f"Column {header[column]!r} is empty in data row {row + 1}. Missing values are not "
            "imputed: fill them in or drop those rows before uploading."
        )
    size = text.buffer.raw.offset  # type: ignore[attr-defined]
    return Scan(header, n_rows, columns, label_index, label, size)


def _add_columns(frame: pd.DataFrame, row0: int, columns: list[ColumnStats]) -> None:
    rows = np.arange(row0, row0 + len(frame), dtype=np.int64)
    for j, stats in enumerate(columns):
        raw = frame.iloc[:, j].to_numpy(dtype=object)
        stats.add(to_floats(raw), raw, rows)


def add_label_texts(texts: npt.NDArray[Any], row0: int, label: LabelStats) -> list[int] | None:
    """Add a chunk's stripped label texts (one per row); the ids of its distinct texts."""
    uniques, codes = distinct(texts)
    counts = np.bincount(codes, minlength=len(uniques))
    firsts = first_rows(codes, len(uniques), row0)
    return label.add(list(uniques), to_floats(uniques), counts, firsts)


def raise_first_ragged(source: Source, header: list[str]) -> None:
    """Name the first data row whose field count differs from the header's, if any."""
    with open_text(source) as text:
        reader = csv.reader(text, skipinitialspace=True)
        try:
            for fields in reader:
                if fields and any(f.strip() for f in fields):
                    break  # the header (blank lines before it are skipped, like pandas does)
            data_row = 0
            for fields in reader:
                if not fields or (all(not f.strip() for f in fields) and len(fields) <= 1):
                    continue  # blank line, skipped like pandas does
                data_row += 1
                if len(fields) != len(header):
                    raise InvalidUpload(
                        f"Data row {data_row} (line {reader.line_num}) has {len(fields)} fields "
                        f"but the header has {len(header)} (ragged rows)."
                    )
        except csv.Error:
            return  # pandas read what the csv module cannot: the caller's message stands


# --- writing the channels ----------------------------------------------------------------------


class Sink(Protocol):
    """Where one channel object's bytes go (an S3 multipart upload, a buffer)."""

    def write(self, data: bytes | memoryview) -> object: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a data row is written: label first (its class index, or its number), then features."""

    label_index: int
    feature_indices: list[int]
    classes: dict[str, int] | None  # class name -> index; None for a regressor
    numeric_classes: bool  # class names come from the label's numbers (3, 3.0 and 03 are "3")

    def label_texts(self, raw: npt.NDArray[Any]) -> list[str]:
        """Stripped label texts -> what the channel holds in the label column."""
        if self.classes is None:
            return canonical_numbers(raw)
        names = [numeric_class_name(v) for v in to_floats(raw)] if self.numeric_classes else raw
        return [str(self.classes[name]) for name in names]


def canonical_numbers(raw: npt.NDArray[Any]) -> list[str]:
    """Valid numbers as text: the upload's own text when it is plain decimal (most are)."""
    plain = pd.Series(raw, dtype=object).str.fullmatch(DECIMAL.pattern, flags=re.ASCII)
    if bool(plain.all()):
        return list(raw)
    values = to_floats(raw)
    return [text if ok else repr(float(v)) for text, ok, v in zip(raw, plain, values, strict=True)]


class Tap(Protocol):
    """Sees what the channels receive: the training rows by ordinal, and the test rows."""

    def train(self, ordinal0: int, rows: bytes | memoryview, ends: npt.NDArray[np.int64]) -> None:
        """Consecutive training rows from ordinal ``ordinal0`` (row i ends at ``ends[i]``)."""

    def test(self, rows: bytes | memoryview) -> None: ...


class Router:
    """Sends each data row to the test channel or to its training part, in upload order.

    The training rows are cut into ``len(train)`` parts of (nearly) equal row counts, in order,
    so that k-NN instances reading them ``ShardedByS3Key`` get the same number of points each.
    """

    def __init__(
        self,
        is_test: npt.NDArray[np.bool_],
        n_train: int,
        train: Sequence[Sink],
        test: Sink,
        tap: Tap | None = None,
    ) -> None:
        self.is_test = is_test
        self._tap = tap
        self._train = list(train)
        self._test = test
        parts = len(self._train)
        self._ends = [(j + 1) * n_train // parts for j in range(parts)]
        self._part = 0
        self._ordinal = 0  # training rows written so far

    def write(
        self, train: bytes | memoryview, train_ends: npt.NDArray[np.int64], test: bytes | memoryview
    ) -> None:
        """A batch of consecutive rows: the training rows' bytes (row i ends at train_ends[i])."""
        if test:
            self._test.write(test)
        if self._tap is not None:
            self._tap.train(self._ordinal, train, train_ends)
            if test:
                self._tap.test(test)
        view = memoryview(train)
        done, start = 0, 0
        while done < len(train_ends):
            take = min(len(train_ends) - done, self._ends[self._part] - self._ordinal)
            end = int(train_ends[done + take - 1])
            self._train[self._part].write(view[start:end])
            start, done = end, done + take
            self._ordinal += take
            if self._ordinal == self._ends[self._part] and self._part + 1 < len(self._train):
                self._train[self._part].close()
                self._part += 1

    def write_lines(self, row0: int, lines: Sequence[str]) -> None:
        is_test = self.is_test[row0 : row0 + len(lines)]
        train = [line.encode() for line, t in zip(lines, is_test, strict=True) if not t]
        test = "".join(line for line, t in zip(lines, is_test, strict=True) if t).encode()
        ends = np.cumsum(np.fromiter((len(b) for b in train), np.int64, len(train)))
        self.write(b"".join(train), ends, test)

    def close(self) -> None:
        self._train[self._part].close()
        self._test.close()


def write(source: Source, header: list[str], encoding: Encoding, router: Router) -> None:
    """Pass 2 over any CSV (already validated by :func:`scan`): every row to its channel."""
    with open_text(source) as text:
        row0 = 0
        for frame in _chunks(text, len(header)):
            cells = _strip(frame).to_numpy(dtype=object)
            columns = [encoding.label_texts(cells[:, encoding.label_index])]
            columns += [canonical_numbers(cells[:, j]) for j in encoding.feature_indices]
            lines = [",".join(parts) + "\n" for parts in zip(*columns, strict=True)]
            router.write_lines(row0, lines)
            row0 += len(frame)
