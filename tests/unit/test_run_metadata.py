"""A run's metadata.json: written by the formatter, read by predict (dropfit.run_metadata)."""

from __future__ import annotations

import json

import pytest
from dropfit.labels import LabelMap
from dropfit.run_metadata import (
    MetadataUnreadable,
    RunMetadata,
    RunMetadataStore,
    metadata_key,
)

from tests.metadata_fixture import iris_metadata

IRIS = iris_metadata()


class Objects:
    """The S3 adapter's read_object over a dict, counting reads."""

    def __init__(self, objects: dict[tuple[str, str], bytes]) -> None:
        self.objects = objects
        self.reads: list[str] = []

    def read_object(self, bucket: str, key: str) -> bytes | None:
        self.reads.append(key)
        return self.objects.get((bucket, key))


def test_metadata_round_trips_through_its_json() -> None:
    assert RunMetadata.from_json(IRIS.to_json()) == IRIS


def test_names_in_any_script_are_stored_as_utf8_not_escapes() -> None:
    wide = RunMetadata.from_json(IRIS.to_json().replace(b"Species", "種類".encode()))

    assert wide.label_column == "種類"
    assert "種類".encode() in wide.to_json()


def test_fields_a_newer_formatter_adds_are_ignored_by_an_older_reader() -> None:
    document = json.loads(IRIS.to_json()) | {"report": {"plots": [1.0, 2.0]}}

    assert RunMetadata.from_json(json.dumps(document).encode()) == IRIS


@pytest.mark.parametrize("data", [b"", b"[1, 2]", b'{"feature_names": ["a"]}', b"\xff"])
def test_a_document_that_is_not_a_runs_metadata_is_refused(data: bytes) -> None:
    with pytest.raises(MetadataUnreadable, match="not a run's metadata"):
        RunMetadata.from_json(data)


def test_a_classifier_maps_ints_to_classes_a_regressor_has_no_map() -> None:
    regressor = RunMetadata.from_json(
        json.dumps(json.loads(IRIS.to_json()) | {"predictor_type": "regressor"}).encode()
    )

    assert IRIS.label_map() == LabelMap(("setosa", "versicolor", "virginica"))
    assert regressor.label_map() is None


def test_the_store_reads_the_runs_own_key_and_none_when_it_has_none() -> None:
    key = metadata_key("datasets/", "iris", "dropfit-iris-0a0a0a0a0a0a")
    objects = Objects({("bucket", key): IRIS.to_json()})
    store = RunMetadataStore(objects, "bucket", "datasets/")

    assert store.read("iris", "dropfit-iris-0a0a0a0a0a0a") == IRIS
    assert store.read("iris", "dropfit-iris-1b1b1b1b1b1b") is None
    assert objects.reads == [
        "datasets/iris/dropfit-iris-0a0a0a0a0a0a/metadata.json",
        "datasets/iris/dropfit-iris-1b1b1b1b1b1b/metadata.json",
    ]


def test_a_run_without_a_fitted_transform_sends_features_as_they_are() -> None:
    assert IRIS.transform() is None
    assert json.loads(IRIS.to_json())["preprocessing"]["scale"] == {
        "method": "none",
        "chosen_by": "option",
    }
    assert IRIS.hyperparameters()["feature_dim"] == "4"
