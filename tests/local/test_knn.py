"""The k-NN engine: the tutorial's figures, agreement with scikit-learn, the built-in's rules."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, NearestNeighbors

from dropfit_local import knn, metrics

from .conftest import Iris, hyperparameters


def build(features: np.ndarray, labels: np.ndarray, **overrides: str) -> knn.KnnModel:
    params = hyperparameters(feature_dim=str(features.shape[1]), sample_size="100000") | overrides
    return knn.train(knn.KnnHyperparameters.parse(params), features, labels)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    train = rng.normal(size=(500, 6)).astype(np.float32)
    queries = rng.normal(size=(200, 6)).astype(np.float32)
    labels = rng.integers(0, 3, size=500).astype(np.float32)
    return train, labels, queries


# ------------------------------------------------------------------------------ tutorial


def test_iris_tutorial_k1_classifier_scores_37_of_38(iris: Iris) -> None:
    model = build(iris.train_features, iris.train_labels)

    scores = model.evaluate(iris.test_features, iris.test_labels)

    assert model.size == 112
    assert scores["accuracy"] == 0.9736842105263158
    assert scores["macro_f_1.000"] == pytest.approx(0.97170347, abs=1e-6)
    predicted = model.predict(iris.test_features).predicted_label
    assert scores["macro_f_1.000"] == pytest.approx(
        f1_score(iris.test_labels, predicted, average="macro"), abs=1e-12
    )


def test_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(7)
    truth, guess = rng.integers(0, 4, 300), rng.integers(0, 5, 300)  # class 4 never occurs
    values, estimates = rng.normal(size=300), rng.normal(size=300)

    assert metrics.accuracy(truth, guess) == pytest.approx(accuracy_score(truth, guess))
    assert metrics.macro_f1(truth, guess) == pytest.approx(
        f1_score(truth, guess, average="macro", zero_division=0)
    )
    assert metrics.mse(values, estimates) == pytest.approx(mean_squared_error(values, estimates))


# ------------------------------------------------------------------- versus scikit-learn


@pytest.mark.parametrize("k", [1, 3, 10])
def test_l2_neighbours_and_votes_match_scikit_learn_brute_force(blobs, k: int) -> None:
    train, labels, queries = blobs
    model = build(train, labels, k=str(k))
    reference = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(train, labels)

    found = model.predict(queries)

    distances, indices = reference.kneighbors(queries)
    np.testing.assert_array_equal(found.neighbors.indices, indices)
    np.testing.assert_allclose(found.neighbors.distances, distances**2, rtol=1e-4, atol=1e-5)
    # scikit-learn breaks count ties towards the smaller label, we towards the nearest one:
    # compare the rows whose majority is unambiguous.
    counts = np.stack([(found.neighbors.labels == c).sum(axis=1) for c in range(3)], axis=1)
    clear = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) == 1
    np.testing.assert_array_equal(found.predicted_label[clear], reference.predict(queries)[clear])
    assert clear.sum() > 100


def test_regressor_predicts_the_mean_label_like_scikit_learn(blobs) -> None:
    train, _, queries = blobs
    targets = (train @ np.arange(1, 7, dtype=np.float32)).astype(np.float32)
    model = build(train, targets, k="5", predictor_type="regressor")
    reference = KNeighborsRegressor(n_neighbors=5, algorithm="brute").fit(train, targets)

    predicted = model.predict(queries).predicted_label

    np.testing.assert_allclose(predicted, reference.predict(queries), rtol=1e-5, atol=1e-5)


def test_cosine_metric_matches_scikit_learn_cosine_distance(blobs) -> None:
    train, labels, queries = blobs
    model = build(train, labels, k="4", index_metric="COSINE")
    reference = NearestNeighbors(n_neighbors=4, metric="cosine", algorithm="brute").fit(train)

    found = model.kneighbors(queries)

    distances, indices = reference.kneighbors(queries)
    np.testing.assert_array_equal(found.indices, indices)
    np.testing.assert_allclose(found.distances, 1 - distances, atol=1e-5)  # similarities


def test_inner_product_metric_returns_the_largest_dot_products_first(blobs) -> None:
    train, labels, queries = blobs
    model = build(train, labels, k="4", index_metric="INNER_PRODUCT")

    found = model.kneighbors(queries)

    products = queries.astype(np.float64) @ train.T.astype(np.float64)
    expected = np.argsort(-products, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(found.indices, expected)
    np.testing.assert_allclose(
        found.distances, np.take_along_axis(products, expected, 1), rtol=1e-5
    )
    assert (np.diff(found.distances, axis=1) <= 0).all()


def test_distances_are_listed_nearest_first_for_l2(blobs) -> None:
    train, labels, queries = blobs

    found = build(train, labels, k="7").kneighbors(queries)

    assert (np.diff(found.distances, axis=1) >= 0).all()
    np.testing.assert_array_equal(found.labels, labels[found.indices])


def test_batched_search_gives_the_same_answer(blobs, monkeypatch: pytest.MonkeyPatch) -> None:
    train, labels, queries = blobs
    whole = build(train, labels, k="5").predict(queries)

    monkeypatch.setattr(knn, "_BLOCK_ELEMENTS", 1_000)  # two queries per block
    batched = build(train, labels, k="5").predict(queries)

    np.testing.assert_array_equal(batched.neighbors.indices, whole.neighbors.indices)
    np.testing.assert_array_equal(batched.predicted_label, whole.predicted_label)


def test_tiled_search_gives_the_same_answer(blobs, monkeypatch: pytest.MonkeyPatch) -> None:
    train, labels, queries = blobs
    whole = build(train, labels, k="5").kneighbors(queries)

    monkeypatch.setattr(knn, "_TILE_POINTS", 7)  # many tiles, merged into a running top k
    monkeypatch.setattr(knn, "_BLOCK_ELEMENTS", 7)
    tiled = build(train, labels, k="5").kneighbors(queries)

    np.testing.assert_array_equal(tiled.indices, whole.indices)
    np.testing.assert_array_equal(tiled.distances, whole.distances)


def test_tiled_search_keeps_the_lowest_rows_among_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    points = np.zeros((20, 2), np.float32)
    monkeypatch.setattr(knn, "_TILE_POINTS", 3)
    found = build(points, np.zeros(20, np.float32), k="4").kneighbors(np.ones((2, 2), np.float32))

    assert found.indices.tolist() == [[0, 1, 2, 3], [0, 1, 2, 3]]


# ------------------------------------------------------------------------------ the rules


def test_vote_tie_goes_to_the_label_with_the_nearest_member() -> None:
    points = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    labels = np.array([1, 0, 0, 1], np.float32)  # 2 votes each; label 1 owns the nearest

    predicted = build(points, labels, k="4").predict(np.array([[0.0]], np.float32))

    assert predicted.predicted_label.tolist() == [1.0]


def test_vote_tie_at_equal_distance_goes_to_the_smaller_label() -> None:
    points = np.array([[-1.0], [1.0]], np.float32)
    labels = np.array([2, 1], np.float32)

    predicted = build(points, labels, k="2").predict(np.array([[0.0]], np.float32))

    assert predicted.predicted_label.tolist() == [1.0]


def test_equidistant_points_at_the_k_boundary_are_taken_in_training_order() -> None:
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    labels = np.arange(12, dtype=np.float32)

    found = build(ring, labels, k="3").kneighbors(np.zeros((5, 2), np.float32))

    assert found.indices.tolist() == [[0, 1, 2]] * 5


def test_sample_size_draws_that_many_rows_deterministically(iris: Iris) -> None:
    first = build(iris.train_features, iris.train_labels, sample_size="50")
    again = build(iris.train_features, iris.train_labels, sample_size="50")

    assert first.size == 50
    np.testing.assert_array_equal(first.points, again.points)
    expected = np.sort(np.random.default_rng(knn.SAMPLE_SEED).choice(112, 50, replace=False))
    np.testing.assert_array_equal(first.points, iris.train_features[expected])


def test_sample_size_larger_than_the_data_keeps_every_row_once(iris: Iris) -> None:
    model = build(iris.train_features, iris.train_labels, sample_size="1000")

    np.testing.assert_array_equal(model.points, iris.train_features)


def test_k_larger_than_the_sample_is_a_training_data_error(iris: Iris) -> None:
    with pytest.raises(knn.TrainingDataError, match=r"k \(20\) is larger than .* \(10\)"):
        build(iris.train_features, iris.train_labels, sample_size="10", k="20")


def test_feature_dim_must_match_the_feature_columns(iris: Iris) -> None:
    params = knn.KnnHyperparameters.parse(hyperparameters(feature_dim="5"))

    with pytest.raises(knn.TrainingDataError, match=r"feature_dim hyperparameter \(5\).*\(4;"):
        knn.train(params, iris.train_features, iris.train_labels)


@pytest.mark.parametrize("kind", ["sign", "fjlt"])
def test_dimension_reduction_projects_to_the_target_and_roughly_keeps_distances(kind: str) -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 64)).astype(np.float32)
    model = build(
        points,
        np.zeros(300, np.float32),
        dimension_reduction_type=kind,
        dimension_reduction_target="48",
    )

    assert model.points.shape == (300, 48)
    original = np.linalg.norm(points[1:] - points[0], axis=1)
    reduced = np.linalg.norm(model.points[1:] - model.points[0], axis=1)
    assert np.median(reduced / original) == pytest.approx(1.0, abs=0.1)
    queries = rng.normal(size=(5, 64)).astype(np.float32)
    assert model.kneighbors(queries).indices.shape == (5, 1)


# ------------------------------------------------------------------------ hyperparameters


def test_platform_and_optional_hyperparameters_are_accepted() -> None:
    parsed = knn.KnnHyperparameters.parse(
        hyperparameters(
            index_type="faiss.IVFPQ",
            faiss_index_ivf_nlists="auto",
            faiss_index_pq_m="16",
            mini_batch_size="100",
            _kvstore="dist_sync",
            _num_gpus="auto",
            _tuning_objective_metric="test:accuracy",
        )
    )

    assert parsed.index_type == "faiss.IVFPQ"
    assert parsed.faiss_index_ivf_nlists is None
    assert parsed.faiss_index_pq_m == 16


@pytest.mark.parametrize(
    ("overrides", "removed", "message"),
    [
        ({"k": "0"}, None, "Hyperparameter k must be a positive integer, got '0'"),
        ({"k": "two"}, None, "Hyperparameter k must be a positive integer, got 'two'"),
        ({"sample_size": "-5"}, None, "Hyperparameter sample_size must be a positive integer"),
        ({"feature_dim": "4.5"}, None, "Hyperparameter feature_dim must be a positive integer"),
        (
            {"predictor_type": "ranker"},
            None,
            "Hyperparameter predictor_type must be one of classifier, regressor, got 'ranker'",
        ),
        ({"index_metric": "L1"}, None, "Hyperparameter index_metric must be one of L2,"),
        ({"index_type": "hnsw"}, None, "Hyperparameter index_type must be one of faiss.Flat,"),
        (
            {"index_type": "faiss.IVFPQ", "index_metric": "COSINE"},
            None,
            "index_metric must be L2 when index_type is faiss.IVFPQ, got 'COSINE'",
        ),
        ({"faiss_index_pq_m": "5"}, None, "Hyperparameter faiss_index_pq_m must be one of 1, 2,"),
        (
            {"faiss_index_ivf_nlists": "0"},
            None,
            "faiss_index_ivf_nlists must be 'auto' or a positive integer, got '0'",
        ),
        (
            {"dimension_reduction_type": "sign", "dimension_reduction_target": "4"},
            None,
            "dimension_reduction_target must be less than feature_dim (4), got '4'",
        ),
        (
            {"dimension_reduction_type": "sign"},
            None,
            "No value(s) were specified for 'dimension_reduction_target'",
        ),
        (
            {"dimension_reduction_target": "2"},
            None,
            "dimension_reduction_target requires dimension_reduction_type",
        ),
        ({"_num_gpus": "-1"}, None, "Hyperparameter _num_gpus must be 'auto' or a non-negative"),
        (
            {"epochs": "3", "alpha": "1"},
            None,
            "Additional hyperparameters are not allowed ('alpha', 'epochs' were unexpected)",
        ),
        (
            {},
            "k",
            "No value(s) were specified for 'k' which are required hyperparameter(s)",
        ),
    ],
)
def test_invalid_hyperparameters_are_named_in_the_error(
    overrides: dict[str, str], removed: str | None, message: str
) -> None:
    raw = hyperparameters(**overrides)
    if removed:
        del raw[removed]

    with pytest.raises(knn.HyperparameterError) as raised:
        knn.KnnHyperparameters.parse(raw)

    assert message in str(raised.value)


# -------------------------------------------------------------------------------- CSV data


def test_csv_parsing_reports_the_offending_value() -> None:
    with pytest.raises(knn.TrainingDataError, match="could not convert string 'setosa'"):
        knn.parse_labeled_csv("0,1,2\nsetosa,1,2\n")
    with pytest.raises(knn.TrainingDataError, match="number of columns changed from 3 to 2"):
        knn.parse_labeled_csv("0,1,2\n1,2\n")
    with pytest.raises(knn.TrainingDataError, match="NaN or infinite value at row 1"):
        knn.parse_labeled_csv("0,1,2\n1,nan,2\n")


# -------------------------------------------------------------------------------- artifact


def test_artifact_round_trip_keeps_predictions(iris: Iris) -> None:
    model = build(iris.train_features, iris.train_labels, k="3", index_metric="COSINE")

    loaded = knn.KnnModel.from_artifact(model.to_artifact())

    assert loaded.hyperparameters == model.hyperparameters
    np.testing.assert_array_equal(
        loaded.predict(iris.test_features).predicted_label,
        model.predict(iris.test_features).predicted_label,
    )
    assert model.to_artifact() == model.to_artifact()  # deterministic bytes


def test_artifact_with_dimension_reduction_round_trips(iris: Iris) -> None:
    model = build(
        iris.train_features,
        iris.train_labels,
        dimension_reduction_type="fjlt",
        dimension_reduction_target="3",
    )

    loaded = knn.KnnModel.from_artifact(model.to_artifact())

    np.testing.assert_array_equal(
        loaded.kneighbors(iris.test_features).indices, model.kneighbors(iris.test_features).indices
    )


def _repack(
    artifact: bytes, drop: str | None = None, replace: tuple[str, bytes] | None = None
) -> bytes:
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as source,
        tarfile.open(fileobj=out, mode="w:gz") as target,
    ):
        for member in source.getmembers():
            if member.name == drop:
                continue
            payload = source.extractfile(member).read()  # type: ignore[union-attr]
            if replace and member.name == replace[0]:
                payload = replace[1]
                member.size = len(payload)
            target.addfile(member, io.BytesIO(payload))
    return out.getvalue()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda a: b"not a tarball", "not a readable tar.gz archive"),
        (lambda a: a[: len(a) // 2], "not a readable tar.gz archive"),
        (lambda a: _repack(a, drop="model.npz"), "has no model.npz"),
        (lambda a: _repack(a, replace=("model.json", b"{}")), "not a valid k-NN model"),
        (lambda a: _repack(a, replace=("model.npz", b"junk")), "corrupt"),
    ],
)
def test_unusable_artifacts_raise_a_clear_error(iris: Iris, mangle, message: str) -> None:
    artifact = build(iris.train_features, iris.train_labels).to_artifact()

    with pytest.raises(knn.ModelArtifactError, match=message):
        knn.KnnModel.from_artifact(mangle(artifact))


def test_editing_k_in_the_artifact_metadata_changes_the_predictions(iris: Iris) -> None:
    artifact = build(iris.train_features, iris.train_labels).to_artifact()
    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
        metadata = json.loads(tar.extractfile("model.json").read())  # type: ignore[union-attr]
    edited = json.dumps(metadata | {"k": 5}).encode()

    loaded = knn.KnnModel.from_artifact(_repack(artifact, replace=("model.json", edited)))

    assert loaded.k == 5
    assert loaded.kneighbors(iris.test_features[:2]).indices.shape == (2, 5)
