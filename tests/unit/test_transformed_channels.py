"""Transformed channels, the fast way: the fast engine (dropfit.plaintransform) writes what the
reference engine (dropfit.preprocessed.reference_plan) writes, byte for byte, and its parts
(dropfit.plainnumbers, dropfit.floattext) agree with the plain Python they replace."""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import pandas as pd
import pytest
from dropfit import plaintransform, preprocessed
from dropfit.csvsource import bytes_source
from dropfit.dataset import DatasetPlan, TrainLayout, _Buffer, format_dataset
from dropfit.floattext import rows_text, values_text
from dropfit.options import UploadOptions, parse_options
from dropfit.plainnumbers import padded, parse
from dropfit.preprocessed import GROUP, Moments
from dropfit.preprocessing import float32_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# --- numbers as text --------------------------------------------------------------------------

EDGES = [0.0, -0.0, 1.0, -1.0, 16777215.0, 16777216.0, 0.1, 1e-45, 1.5e-45, 1e-40, 3.4e38]
EDGES += [3.5e38, -1e39, 9.99999999, 99999999.5, 1e8, 123456789.0, math.inf, -math.inf, math.nan]


def _texts(values: np.ndarray) -> list[str]:
    words, keep = values_text(values.reshape(-1, 1))
    slots = words.view(np.uint8).reshape(-1, 16)
    kept = keep.view(np.uint8).reshape(-1, 16).astype(bool)
    return [bytes(s[k]).decode().rstrip("\n") for s, k in zip(slots, kept, strict=True)]


def _float32(value: float) -> float:
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_the_formatter_writes_each_value_as_predict_does(values: list[float]) -> None:
    texts = _texts(np.array(values + EDGES))

    assert texts == [float32_text(v) for v in values + EDGES]


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_the_text_brings_back_the_float32_k_nn_reads(value: float) -> None:
    [text] = _texts(np.array([value]))

    assert np.float32(text) == np.float32(value)  # a float32 reader
    assert np.float32(float(text)) == np.float32(value)  # float64 first, then float32
    assert len(text) <= 15


def test_integers_and_one_hot_values_keep_their_short_form() -> None:
    assert _texts(np.array([0.0, 1.0, -3.0, 1234567.0])) == ["0.0", "1.0", "-3.0", "1234567.0"]
    assert _texts(np.array([0.5, -1 / 3])) == ["5e-01", "-3.33333343e-01"]


def test_rows_are_label_then_values_then_a_line_feed() -> None:
    prefix = np.frombuffer(b"2,\0" + b"10,", np.uint8).reshape(2, 3)
    data, ends = rows_text(prefix, prefix != 0, np.array([[0.5, 1.0], [-2.0, 0.25]]))

    assert data.tobytes() == b"2,5e-01,1.0\n10,-2.0,2.5e-01\n"
    assert ends.tolist() == [12, 28]


# --- plain decimals as float() reads them -------------------------------------------------------

DECIMALS = st.from_regex(r"\A[+-]?([0-9]{0,12}\.[0-9]{1,12}|[0-9]{1,20}\.?)\Z")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(DECIMALS, st.sampled_from(["1e5", "-2.5E-3", "-0", "+.5", "5."])), min_size=1
    )
)
def test_plain_decimals_are_read_as_float_reads_them(texts: list[str]) -> None:
    line = np.frombuffer((",".join(texts) + "\n").encode(), np.uint8)
    separators = np.flatnonzero((line == ord(",")) | (line == ord("\n")))
    starts = np.concatenate([[0], separators[:-1] + 1])

    values = parse(padded(line), starts, separators)

    expected = [float(t) for t in texts]
    assert values.tolist() == expected
    assert np.signbit(values).tolist() == [math.copysign(1, v) < 0 for v in expected]


# --- the same figures, whatever the batches ------------------------------------------------------


