"""Turn an uploaded CSV into the k-NN training and test channels, or say exactly why not.

What it does, as the tutorial does by hand: moves the label to the first column, maps class names
to ints 0..n-1 in sorted order, splits train/test like ``train_test_split(random_state=0)`` and
writes header-less CSVs (label first) for SageMaker's ``text/csv`` input.

Decisions (documented in README):
- Missing values are refused, not imputed: k-NN has no notion of a missing coordinate, and silently
  filling one in would change the model. The error names the column and the data row.
- Data rows are counted from 1 after the header; file lines (in ragged-row errors) count the header.
- Only comma-separated UTF-8 text (a UTF-8 byte-order mark is accepted).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dropfit.errors import InvalidUpload
from dropfit.labels import LabelMap
from dropfit.options import K_MAX, UploadOptions
from dropfit.split import RANDOM_STATE, split_indices

MAX_FEATURES = 1000  # keeps a run's record (feature names, classes) inside DynamoDB's 400 KB item
MAX_CLASSES = 1000
MAX_NAME_LENGTH = 128
_OTHER_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_READ_OPTIONS: dict[str, Any] = {
    "dtype": str,
    "keep_default_na": False,
    "skip_blank_lines": True,
    "skipinitialspace": True,
}


@dataclass(frozen=True, slots=True)
class DatasetMetadata:
    """Saved next to the channels (``metadata.json``) and on the run: what the model expects."""

    label_column: str
    feature_names: list[str]
    predictor_type: str
    classes: list[str] | None
    n_rows: int
    n_train: int
    n_test: int
    test_fraction: float
    random_state: int
    k: int
    sample_size: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@dataclass(frozen=True, slots=True)
class FormattedDataset:
    train_csv: bytes
    test_csv: bytes
    metadata: DatasetMetadata

    def hyperparameters(self) -> dict[str, str]:
        meta = self.metadata
        return {
            "feature_dim": str(len(meta.feature_names)),
            "k": str(meta.k),
            "sample_size": str(meta.sample_size),
            "predictor_type": meta.predictor_type,
        }


def format_dataset(data: bytes, options: UploadOptions, default_k: int) -> FormattedDataset:
    """Validate and format one upload. Raises :class:`InvalidUpload` naming the problem."""
    text = _decode(data)
    header = _read_header(text)
    frame = _read_frame(text, header)
    label = _choose_label(header, frame, options.label)
    feature_names = [name for name in header if name != label]
    features = _numeric_block(frame, feature_names)

    if options.predictor_type is not None:
        predictor_type = options.predictor_type
    else:
        predictor_type = "regressor" if _is_fractional(frame[label]) else "classifier"
    label_map: LabelMap | None = None
    if predictor_type == "classifier":
        label_map, targets = _encode_classes(frame[label], label)
    else:
        targets = _numeric_block(frame, [label], role="label")[:, 0]

    train_rows, test_rows = split_indices(len(frame), options.test_fraction)
    n_train = len(train_rows)
    if label_map is not None:
        _check_class_counts(label_map, targets, n_train, label)
    sample_size = options.sample_size if options.sample_size is not None else n_train
    if sample_size > n_train:
        raise InvalidUpload(
            f"Option sample_size={sample_size} is larger than the training set ({n_train} rows)."
        )
    k = options.k if options.k is not None else default_k
    if k > min(sample_size, K_MAX):
        raise InvalidUpload(
            f"k={k} is larger than the {sample_size} training points the model will hold; "
            f"use k <= {min(sample_size, K_MAX)}."
        )

    metadata = DatasetMetadata(
        label_column=label,
        feature_names=feature_names,
        predictor_type=predictor_type,
        classes=list(label_map.classes) if label_map is not None else None,
        n_rows=len(frame),
        n_train=n_train,
        n_test=len(test_rows),
        test_fraction=options.test_fraction,
        random_state=RANDOM_STATE,
        k=k,
        sample_size=sample_size,
    )
    return FormattedDataset(
        train_csv=_to_csv(targets[train_rows], features[train_rows], label_map is not None),
        test_csv=_to_csv(targets[test_rows], features[test_rows], label_map is not None),
        metadata=metadata,
    )


# --- reading ----------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if not data.strip():
        raise InvalidUpload("The file is empty; upload a CSV with a header row and data rows.")
    if b"\x00" in data[:65536]:
        raise InvalidUpload(
            "The file looks binary (it contains NUL bytes); upload comma-separated UTF-8 text."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidUpload(
            f"The file is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            "cannot be decoded. Save the CSV as UTF-8."
        ) from None


def _read_header(text: str) -> list[str]:
    # The same parser and options as the data rows, so both agree on where fields begin and end.
    try:
        first = pd.read_csv(io.StringIO(text), header=None, nrows=1, **_READ_OPTIONS)
    except pd.errors.EmptyDataError:
        raise InvalidUpload("The file is empty; upload a CSV with a header row.") from None
    except pd.errors.ParserError as exc:
        raise InvalidUpload(f"The header row is not valid CSV: {exc}.") from None
    header = [str(name) for name in first.iloc[0].tolist()]
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


def _read_frame(text: str, header: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.StringIO(text), **_READ_OPTIONS)
    except pd.errors.ParserError as exc:
        match = _RAGGED.search(str(exc))
        if match:
            expected, line, saw = match.groups()
            raise InvalidUpload(
                f"Line {line} has {saw} fields but the header has {expected} (ragged rows); "
                "quote values that contain commas."
            ) from None
        raise InvalidUpload(f"The file is not valid CSV: {exc}.") from None
    if frame.empty:
        raise InvalidUpload("The file has a header but no data rows.")
    if not isinstance(frame.index, pd.RangeIndex) or len(frame.columns) != len(header):
        # pandas silently makes a leading extra field of every row the index: data rows longer
        # than the header would otherwise shift every value one column to the right.
        _raise_first_ragged(text, header)
        raise InvalidUpload(
            f"The data rows do not have the {len(header)} fields of the header (ragged rows)."
        )
    frame.columns = pd.Index(header)
    frame = frame.apply(lambda column: column.str.strip())
    empty = frame.to_numpy() == ""
    if empty.any():
        _raise_first_missing(text, header, empty)
    return frame


def _raise_first_missing(text: str, header: list[str], empty: npt.NDArray[np.bool_]) -> None:
    """pandas pads short rows with empty strings: tell a short row from an empty cell."""
    _raise_first_ragged(text, header)
    row, column = (int(i) for i in np.argwhere(empty)[0])
    raise InvalidUpload(
        f"Column {header[column]!r} is empty in data row {row + 1}. Missing values are not "
        "imputed: fill them in or drop those rows before uploading."
    )


def _raise_first_ragged(text: str, header: list[str]) -> None:
    """Name the first data row whose field count differs from the header's, if any."""
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
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
                    f"Data row {data_row} (line {reader.line_num}) has {len(fields)} fields but "
                    f"the header has {len(header)} (ragged rows)."
                )
    except csv.Error:
        return  # pandas read what the csv module cannot: the caller's message stands


