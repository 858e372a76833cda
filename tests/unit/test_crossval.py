"""k and the scaling chosen by cross-validation in numpy choose as scikit-learn's GridSearchCV."""

from __future__ import annotations

import numpy as np
import pytest
from dropfit import crossval
from dropfit.dataset import format_dataset
from dropfit.options import UploadOptions
from sklearn import datasets
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from threadpoolctl import threadpool_limits

CASES = [("wine", True), ("breast_cancer", True), ("diabetes", False)]


@pytest.mark.parametrize(
    ("labels", "classifier"),
    [([0, 0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 1] * 3, True), (list(range(23)), False)],
)
def test_folds_are_scikit_learns(labels: list[int], classifier: bool) -> None:
    y = np.array(labels, dtype=float)
    splitter = StratifiedKFold(5) if classifier else KFold(5)
    expected = np.empty(len(y), dtype=int)
    for fold, (_, test) in enumerate(splitter.split(np.zeros((len(y), 1)), y)):
        expected[test] = fold

    assert crossval.fold_of_each_row(y, classifier).tolist() == expected.tolist()


@pytest.mark.parametrize(("name", "classifier"), CASES)
def test_the_search_chooses_what_grid_search_chooses(name: str, classifier: bool) -> None:
    data = getattr(datasets, f"load_{name}")()
    x_train, _, y_train, _ = train_test_split(
        data.data, data.target.astype(float), test_size=0.25, random_state=0
    )
    knn = KNeighborsClassifier() if classifier else KNeighborsRegressor()
    # 450 small fits: BLAS threads only fight over the cores (minutes instead of seconds)
    with threadpool_limits(1):
        grid = GridSearchCV(
            Pipeline([("scaler", "passthrough"), ("knn", knn)]),
            {
                "knn__n_neighbors": list(crossval.K_CANDIDATES),
                "scaler": ["passthrough", StandardScaler(), MinMaxScaler()],
            },
            cv=5,
            scoring=None if classifier else "neg_mean_squared_error",
        ).fit(x_train, y_train)
        found = crossval.search(
            x_train, y_train, classifier, crossval.K_CANDIDATES, crossval.SCALES
        )

    scaler = {"passthrough": "none", "StandardScaler()": "standard", "MinMaxScaler()": "minmax"}
    assert found.chosen_k == grid.best_params_["knn__n_neighbors"]
    assert found.scale == scaler[str(grid.best_params_["scaler"])]
    best = max(found.scores) if classifier else -min(found.scores)
    assert best == pytest.approx(grid.best_score_, rel=1e-9)


def test_k_auto_records_its_curve_in_the_metadata(iris_csv: bytes) -> None:
    formatted = format_dataset(iris_csv, UploadOptions(k="auto"), 1)

    search = formatted.metadata.k_search
    assert search is not None
    assert search["candidates"] == list(crossval.K_CANDIDATES)
    assert len(search["scores"]) == len(search["candidates"])
    assert (search["metric"], search["folds"], search["sampled_rows"]) == ("accuracy", 5, 112)
    assert formatted.metadata.k == search["chosen"]
    assert formatted.metadata.hyperparameters()["k"] == str(search["chosen"])


def test_k_auto_keeps_the_channels_of_the_fast_engine(iris_csv: bytes) -> None:
    fixed = format_dataset(iris_csv, UploadOptions(), 1)
    auto = format_dataset(iris_csv, UploadOptions(k="auto"), 1)

    assert (auto.train_csv, auto.test_csv) == (fixed.train_csv, fixed.test_csv)


def test_a_large_upload_is_searched_on_a_sample() -> None:
    rng = np.random.default_rng(0)
    rows = 6000
    x = rng.normal(size=(rows, 3)).round(3)
    y = (x[:, 0] > 0).astype(int)
    data = "a,b,c,y\n" + "\n".join(f"{a},{b},{c},{t}" for (a, b, c), t in zip(x, y, strict=True))

    formatted = format_dataset(data.encode(), UploadOptions(k="auto"), 1)

    assert formatted.metadata.k_search is not None
    assert formatted.metadata.k_search["sampled_rows"] == crossval.MAX_ROWS
