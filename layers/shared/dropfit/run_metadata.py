"""A run's ``metadata.json``: what its model expects; the formatter writes it, predict reads it.

The run record in DynamoDB stays small whatever the upload (an item holds at most 400 KB, and
1,000 feature names of 128 CJK characters are ~384 KB alone); the feature list, the label map and
anything else a model needs to answer live here, next to the run's channels, at
``datasets/<model>/<run>/metadata.json``. A run never changes, so a reader may keep what it read
for as long as it likes (the predict function keeps it for the life of its container).

Readers ignore fields they do not know, so a newer formatter can add some (e.g. preprocessing
parameters) without breaking a predict function deployed before it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol, Self

from dropfit.labels import LabelMap
from dropfit.preprocessing import Preprocessing

METADATA_FILE = "metadata.json"
CONTENT_TYPE = "application/json"


def run_prefix(datasets_prefix: str, model: str, run: str) -> str:
    """Where a run's channels and metadata live: ``datasets/<model>/<run>/``."""
    return f"{datasets_prefix}{model}/{run}/"


def metadata_key(datasets_prefix: str, model: str, run: str) -> str:
    return f"{run_prefix(datasets_prefix, model, run)}{METADATA_FILE}"


class MetadataUnreadable(RuntimeError):
    """A metadata.json that is not the JSON object this module writes (never a user's doing)."""


@dataclass(frozen=True, slots=True)
class RunMetadata:
    """What a run's model expects; the formatter decides it from the upload (pass 1)."""

    label_column: str
    feature_names: list[str]
    predictor_type: str
    classes: list[str] | None  # a classifier's classes, in the order of their ints
    n_rows: int
    n_train: int
    n_test: int
    test_fraction: float
    random_state: int
    k: int
    sample_size: int
    # How many numbers the model reads per instance: the features, or their transform's width.
    feature_dim: int = 0
    # The transform fitted on the training rows (dropfit.preprocessing.Preprocessing.to_json()):
    # {"scale": {"method", "chosen_by", ["scores"]}, "encode": {"method"},
    #  "missing": {"method", "rows_dropped", "values_filled"}, "columns": [...]}
    preprocessing: dict[str, Any] = field(default_factory=lambda: Preprocessing().to_json())
    # k=auto: {"candidates", "scores", "metric", "folds", "chosen", "sampled_rows"}
    k_search: dict[str, Any] | None = None
    test_labels: dict[str, float] | None = None  # a regressor's: {"mean", "variance"} (for R²)

    def __post_init__(self) -> None:
        if not self.feature_dim:
            object.__setattr__(self, "feature_dim", len(self.feature_names))

    def to_json(self) -> bytes:
        shown = asdict(self)
        for optional in ("k_search", "test_labels"):
            if shown[optional] is None:
                del shown[optional]
        return json.dumps(shown, ensure_ascii=False, indent=2).encode()

    def transform(self) -> Preprocessing | None:
        """The transform predict applies before InvokeEndpoint; None when features go as sent."""
        if not self.preprocessing.get("columns"):
            return None  # the default options: cheap to tell, on every request
        return Preprocessing.from_json(self.preprocessing)

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        """Parse a metadata.json; unknown fields are ignored (a newer writer may add some)."""
        try:
            document: Any = json.loads(data)
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in document.items() if k in known})
        except (ValueError, TypeError, AttributeError) as error:
            raise MetadataUnreadable(f"metadata.json is not a run's metadata: {error}") from None

    def hyperparameters(self) -> dict[str, str]:
        """The k-NN hyperparameters the data decides."""
        # sample_size is the total over all training instances: each samples its share of it.
        return {
            "feature_dim": str(self.feature_dim),
            "k": str(self.k),
            "sample_size": str(self.sample_size),
            "predictor_type": self.predictor_type,
        }

    def label_map(self) -> LabelMap | None:
        """A classifier's map from the algorithm's ints to class names; None for a regressor."""
        if self.predictor_type == "classifier" and self.classes:
            return LabelMap(tuple(self.classes))
        return None


class ObjectReader(Protocol):
    def read_object(self, bucket: str, key: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class RunMetadataStore:
    """Reads runs' metadata.json from the data bucket (through the S3 adapter)."""

    storage: ObjectReader
    bucket: str
    datasets_prefix: str

    def read(self, model: str, run: str) -> RunMetadata | None:
        """The run's metadata, or None if it has none (not formatted yet, or it failed before)."""
        data = self.storage.read_object(self.bucket, metadata_key(self.datasets_prefix, model, run))
        return RunMetadata.from_json(data) if data is not None else None
