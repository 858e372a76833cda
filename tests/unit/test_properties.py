"""Issue 4's property: any CSV either formats into a dataset whose invariants hold, or is refused
with ``InvalidUpload``; never any other exception, never silently changed values."""

from __future__ import annotations

import contextlib
import csv
import io
import math
from dataclasses import dataclass

import pytest
from dropfit.dataset import FormattedDataset, format_dataset
from dropfit.errors import InvalidUpload
from dropfit.options import UploadOptions
from dropfit.split import split_indices
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

GARBAGE = st.sampled_from(
    [
        "",
        " ",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "abc",
        "1e999",
        "1e300",
        '"',
        "N/A",
        "null",
        "1_0",
        "0x10",
    ]
)
INTEGERS = st.integers(-5, 5).map(str)
FLOATS = st.one_of(
    # k-NN computes in float32: clean values fit it (larger ones are refused, see GARBAGE)
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.floats(-100, 100, allow_nan=False).map(lambda x: f"{x:.3f}"),
    st.integers(-(10**9), 10**9).map(lambda i: f" {i} "),
)
CLASSES = st.sampled_from(["setosa", "versicolor", "virginica", "a b", "x,y", 'say "hi"', "é"])
TEXT = st.text(st.characters(codec="utf-8"), max_size=6)
KINDS = {
    "integer": INTEGERS,
    "float": FLOATS,
    "class": CLASSES,
    "label": st.sampled_from(["0", "1", "2", "1.0", "02"]),
    "iris": st.sampled_from(["setosa", "versicolor", "virginica"]),
    "text": TEXT,
}
PLAIN_NAMES = st.sampled_from(
    ["a", "b", "Species", "price", " padded ", "x,y", 'q"uote', "A", "é", "Sepal.Length"]
)
NAMES = st.one_of(PLAIN_NAMES, TEXT)


@dataclass(frozen=True)
class Upload:
    data: bytes
    header: list[str]
    rows: list[list[str]]
    exact: bool  # written so that a CSV reader gets header and rows back exactly
    plausible: bool  # drawn to be mostly valid


@st.composite
def column_of(draw: st.DrawFn, kind: str, n_rows: int, garbage: bool) -> list[str]:
    cells = st.one_of(KINDS[kind], GARBAGE) if garbage else KINDS[kind]
    return draw(st.lists(cells, min_size=n_rows, max_size=n_rows))


@st.composite
def uploads(draw: st.DrawFn) -> Upload:
    """Half plausible tables (mostly accepted), half wild ones (mostly refused)."""
    plausible = draw(st.booleans())
    if plausible:
        n_columns = draw(st.integers(2, 5))
        n_rows = draw(st.integers(6, 30))
        header = draw(
            st.lists(PLAIN_NAMES, min_size=n_columns, max_size=n_columns, unique_by=str.strip)
        )
        kinds = [draw(st.sampled_from(["integer", "float"])) for _ in range(n_columns - 1)]
        kinds.append(draw(st.sampled_from(["iris", "label", "float"])))
    else:
        n_columns = draw(st.integers(1, 5))
        n_rows = draw(st.integers(0, 24))
        header = [draw(NAMES) for _ in range(n_columns)]
        kinds = [draw(st.sampled_from(list(KINDS))) for _ in range(n_columns)]
    columns = [
        draw(column_of(kind, n_rows, garbage=not plausible and draw(st.booleans())))
        for kind in kinds
    ]
    rows = [[column[i] for column in columns] for i in range(n_rows)]
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    styles = ["minimal", "all"] if plausible else ["minimal", "all", "raw", "semicolon", "tab"]
    style = draw(st.sampled_from(styles))
    if style in ("minimal", "all"):
        out = io.StringIO()
        writer = csv.writer(
            out,
            lineterminator=terminator,
            quoting=csv.QUOTE_MINIMAL if style == "minimal" else csv.QUOTE_ALL,
        )
        writer.writerows([header, *rows])
        text = out.getvalue()
    else:
        delimiter = {"raw": ",", "semicolon": ";", "tab": "\t"}[style]
        text = "".join(delimiter.join(line) + terminator for line in [header, *rows])
    if draw(st.booleans()):
        text = draw(st.sampled_from(["\n", terminator * 2])) + text + terminator
    data = text.encode()
    if draw(st.integers(0, 5)) == 0:
        data = b"\xef\xbb\xbf" + data
    exact = style in ("minimal", "all")
    return Upload(data=data, header=header, rows=rows, exact=exact, plausible=plausible)


