"""The local k-NN engine (dropfit_local.knn) vs faiss IndexFlatL2 and scikit-learn's brute force.

100,000 x 64 float32 points, 10,000 queries, k=10: train (index) + query throughput in batches of
1,000 and one query at a time, each library with its default threads (numpy's BLAS, faiss'
OpenMP), as the local stack runs the engine. The neighbours must be faiss', ties aside; and the
engine must reproduce the tutorial's figures on iris.

``python -m bench.knn POINTS DIM QUERIES K BATCH`` is the child.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench.core import ROOT, Context, Result, Target, benchmark, run_child

POINTS, DIM, QUERIES, K, BATCH = 100_000, 64, 10_000, 10, 1_000
QUICK = (20_000, 32, 2_000, 10, 500)
SINGLE_QUERIES = 1_000  # one at a time: enough for a stable rate
TUTORIAL_ACCURACY = 0.9736842105263158


def _rate(search: Callable[[Any], Any], queries: Any, batch: int) -> float:
    """Queries per second (best of three passes)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for start in range(0, len(queries), batch):
            search(queries[start : start + batch])
        best = min(best, time.perf_counter() - started)
    return len(queries) / best


def child(points: int, dim: int, queries: int, k: int, batch: int) -> dict[str, Any]:
    import faiss
    import numpy as np
    from sklearn.neighbors import NearestNeighbors

    from dropfit_local import knn

    rng = np.random.default_rng(0)
    data = rng.normal(size=(points, dim)).astype(np.float32)
    labels = rng.integers(0, 5, points).astype(np.float32)
    asked = rng.normal(size=(queries, dim)).astype(np.float32)
    single = asked[:SINGLE_QUERIES]

    started = time.perf_counter()
    hyperparameters = knn.KnnHyperparameters.parse(
        {
            "feature_dim": str(dim),
            "k": str(k),
            "predictor_type": "classifier",
            "sample_size": str(points),
        }
    )
    model = knn.train(hyperparameters, data, labels)
    ours_train = time.perf_counter() - started
    started = time.perf_counter()
    index = faiss.IndexFlatL2(dim)
    index.add(data)
    faiss_train = time.perf_counter() - started
    started = time.perf_counter()
    brute = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(data)
    sklearn_train = time.perf_counter() - started

    def ours(q: Any) -> Any:
        return model.kneighbors(q)

    def flat(q: Any) -> Any:
        return index.search(q, k)

    def sk(q: Any) -> Any:
        return brute.kneighbors(q)

    rates = {
        name: {"batched": _rate(fn, asked, batch), "single": _rate(fn, single, 1)}
        for name, fn in (("ours", ours), ("faiss", flat), ("sklearn", sk))
    }

    # Same neighbours as faiss, where the k-th distance is not tied with the next one.
    found = model.kneighbors(asked)
    expected_d, expected_i = index.search(asked, k)
    differ = 0
    for row in range(queries):
        mine, theirs = set(found.indices[row].tolist()), set(expected_i[row].tolist())
        if mine != theirs:
            kth = float(expected_d[row, -1])
            odd = [
                float(found.distances[row][j])
                for j, i in enumerate(found.indices[row])
                if i not in theirs
            ]
            if any(abs(d - kth) > 1e-4 * max(1.0, kth) for d in odd):
                differ += 1
    return {
        "train_s": {"ours": ours_train, "faiss": faiss_train, "sklearn": sklearn_train},
        "rates": rates,
        "different_neighbours": differ,
        "iris_accuracy": _iris_accuracy(),
    }


def _iris_accuracy() -> float:
    """The tutorial: iris formatted by Dropfit, k=1, every row of the test split."""
    import numpy as np
    from dropfit.dataset import format_dataset
    from dropfit.options import UploadOptions

    from dropfit_local import knn

    iris = (ROOT / "tests" / "data" / "iris.csv").read_bytes()
    formatted = format_dataset(iris, UploadOptions(), 1)
    train_labels, train_features = knn.parse_labeled_csv(formatted.train_csv.decode())
    test_labels, test_features = knn.parse_labeled_csv(formatted.test_csv.decode())
    hyperparameters = knn.KnnHyperparameters.parse(formatted.hyperparameters())
    model = knn.train(hyperparameters, train_features, train_labels)
    return float(np.mean(model.predict(test_features).predicted_label == test_labels))


@benchmark("knn")
def knn_engine(ctx: Context) -> Iterator[Result]:
    """Local k-NN engine vs faiss IndexFlatL2 and scikit-learn brute force (default threads)."""
    shape = QUICK if ctx.quick else (POINTS, DIM, QUERIES, K, BATCH)
    measured = run_child(["-m", "bench.knn", *map(str, shape)])
    rates = measured["rates"]
    size = f"{shape[0] // 1000}k_x{shape[1]}"
    for mode, bound in (("batched", 1.2), ("single", 1.0)):
        yield Result(
            f"knn.queries.{mode}.{size}",
            rates["ours"][mode],
            "q/s",
            baseline=rates["faiss"][mode],
            target=Target("ratio", ">=", bound),
            detail={
                "sklearn_q_per_s": round(rates["sklearn"][mode], 1),
                "batch": shape[4] if mode == "batched" else 1,
                "k": shape[3],
            },
        )
    train = measured["train_s"]
    yield Result(
        f"knn.train.{size}",
        train["ours"] * 1000,
        "ms",
        baseline=train["faiss"] * 1000,
        detail={"sklearn_ms": round(train["sklearn"] * 1000, 2)},
    )
    yield Result(
        "knn.different_neighbours_than_faiss",
        float(measured["different_neighbours"]),
        "queries",
        target=Target("value", "==", 0),
        check=True,
    )
    yield Result(
        "knn.iris_tutorial_accuracy",
        measured["iris_accuracy"],
        "",
        target=Target("value", "==", TUTORIAL_ACCURACY),
        check=True,
    )


if __name__ == "__main__":
    print(json.dumps(child(*map(int, sys.argv[1:]))))
