"""The fast engine (dropfit.plaincsv, plainrows, plainwrite) answers exactly as the reference.

Whatever it accepts, the reference engine (dropfit.csvscan) accepts with the same channels; what
it cannot vouch for, it hands over. Its numpy checks are proofs, never guesses: a number they
pass is one the reference reads as a finite float32.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from dropfit import csvscan, dataset, plaincsv, plainrows
from dropfit.csvscan import to_floats
from dropfit.dataset import FormattedDataset, format_dataset
from dropfit.errors import InvalidUpload
from dropfit.options import FLOAT32_MAX, UploadOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Numbers of every kind: plain decimals, other spellings, and what is no finite number at all.
PLAIN = ["1.5", "-2.25", ".5", "-.5", "+.5", "0.0", "9" * 38 + ".5", "007", "12", "-0", "9" * 38]
OTHER = ["5.", "1e5", "3E-2", "9" * 39, " 1.5", "1.5 ", "\t2", "0x10", "1_0", "1.2.3", "--1", "1-2"]
BAD = ["", "-", ".", "nan", "inf", "-inf", "abc", "1e39", "3.5e38", "9" * 39 + ".5", "1/2", "N/A"]
LABELS = [
    "setosa",
    "Iris-versicolor",
    "experiment_01_control",  # the same first and last 8 bytes, and length, as the next one
    "experiment_02_control",
    "é",
    "a b",
    " padded ",
    "x.y",
    "1",
    "2",
    "02",
    "1.5",
    "-0.25",
    "nan",
    "",
]


@st.composite
def uploads(draw: st.DrawFn) -> tuple[bytes, UploadOptions]:
    n_columns = draw(st.integers(2, 5))
    label_at = draw(st.integers(0, n_columns - 1))
    n_rows = draw(st.integers(1, 30))
    odd = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3]))  # how often a number is not plain
    numbers = st.one_of(st.sampled_from(PLAIN), st.sampled_from(OTHER + BAD))
    plain = draw(st.sampled_from([PLAIN[:7], PLAIN]))  # with a point each, or not
    classes = draw(st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True))
    quoted = draw(st.booleans())
    rows = []
    for _ in range(n_rows):
        row = [
            draw(numbers) if draw(st.floats(0, 1)) < odd else draw(st.sampled_from(plain))
            for _ in range(n_columns - 1)
        ]
        label = draw(st.sampled_from(classes))
        row.insert(label_at, f'"{label}"' if quoted else label)
        rows.append(",".join(row))
    header = ",".join(f"c{j}" for j in range(n_columns))
    lines = [header, *rows]
    for _ in range(draw(st.integers(0, 2))):  # blank lines anywhere after the header
        lines.insert(draw(st.integers(1, len(lines))), "")
    end = draw(st.sampled_from(["\n", "\r\n"]))
    data = (end.join(lines) + end).encode()
    options = UploadOptions(
        label=draw(st.sampled_from([None, f"c{label_at}"])),
        predictor_type=draw(st.sampled_from([None, None, "classifier", "regressor"])),
        k=1,
    )
    return data, options


def formatted(data: bytes, options: UploadOptions) -> FormattedDataset | str:
    try:
        return format_dataset(data, options, default_k=1)
    except InvalidUpload as error:
        return error.message


def by_reference(data: bytes, options: UploadOptions) -> FormattedDataset | str:
    def not_plain(*args: object) -> csvscan.Scan:
        raise plaincsv.NotPlain

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plaincsv, "scan", not_plain)
        return formatted(data, options)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    upload=uploads(),
    block_bytes=st.sampled_from([8 * 1024 * 1024, 7, 100]),
    workers=st.sampled_from([1, 2, 3]),
)
def test_the_fast_engine_answers_as_the_reference_does(
    upload: tuple[bytes, UploadOptions], block_bytes: int, workers: int
) -> None:
    data, options = upload
    with pytest.MonkeyPatch.context() as patch:
        # small blocks and pieces: rows in many pieces, pieces of blank lines only, read and cut
        # on one or several threads
        patch.setattr(plaincsv, "BLOCK_BYTES", block_bytes)
        patch.setattr(plainrows, "PIECE_BYTES", min(block_bytes, 64))
        patch.setattr(dataset, "usable_cpus", lambda: workers)
        fast = formatted(data, options)

    assert fast == by_reference(data, options)


# --- the numpy checks -----------------------------------------------------------------------


def _plain(cells: list[str]) -> bool:
    """plain_numbers over rows of a number and a label."""
    data = "".join(f"{cell},y\n" for cell in cells).encode()
    found = plainrows.fields(np.frombuffer(data, np.uint8), 2)
    assert found is not None
    padded = plainrows.padded(found.piece)
    plainrows.blank_labels(padded, found.start(1), found.end(1))
    return plainrows.plain_numbers(padded, found, 1)


@pytest.mark.parametrize("cell", PLAIN)
def test_plain_decimals_pass_the_numpy_check(cell: str) -> None:
    assert _plain([cell, "1.5"]) and _plain([cell])
    # among fields without a point, the check keeps to 38 characters in all
    assert _plain([cell, "2"]) == (len(cell) <= 38)


@pytest.mark.parametrize("cell", OTHER + BAD)
def test_anything_else_goes_to_pandas_or_the_reference(cell: str) -> None:
    assert not _plain([cell, "1.5"]) and not _plain(["2", cell]) and not _plain([cell])


def test_a_long_fraction_passes_where_every_field_has_a_point() -> None:
    # the general check, for fields without points, keeps to 38 characters in all
    assert _plain(["1." + "0" * 60, "1.5"])
    assert not _plain(["1." + "0" * 60, "2"])


def test_two_points_in_one_field_are_seen_among_fields_without_points() -> None:
    assert not _plain(["12", "1.5.1", "3"])
    assert not _plain(["1.5", "2", "3.2.", "7"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text("0123456789.+-e", min_size=1, max_size=7), min_size=1, max_size=6))
def test_a_number_the_numpy_check_passes_is_a_finite_float32_for_both_parsers(
    cells: list[str],
) -> None:
    if not _plain(cells):
        return
    assert all(re.fullmatch(r"[+-]?[0-9]*\.?[0-9]+", cell) for cell in cells)
    reference = to_floats(np.array(cells, dtype=object))
    parsed = pd.read_csv(io.StringIO("\n".join(cells)), header=None, dtype=np.float64)[0]
    assert (np.abs(reference) <= FLOAT32_MAX).all()
    np.testing.assert_array_equal(parsed.to_numpy(), reference)


def test_a_line_with_another_number_of_fields_has_no_fields() -> None:
    for data in (b"1,2,a\n1,2\n", b"1,2,a\n1,2,3,a\n", b"1,2\n1,2,a,b\n"):
        assert plainrows.fields(np.frombuffer(data, np.uint8), 3) is None


def test_blank_lines_are_dropped_as_pandas_drops_them() -> None:
    found = plainrows.fields(np.frombuffer(b"\n1,a\n\n\n2,b\n", np.uint8), 2)

    assert found is not None
    assert found.piece.tobytes() == b"1,a\n2,b\n"
    assert found.n_rows == 2


def test_labels_are_told_apart_by_every_byte() -> None:
    texts = ["experiment_01_control", "experiment_02_control", "experiment_01_control", "é", "ab"]
    data = "".join(f"{t}\n" for t in texts).encode()
    found = plainrows.fields(np.frombuffer(data, np.uint8), 1)
    assert found is not None

    labels = plainrows.label_codes(plainrows.padded(found.piece), found.start(0), found.end(0))

    assert labels is not None
    codes, distinct = labels
    assert distinct == ["experiment_01_control", "experiment_02_control", "é", "ab"]
    assert codes.tolist() == [0, 1, 0, 2, 3]


# --- staying on the fast engine -------------------------------------------------------------


@pytest.mark.parametrize(
    "rows",
    [
        ["5,3.5,setosa", "4.9,3,versicolor"],  # R writes 5.0 as 5
        ["1e-05,2,setosa", "3.5E2,4,versicolor"],  # pandas' float parser reads these
        ["1,2,Iris-versicolor", "3,4,Iris-virginica-with-a-long-name"],
        ["1.5,2.5,0.25", "3.5,4.5,1.75"],  # a regression target
    ],
)
def test_numbers_written_in_many_ways_stay_on_the_fast_engine(
    reference_engine_calls: list[str], rows: list[str]
) -> None:
    data = ("a,b,label\n" + "\n".join(rows * 4) + "\n").encode()

    fast = formatted(data, UploadOptions())

    assert reference_engine_calls == []
    assert fast == by_reference(data, UploadOptions())