def test_moments_do_not_depend_on_how_the_values_come() -> None:
    values = np.random.default_rng(1).normal(1e6, 3.0, 3 * GROUP + 17)
    whole, batched = Moments(), Moments()

    whole.add(values)
    for batch in np.array_split(values, [5, 100, GROUP + 3, 2 * GROUP]):
        batched.add(batch)

    figures = [(m.count, m.mean, m.m2, m.low, m.high) for m in (whole.close(), batched.close())]
    assert figures[0] == figures[1]
    assert whole.mean == pytest.approx(values.mean(), rel=1e-15)
    assert whole.m2 / whole.count == pytest.approx(values.var(), rel=1e-9)


# --- the fast engine writes what the reference writes --------------------------------------------


def _write(plan: DatasetPlan | None) -> tuple[str, object, bytes, bytes]:
    assert plan is not None
    train, test = _Buffer(), _Buffer()
    metadata = plan.write([train], test)
    return plan.engine, metadata, train.value(), test.value()


@st.composite
def plain_uploads(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    rows = draw(st.integers(12, 80))
    features = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            f"x{j}": rng.normal(0, 10.0 ** draw(st.integers(-3, 6)), rows).round(
                draw(st.integers(0, 7))
            )
            for j in range(features)
        }
    )
    regressor = draw(st.booleans())
    classes = draw(st.sampled_from([["a", "b", "c"], ["1", "2", "3.0"]]))
    label = rng.normal(5, 2, rows).round(2) if regressor else rng.choice(classes, rows)
    frame.insert(draw(st.integers(0, features)), "y", label)
    if not regressor:  # every class at least twice
        frame.loc[:5, "y"] = [c for c in classes for _ in range(2)]
    options = {
        "scale": draw(st.sampled_from(["standard", "minmax", "auto", "none"])),
        "k": draw(st.sampled_from(["1", "3", "auto"])),
        "label": "y",
        "test_fraction": draw(st.sampled_from(["0.25", "0.4"])),
    }
    if options["scale"] == "none":
        options["missing"] = "median"
    text = frame.to_csv(index=False, quoting=draw(st.sampled_from([0, 2])))  # 2: all quoted
    text = draw(st.sampled_from([text, text.replace("\n", "\r\n"), text.replace("\n", "\n\n", 9)]))
    return text.encode(), options


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plain_uploads())
def test_the_fast_engine_writes_what_the_reference_engine_writes(
    upload: tuple[bytes, dict[str, str]],
) -> None:
    data, raw = upload
    options = parse_options(raw)
    args = (bytes_source(data), options, 1, TrainLayout())

    fast = _write(plaintransform.plan(*args))
    reference = _write(preprocessed.reference_plan(*args))

    assert fast[0] == "plain-transform"
    assert fast[1:] == reference[1:]


def test_a_large_upload_read_in_pieces_on_threads_gets_the_reference_figures_and_bytes() -> None:
    rng = np.random.default_rng(7)
    rows = 3 * GROUP * 4  # several pieces of ~1 MiB, several moment groups per column
    frame = pd.DataFrame({f"x{j}": rng.normal(1e3, 10.0**j, rows).round(4) for j in range(4)})
    frame["kind"] = rng.choice(["p", "q"], rows)
    options = parse_options({"scale": "standard"})
    args = (bytes_source(frame.to_csv(index=False).encode()), options, 1, TrainLayout())

    fast = _write(plaintransform.plan(*args))
    reference = _write(preprocessed.reference_plan(*args))

    assert fast[0] == "plain-transform" and len(fast[2]) > 2 * 1024 * 1024
    assert fast[1:] == reference[1:]


def test_uploads_the_fast_engine_cannot_read_take_the_reference_engine() -> None:
    data = b"size,colour,kind\n1.5,red,a\n2.5,,b\n3.5,blue,a\n4.5,red,b\n5.5,blue,a\n6.5,red,b\n"
    options = UploadOptions(label="kind", scale="standard", encode="onehot", missing="median")

    formatted = format_dataset(data, options, 1)
    plain = format_dataset(
        pd.read_csv(io.BytesIO(data)).drop(columns="colour").to_csv(index=False).encode(),
        UploadOptions(label="kind", scale="standard"),
        1,
    )

    assert plaintransform.plan(bytes_source(data), options, 1, TrainLayout()) is None
    assert formatted.metadata.feature_dim == 3  # size and two colours: the reference's one-hot
    assert plain.metadata.feature_dim == 1
