"""Preprocessing fitted on the training rows, and "no skew": for every test row, the vector the
predict function sends is, text for text, the row the test channel holds."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from dropfit.dataset import format_dataset
from dropfit.errors import InvalidUpload
from dropfit.options import UploadOptions
from dropfit.prediction import to_endpoint_csv
from dropfit.run_metadata import RunMetadata
from dropfit.serving import _Request
from dropfit.split import holdout_mask, split_indices


def _upload(rows: int = 200, seed: int = 3) -> bytes:
    """Numbers on very different scales, a text feature, a few empty cells, a text label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "size": rng.normal(1000, 300, rows).round(2),
            "ratio": rng.uniform(0, 1, rows).round(4),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "kind": rng.choice(["a", "b"], rows),
        }
    )
    frame.loc[[5, 17, 40], "ratio"] = np.nan
    return frame.to_csv(index=False).encode()


def _metadata(formatted_metadata: RunMetadata) -> RunMetadata:
    """metadata.json as predict reads it back."""
    return RunMetadata.from_json(formatted_metadata.to_json())


OPTIONS = {"label": "kind", "scale": "standard", "encode": "onehot", "missing": "median"}


def test_every_test_row_predict_sends_is_the_row_the_test_channel_holds() -> None:
    data = _upload()
    formatted = format_dataset(data, UploadOptions(**OPTIONS), 1)  # type: ignore[arg-type]
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    test_rows = frame[holdout_mask(len(frame), 0.25)]  # in upload order, as the channel
    instances = [
        {
            name: (None if value == "" else value if name == "colour" else float(value))
            for name, value in row.items()
            if name != "kind"
        }
        for _, row in test_rows.iterrows()
    ]

    metadata = _metadata(formatted.metadata)
    body = json.dumps({"instances": instances})
    request = _Request.of(metadata, metadata.transform(), body, "application/json")

    channel = [line.split(",", 1)[1] for line in formatted.test_csv.decode().splitlines()]
    assert request.payload.decode().splitlines() == channel
    assert request.transformed


def test_the_transform_is_fitted_on_the_training_rows_only() -> None:
    data = _upload()
    formatted = format_dataset(data, UploadOptions(**OPTIONS), 1)  # type: ignore[arg-type]
    frame = pd.read_csv(io.BytesIO(data))
    train, _ = split_indices(len(frame), 0.25)
    training = frame.iloc[train]

    columns = {c["name"]: c for c in formatted.metadata.preprocessing["columns"]}
    assert columns["size"]["offset"] == pytest.approx(training["size"].mean(), rel=1e-12)
    assert columns["size"]["divisor"] == pytest.approx(training["size"].std(ddof=0), rel=1e-12)
    assert columns["ratio"]["median"] == training["ratio"].median()
    assert columns["colour"]["categories"] == ["blue", "green", "red"]
    assert formatted.metadata.feature_dim == 5  # size, ratio, 3 colours
    assert formatted.metadata.preprocessing["missing"] == {
        "method": "median",
        "rows_dropped": 0,
        "values_filled": 3,
    }


def test_an_unseen_category_is_all_zeros_and_the_answer_says_so() -> None:
    formatted = format_dataset(_upload(), UploadOptions(**OPTIONS), 1)  # type: ignore[arg-type]
    body = json.dumps({"instances": [{"size": 1000.0, "ratio": None, "colour": "purple"}]})

    metadata = _metadata(formatted.metadata)
    request = _Request.of(metadata, metadata.transform(), body, "application/json")

    [vector] = [line.split(",") for line in request.payload.decode().splitlines()]
    assert vector[2:] == ["0.0", "0.0", "0.0"]
    assert request.notes[0].shown() == {
        "unseen_categories": {"colour": "purple"},
        "imputed": ["ratio"],
    }


def test_missing_drop_leaves_out_rows_with_an_empty_cell_and_counts_them() -> None:
    formatted = format_dataset(
        _upload(), UploadOptions(label="kind", encode="onehot", missing="drop"), 1
    )

    assert formatted.metadata.preprocessing["missing"]["rows_dropped"] == 3
    assert formatted.metadata.n_rows == 197
    lines = (formatted.train_csv + formatted.test_csv).decode().splitlines()
    assert len(lines) == 197


def test_text_features_are_refused_unless_one_hot_encoded() -> None:
    with pytest.raises(InvalidUpload) as error:
        format_dataset(_upload(), UploadOptions(label="kind", missing="median"), 1)

    assert error.value.message == (
        "Feature column 'colour' is not numeric; features must be numbers, or upload with "
        "encode=onehot to turn its categories into 0/1 features."
    )


def test_missing_values_are_refused_unless_asked_for() -> None:
    with pytest.raises(InvalidUpload) as error:
        format_dataset(_upload(), UploadOptions(label="kind", encode="onehot", scale="minmax"), 1)

    assert error.value.message == (
        "Column 'ratio' is empty in data row 6. Missing values are not imputed unless asked: fill "
        "them in, or upload with missing=drop (drop such rows) or missing=median (the training "
        "rows' median)."
    )


def test_a_missing_label_is_never_filled_in() -> None:
    data = b"x,y\n1,a\n2,\n3,b\n4,a\n5,b\n6,a\n"

    with pytest.raises(InvalidUpload) as error:
        format_dataset(data, UploadOptions(label="y", missing="median"), 1)

    assert error.value.message == (
        "Label column 'y' is empty in data row 2. A label is never filled in: fill it, remove "
        "the row, or upload with missing=drop."
    )


def test_default_options_keep_the_channels_as_uploaded(iris_csv: bytes) -> None:
    plain = format_dataset(iris_csv, UploadOptions(), 1)

    assert plain.metadata.transform() is None
    assert b"5.1,3.5,1.4,0.2" in plain.train_csv + plain.test_csv
    assert to_endpoint_csv([[5.1, 3.5, 1.4, 0.2]]) == b"5.1,3.5,1.4,0.2"