@st.composite
def options_for(draw: st.DrawFn, upload: Upload) -> UploadOptions:
    names = [h.strip() for h in (upload.header[-1:] if upload.plausible else upload.header)]
    label = draw(st.one_of(st.none(), st.sampled_from(names)))
    if label and draw(st.booleans()):
        label = label.upper()
    return UploadOptions(
        label=label or None,
        k=draw(st.one_of(st.none(), st.integers(1, 4))),
        predictor_type=draw(st.sampled_from([None, None, None, "classifier", "regressor"])),
        test_fraction=draw(st.sampled_from([0.25, 0.2, 0.5])),
    )


def same_value(written: str, expected: str) -> bool:
    if written.strip() == expected.strip():
        return True
    try:
        return float(written) == float(expected)
    except ValueError:
        return False


def check_invariants(formatted: FormattedDataset, upload: Upload, options: UploadOptions) -> None:
    meta = formatted.metadata
    train = [line.split(",") for line in formatted.train_csv.decode().splitlines()]
    test = [line.split(",") for line in formatted.test_csv.decode().splitlines()]

    # rows are conserved across the split
    assert meta.n_train + meta.n_test == meta.n_rows
    assert (len(train), len(test)) == (meta.n_train, meta.n_test)
    # header-less, label first, one value per feature; every value a finite number
    width = len(meta.feature_names) + 1
    assert all(len(row) == width for row in train + test)
    assert all(math.isfinite(float(v)) for row in train + test for v in row)
    assert meta.label_column not in meta.feature_names
    if meta.predictor_type == "classifier":
        assert meta.classes is not None
        # the label map is a bijection onto 0..n-1 and every class is used
        assert len(set(meta.classes)) == len(meta.classes) >= 2
        codes = {int(row[0]) for row in train + test}
        assert all(float(row[0]) == int(row[0]) for row in train + test)
        assert codes == set(range(len(meta.classes)))
    else:
        assert meta.classes is None

    if not upload.exact:
        return
    # value for value, the channels hold the input rows the split selects
    header = [name.strip() for name in upload.header]
    assert meta.n_rows == len(upload.rows)
    assert sorted([*meta.feature_names, meta.label_column]) == sorted(header)
    label_at = header.index(meta.label_column)
    feature_at = [header.index(name) for name in meta.feature_names]
    train_rows, test_rows = split_indices(meta.n_rows, options.test_fraction)
    for written_rows, selected in ((train, train_rows), (test, test_rows)):
        # the split's rows, in upload order
        for written, source in zip(written_rows, sorted(selected.tolist()), strict=True):
            expected = upload.rows[source]
            assert [float(v) for v in written[1:]] == [float(expected[j]) for j in feature_at]
            label = written[0]
            if meta.classes is not None:
                label = meta.classes[int(label)]
            assert same_value(label, expected[label_at]), (label, expected[label_at])


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_csv_is_formatted_faithfully_or_refused_with_a_reason(data: st.DataObject) -> None:
    upload = data.draw(uploads())
    options = data.draw(options_for(upload))

    try:
        formatted = format_dataset(upload.data, options, default_k=1)
    except InvalidUpload as error:
        assert error.message  # every refusal says why
        return

    check_invariants(formatted, upload, options)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_clean_numeric_tables_are_always_accepted(data: st.DataObject) -> None:
    # guards the property above against refusing everything
    n_rows = data.draw(st.integers(8, 30))
    n_features = data.draw(st.integers(1, 4))
    header = [f"f{j}" for j in range(n_features)] + ["label"]
    rows = [
        [data.draw(FLOATS) for _ in range(n_features)] + [("x", "y")[i % 2]] for i in range(n_rows)
    ]
    text = "".join(",".join(row) + "\n" for row in [header, *rows])
    upload = Upload(data=text.encode(), header=header, rows=rows, exact=True, plausible=True)
    options = UploadOptions(k=1)
    assume(all(math.isfinite(float(v)) for row in rows for v in row[:-1]))

    formatted = format_dataset(upload.data, options, default_k=1)

    check_invariants(formatted, upload, options)


@pytest.mark.parametrize(
    "data",
    [
        b"\na,b\n1,2\n",
        b'a, "b,c"\n1,2\n',
        b"a,b\n1,2,3\n4,5,6\n7,8,9\n1,2,3\n4,5,6\n7,8,9\n",
        b"\xef\xbb\xbf",
        b"\xef\xbb\xbf\n\n",
        b'"',
        b'a,b\n"1\n',
        b",\n,\n",
    ],
)
def test_files_that_once_escaped_as_other_exceptions(data: bytes) -> None:
    # refused or accepted, but never an exception other than InvalidUpload
    with contextlib.suppress(InvalidUpload):
        format_dataset(data, UploadOptions(), default_k=1)