# --- columns ---------------------------------------------------------------------------


def _parse_floats(column: pd.Series) -> npt.NDArray[np.float64]:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def _is_numeric(column: pd.Series) -> bool:
    return not bool(np.isnan(_parse_floats(column)).any())


def _is_fractional(column: pd.Series) -> bool:
    values = _parse_floats(column)
    if np.isnan(values).any() or not np.isfinite(values).all():
        return False
    return bool((values != np.round(values)).any())


def _choose_label(header: list[str], frame: pd.DataFrame, requested: str | None) -> str:
    if requested is not None:
        if requested in header:
            return requested
        folded = [name for name in header if name.lower() == requested.lower()]
        if len(folded) == 1:
            return folded[0]
        raise InvalidUpload(
            f"Label column {requested!r} was not found; the columns are {', '.join(header)}."
        )
    non_numeric = [name for name in header if not _is_numeric(frame[name])]
    if len(non_numeric) == 1:
        return non_numeric[0]
    if not non_numeric:
        return header[-1]
    raise InvalidUpload(
        f"Columns {', '.join(non_numeric)} are not numeric, but only the label may be: features "
        "must be numbers. If one of them is the label, name it with the metadata option "
        "label=<column>."
    )


def _numeric_block(
    frame: pd.DataFrame, columns: list[str], role: str = "feature"
) -> npt.NDArray[np.float64]:
    block = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        values = _parse_floats(frame[name])
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            raw = frame[name].iat[row]
            kind = (
                "non-finite"
                if not math.isnan(values[row]) or raw.lower() == "nan"
                else "non-numeric"
            )
            raise InvalidUpload(
                f"{role.capitalize()} column {name!r} has a {kind} value {raw[:40]!r} in data row "
                f"{row + 1}; {role}s must be finite numbers."
            )
        block[:, j] = values
    return block


def _encode_classes(column: pd.Series, name: str) -> tuple[LabelMap, npt.NDArray[np.float64]]:
    labels = column
    if _is_numeric(column):
        # 3, 3.0 and 03 are one class; named by the integer value
        values = _parse_floats(column)
        if not np.isfinite(values).all():
            row = int(np.argmax(~np.isfinite(values)))
            raise InvalidUpload(
                f"Label column {name!r} has a non-finite value in data row {row + 1}."
            )
        labels = pd.Series([str(int(v)) if v == int(v) else repr(v) for v in values])
    too_long = labels.str.len() > MAX_NAME_LENGTH
    if too_long.any():
        row = int(np.argmax(too_long.to_numpy()))
        raise InvalidUpload(
            f"Label column {name!r} has a class name of {len(labels.iat[row])} characters in data "
            f"row {row + 1}; at most {MAX_NAME_LENGTH} are allowed."
        )
    label_map = LabelMap.from_labels(labels.tolist())
    codes = labels.map(label_map.index()).to_numpy(dtype=np.float64)
    return label_map, codes


def _check_class_counts(
    label_map: LabelMap, codes: npt.NDArray[np.float64], n_train: int, name: str
) -> None:
    n_classes = len(label_map.classes)
    if n_classes < 2:
        raise InvalidUpload(
            f"Label column {name!r} has only one class ({label_map.classes[0]!r}); a classifier "
            "needs at least 2 classes."
        )
    if n_classes > MAX_CLASSES:
        raise InvalidUpload(
            f"Label column {name!r} has {n_classes} classes; at most {MAX_CLASSES} are supported. "
            "For a numeric target use predictor_type=regressor."
        )
    if n_classes > n_train:
        raise InvalidUpload(
            f"Label column {name!r} has {n_classes} classes but only {n_train} training rows."
        )
    counts = np.bincount(codes.astype(np.int64), minlength=n_classes)
    single = [label_map.classes[i] for i in np.flatnonzero(counts < 2)]
    if single:
        raise InvalidUpload(
            f"Class {single[0]!r} of label column {name!r} has a single row; every class needs "
            "at least 2 rows so that training can see it."
        )


# --- writing ---------------------------------------------------------------------------


def _to_csv(
    targets: npt.NDArray[np.float64], features: npt.NDArray[np.float64], integer_labels: bool
) -> bytes:
    """Header-less, label first; floats in their shortest round-trip form."""
    frame = pd.DataFrame(features)
    frame.insert(0, "label", targets.astype(np.int64) if integer_labels else targets)
    return frame.to_csv(header=False, index=False, lineterminator="\n").encode()
