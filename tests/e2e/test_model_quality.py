"""Models worth serving, through the local stack: with scale=auto and k=auto, the served model
scores as scikit-learn's scaler + KNeighbors + GridSearchCV pipeline on the same split (within
0.02 accuracy, or 5 % MSE), on datasets scikit-learn ships; the quality gate keeps a worse model
from replacing the serving one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import datasets
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from threadpoolctl import threadpool_limits

from .stack import IRIS, Local

pytestmark = pytest.mark.e2e

DATASETS = {
    # name: (label, is a classifier, extra options)
    "wine": ("cultivar", True, {}),
    "breast_cancer": ("diagnosis", True, {}),
    "diabetes": ("progression", False, {"predictor_type": "regressor"}),
}


def _reference(x_train: Any, y_train: Any, x_test: Any, classifier: bool) -> Any:
    """scikit-learn's pipeline: a scaler (or none) and k chosen by GridSearchCV on the
    training rows, refitted on all of them."""
    knn = KNeighborsClassifier() if classifier else KNeighborsRegressor()
    with threadpool_limits(1):
        grid = GridSearchCV(
            Pipeline([("scaler", "passthrough"), ("knn", knn)]),
            {
                "knn__n_neighbors": list(range(1, 31)),
                "scaler": ["passthrough", StandardScaler(), MinMaxScaler()],
            },
            cv=5,
            scoring=None if classifier else "neg_mean_squared_error",
        ).fit(x_train, y_train)
        return grid.predict(x_test)


@pytest.fixture(scope="module")
def uploaded(local: Local) -> dict[str, Any]:
    """The three datasets uploaded at once, with scale=auto and k=auto."""
    frames = {}
    for name, (label, _, extra) in DATASETS.items():
        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        frame = frame.rename(columns={"target": label})
        frames[name] = frame
        metadata = {"label": label, "scale": "auto", "k": "auto", **extra}
        local.upload(
            f"quality-{name.replace('_', '-')}.csv", frame.to_csv(index=False).encode(), metadata
        )
    return frames


@pytest.mark.parametrize("name", list(DATASETS))
def test_scale_auto_k_auto_scores_as_scikit_learns_pipeline(
    local: Local, uploaded: dict[str, Any], name: str, record_property: Any
) -> None:
    label, classifier, _ = DATASETS[name]
    model = f"quality-{name.replace('_', '-')}"
    description = local.wait_for_new_run(model)
    assert description["status"] == "ready", description
    frame = uploaded[name]
    features = [c for c in frame.columns if c != label]
    x, y = frame[features].to_numpy(), frame[label].to_numpy(dtype=float)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0)

    # The caller sends raw values with the original column names; predict transforms them.
    instances = [dict(zip(features, map(float, row), strict=True)) for row in x_test]
    response = local.client.post(f"/models/{model}/predict", json={"instances": instances})
    assert response.status == 200, response.text
    served = np.array([float(p["label"]) for p in response.json()["predictions"]])
    reference = _reference(x_train, y_train, x_test, classifier)

    if classifier:
        ours, theirs = accuracy_score(y_test, served), accuracy_score(y_test, reference)
        record_property("accuracy", {"dropfit": ours, "scikit-learn": theirs})
        print(f"{name}: accuracy dropfit {ours:.4f}, scikit-learn {theirs:.4f}")
        assert ours >= theirs - 0.02
    else:
        ours, theirs = mean_squared_error(y_test, served), mean_squared_error(y_test, reference)
        record_property("mse", {"dropfit": ours, "scikit-learn": theirs})
        print(f"{name}: MSE dropfit {ours:.1f}, scikit-learn {theirs:.1f}")
        assert ours <= theirs * 1.05
    run = description["deployed_run"]
    assert run["options"]["scale"] == "auto" and run["options"]["k"] == "auto"


def test_a_worse_model_is_rejected_and_the_serving_one_stays(local: Local) -> None:
    local.upload("gated.csv", IRIS)
    serving = local.wait_for_new_run("gated")
    assert serving["status"] == "ready", serving
    # k=112 votes over every training point: the majority class, about a third right
    local.upload("gated.csv", IRIS, {"k": "112"})
    description = local.wait_for_new_run("gated", serving["latest_run"]["run"])

    latest = description["latest_run"]
    assert latest["status"] == "REJECTED", latest
    assert "by more than the margin" in latest["reason"]
    assert latest["gate"]["serving_run"] == serving["deployed_run"]["run"]
    assert description["deployed_run"]["run"] == serving["deployed_run"]["run"]
    assert description["status"] == "ready"
