"""The metadata.json the formatter writes for iris, for tests and benchmarks that need a run's."""

from __future__ import annotations

from typing import Any

from dropfit.run_metadata import RunMetadata

IRIS_FEATURES = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"]
IRIS_CLASSES = ["setosa", "versicolor", "virginica"]


def iris_metadata(**fields: Any) -> RunMetadata:
    """Iris formatted with the defaults (150 rows, 112 to train, 38 to test, k=1); ``fields``
    replace its own (another label column, other features or classes, a fitted transform)."""
    iris: dict[str, Any] = {
        "label_column": "Species",
        "feature_names": IRIS_FEATURES,
        "predictor_type": "classifier",
        "classes": IRIS_CLASSES,
        "n_rows": 150,
        "n_train": 112,
        "n_test": 38,
        "test_fraction": 0.25,
        "random_state": 0,
        "k": 1,
        "sample_size": 112,
    }
    return RunMetadata(**(iris | fields))
