"""Exact k-nearest-neighbour engine that behaves like SageMaker's built-in k-NN algorithm.

The built-in algorithm samples the training set, optionally reduces its dimension, builds a
faiss index and answers queries with the labels of the k nearest sampled points. This module
does the same with numpy only:

* Hyperparameters are validated like the built-in does (required ``feature_dim``, ``k``,
  ``predictor_type``, ``sample_size``; the documented optional ones; unknown names are
  rejected). Messages are the ones a training job reports after ``ClientError:``.
* Sampling: when ``sample_size`` is smaller than the number of training rows, exactly
  ``sample_size`` rows are drawn without replacement with ``numpy.random.default_rng(SAMPLE_SEED)``
  (kept in their original order); otherwise every row is used, since the built-in samples *at
  most* ``sample_size`` points and never duplicates one.
* Search is exact for every ``index_type``. ``faiss.Flat`` is what the built-in computes too;
  ``faiss.IVFFlat`` and ``faiss.IVFPQ`` are approximate in faiss, here they fall back to the exact
  search (their hyperparameters are still validated), so results can only be better.
* Distances are reported the way faiss reports them: squared Euclidean distance for ``L2``,
  the inner product for ``INNER_PRODUCT`` and the cosine similarity for ``COSINE`` (for the last
  two a larger value is nearer). Neighbours are always listed nearest first; equally near
  neighbours in the order of their training row.
* Classifier: the most frequent label among the k neighbours. Ties go to the tied label whose
  nearest member is nearest to the query, then to the smaller label. Regressor: the mean label.
* Everything is computed in float32 (as faiss does): a batch of queries is multiplied with
  the index one tile of points at a time (GEMM), keeping a running k nearest per query that
  each tile's keys below the current k-th are merged into; tiles keep the memory bounded.
"""

from __future__ import annotations

import io
import json
import math
import re
import tarfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from dropfit_local import metrics

F32 = NDArray[np.float32]
Indices = NDArray[np.intp]

SAMPLE_SEED: Final = 0
"""Seed of the row sampling (``sample_size`` smaller than the training set)."""
PROJECTION_SEED: Final = 3
"""Seed of the random projection of ``dimension_reduction_type``."""

PREDICTOR_TYPES: Final = ("classifier", "regressor")
INDEX_METRICS: Final = ("L2", "INNER_PRODUCT", "COSINE")
INDEX_TYPES: Final = ("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ")
REDUCTION_TYPES: Final = ("sign", "fjlt")
PQ_M_VALUES: Final = (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96)
KVSTORE_VALUES: Final = ("dist_sync", "dist_async", "local", "device", "auto")
TUNING_METRICS: Final = ("test:accuracy", "test:mse")

REQUIRED: Final = ("feature_dim", "k", "predictor_type", "sample_size")
OPTIONAL: Final = (
    "dimension_reduction_target",
    "dimension_reduction_type",
    "faiss_index_ivf_nlists",
    "faiss_index_pq_m",
    "index_metric",
    "index_type",
    "mini_batch_size",
)
# Set by the SageMaker platform or the SDK for every first-party algorithm; they tune the
# distributed runtime the built-in runs on, so they are accepted and have no effect here.
PLATFORM: Final = ("_kvstore", "_num_gpus", "_num_kv_servers", "_tuning_objective_metric")

ARTIFACT_JSON: Final = "model.json"
ARTIFACT_NPZ: Final = "model.npz"
_ARTIFACT_FORMAT: Final = "dropfit-knn/1"

# Upper bound on the elements of one (queries x points) tile of keys: 32 MB of float32 plus an
# 8 MB mask, whatever the size of the index. A block of queries is searched tile by tile over the
# index (tiles at least _TILE_POINTS wide, so a batch of ~1,000 queries reads the index once).
_BLOCK_ELEMENTS: Final = 8_388_608
_TILE_POINTS: Final = 8_192
_INT = re.compile(r"\+?[0-9]+")


class KnnError(Exception):
    """Base class of the engine's errors."""


class HyperparameterError(KnnError):
    """A hyperparameter is missing, unknown or out of range (a client error)."""


class TrainingDataError(KnnError):
    """The training or test data cannot be used (a client error)."""


class InferenceInputError(KnnError):
    """An inference request the algorithm rejects; ``status_code`` is its HTTP status."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelArtifactError(KnnError):
    """A model artifact is missing, corrupt or not a k-NN model."""


# --------------------------------------------------------------------------- hyperparameters


def _positive_int(name: str, raw: object) -> int:
    text = str(raw).strip()
    if isinstance(raw, bool) or not _INT.fullmatch(text) or int(text) < 1:
        raise HyperparameterError(f"Hyperparameter {name} must be a positive integer, got {raw!r}")
    return int(text)


def _one_of(name: str, raw: object, allowed: tuple[str, ...]) -> str:
    text = str(raw).strip()
    if text not in allowed:
        choices = ", ".join(allowed)
        raise HyperparameterError(f"Hyperparameter {name} must be one of {choices}, got {raw!r}")
    return text


def _check_platform(name: str, raw: object) -> None:
    text = str(raw).strip()
    if name == "_kvstore":
        _one_of(name, raw, KVSTORE_VALUES)
    elif name == "_tuning_objective_metric":
        _one_of(name, raw, TUNING_METRICS)
    elif text != "auto" and not (_INT.fullmatch(text) and (name == "_num_gpus" or int(text) > 0)):
        kind = "a non-negative" if name == "_num_gpus" else "a positive"
        raise HyperparameterError(
            f"Hyperparameter {name} must be 'auto' or {kind} integer, got {raw!r}"
        )


@dataclass(frozen=True)
class KnnHyperparameters:
    """Validated hyperparameters of the built-in k-NN algorithm."""

    feature_dim: int
    k: int
    predictor_type: str
    sample_size: int
    index_metric: str = "L2"
    index_type: str = "faiss.Flat"
    dimension_reduction_type: str | None = None
    dimension_reduction_target: int | None = None
    faiss_index_ivf_nlists: int | None = None
    """``None`` is the documented ``auto``: ``sqrt(sample_size)``."""
    faiss_index_pq_m: int | None = None
    mini_batch_size: int = 5000

    @classmethod
    def parse(cls, raw: Mapping[str, object]) -> KnnHyperparameters:
        """Validate a training job's ``HyperParameters`` map (values are strings on the wire).

        Raises :class:`HyperparameterError` naming the offending hyperparameter.
        """
        unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL) - set(PLATFORM))
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            verb = "was" if len(unknown) == 1 else "were"
            raise HyperparameterError(
                f"Additional hyperparameters are not allowed ({names} {verb} unexpected)"
            )
        missing = [name for name in REQUIRED if name not in raw]
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise HyperparameterError(
                f"No value(s) were specified for {names} which are required hyperparameter(s)"
            )
        for name in PLATFORM:
            if name in raw:
                _check_platform(name, raw[name])

        feature_dim = _positive_int("feature_dim", raw["feature_dim"])
        index_type = _one_of("index_type", raw.get("index_type", "faiss.Flat"), INDEX_TYPES)
        index_metric = _one_of("index_metric", raw.get("index_metric", "L2"), INDEX_METRICS)
        if index_type == "faiss.IVFPQ" and index_metric != "L2":
            raise HyperparameterError(
                f"Hyperparameter index_metric must be L2 when index_type is faiss.IVFPQ, "
                f"got {raw['index_metric']!r}"
            )

        reduction_type: str | None = None
        reduction_target: int | None = None
        if "dimension_reduction_type" in raw:
            reduction_type = _one_of(
                "dimension_reduction_type", raw["dimension_reduction_type"], REDUCTION_TYPES
            )
            if "dimension_reduction_target" not in raw:
                raise HyperparameterError(
                    "No value(s) were specified for 'dimension_reduction_target' which are "
                    "required hyperparameter(s) when dimension_reduction_type is set"
                )
        if "dimension_reduction_target" in raw:
            if reduction_type is None:
                raise HyperparameterError(
                    "Hyperparameter dimension_reduction_target requires dimension_reduction_type"
                )
            target_raw = raw["dimension_reduction_target"]
            reduction_target = _positive_int("dimension_reduction_target", target_raw)
            if reduction_target >= feature_dim:
                raise HyperparameterError(
                    f"Hyperparameter dimension_reduction_target must be less than feature_dim "
                    f"({feature_dim}), got {target_raw!r}"
                )

        nlists: int | None = None
        if "faiss_index_ivf_nlists" in raw and str(raw["faiss_index_ivf_nlists"]).strip() != "auto":
            try:
                nlists = _positive_int("faiss_index_ivf_nlists", raw["faiss_index_ivf_nlists"])
            except HyperparameterError:
                raise HyperparameterError(
                    f"Hyperparameter faiss_index_ivf_nlists must be 'auto' or a positive integer, "
                    f"got {raw['faiss_index_ivf_nlists']!r}"
                ) from None
        pq_m: int | None = None
        if "faiss_index_pq_m" in raw:
            pq_m = _positive_int("faiss_index_pq_m", raw["faiss_index_pq_m"])
            if pq_m not in PQ_M_VALUES:
                values = ", ".join(str(v) for v in PQ_M_VALUES)
                raise HyperparameterError(
                    f"Hyperparameter faiss_index_pq_m must be one of {values}, "
                    f"got {raw['faiss_index_pq_m']!r}"
                )

        return cls(
            feature_dim=feature_dim,
            k=_positive_int("k", raw["k"]),
            predictor_type=_one_of("predictor_type", raw["predictor_type"], PREDICTOR_TYPES),
            sample_size=_positive_int("sample_size", raw["sample_size"]),
            index_metric=index_metric,
            index_type=index_type,
            dimension_reduction_type=reduction_type,
            dimension_reduction_target=reduction_target,
            faiss_index_ivf_nlists=nlists,
            faiss_index_pq_m=pq_m,
            mini_batch_size=_positive_int("mini_batch_size", raw.get("mini_batch_size", 5000)),
        )


# --------------------------------------------------------------------------------- CSV data


def _load_csv(text: str, what: str) -> NDArray[np.float64]:
    if not text.strip():
        return np.empty((0, 0))
    try:
        table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        detail = str(exc).split("; use `usecols`", 1)[0]
        raise TrainingDataError(
            f"Unable to parse {what} as header-less text/csv: {detail}"
        ) from None
    if not np.isfinite(table).all():
        row = int(np.flatnonzero(~np.isfinite(table).all(axis=1))[0])
        raise TrainingDataError(f"{what} has a NaN or infinite value at row {row}")
    return table


def parse_labeled_csv(text: str, *, what: str = "the train channel") -> tuple[F32, F32]:
    """Parse header-less ``text/csv`` records whose first column is the label.

    Returns ``(labels, features)`` as float32 arrays of shapes ``(n,)`` and ``(n, d)``;
    an empty text gives zero rows. Raises :class:`TrainingDataError`.
    """
    table = _load_csv(text, what)
    if table.size == 0:
        return np.empty(0, np.float32), np.empty((0, 0), np.float32)
    if table.shape[1] < 2:
        raise TrainingDataError(f"{what} needs a label column followed by at least one feature")
    return table[:, 0].astype(np.float32), table[:, 1:].astype(np.float32)


# ---------------------------------------------------------------------------------- training


def sample_indices(n_rows: int, sample_size: int, seed: int = SAMPLE_SEED) -> Indices:
    """Rows kept by sampling: all of them, or ``sample_size`` drawn without replacement."""
    if sample_size >= n_rows:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=sample_size, replace=False))


def projection_matrix(feature_dim: int, target: int, kind: str, seed: int = PROJECTION_SEED) -> F32:
    """The linear map ``x -> x @ R`` of ``dimension_reduction_type`` (``feature_dim x target``).

    ``sign`` is a dense matrix of random signs; ``fjlt`` is the fast Johnson-Lindenstrauss
    transform (random sign flips, Walsh-Hadamard transform, random coordinate sampling)
    materialised as a matrix, so it costs O(d * target) per point instead of O(d log d).
    Both preserve squared L2 norms and inner products in expectation.
    """
    rng = np.random.default_rng(seed)
    if kind == "sign":
        signs = rng.choice(np.array([-1.0, 1.0]), size=(feature_dim, target))
    else:
        order = 1 << (feature_dim - 1).bit_length()
        columns = rng.choice(order, size=target, replace=False)
        flips = rng.choice(np.array([-1.0, 1.0]), size=feature_dim)
        # Hadamard entry (i, j) is (-1) ** popcount(i & j).
        parity = np.bitwise_count(np.arange(feature_dim)[:, None] & columns[None, :]) & 1
        signs = flips[:, None] * (1.0 - 2.0 * parity)
    return (signs / math.sqrt(target)).astype(np.float32)


def train(hyperparameters: KnnHyperparameters, features: F32, labels: F32) -> KnnModel:
    """Sample, reduce and index the training data, as the built-in's training job does."""
    n_rows, n_features = features.shape if features.ndim == 2 else (0, 0)
    if n_rows == 0:
        raise TrainingDataError("The train channel contains no records")
    if n_features != hyperparameters.feature_dim:
        raise TrainingDataError(
            f"The feature_dim hyperparameter ({hyperparameters.feature_dim}) does not match the "
            f"number of features in the train channel ({n_features}; the first column is the label)"
        )
    keep = sample_indices(n_rows, hyperparameters.sample_size)
    if hyperparameters.k > keep.size:
        raise TrainingDataError(
            f"Hyperparameter k ({hyperparameters.k}) is larger than the number of sampled "
            f"training points ({keep.size})"
        )
    projection = None
    if hyperparameters.dimension_reduction_type and hyperparameters.dimension_reduction_target:
        projection = projection_matrix(
            n_features,
            hyperparameters.dimension_reduction_target,
            hyperparameters.dimension_reduction_type,
        )
    points = np.ascontiguousarray(features[keep], dtype=np.float32)
    if projection is not None:
        points = points @ projection
    return KnnModel(
        points=points,
        labels=np.ascontiguousarray(labels[keep], dtype=np.float32),
        hyperparameters=hyperparameters,
        projection=projection,
    )


# --------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Neighbors:
    """The k nearest training points of each query, nearest first."""

    distances: F32
    """``(queries, k)``: squared L2 distance, or inner product / cosine similarity."""
    labels: F32
    """``(queries, k)``: the labels of those points."""
    indices: Indices
    """``(queries, k)``: their rows in the sampled training set."""


@dataclass(frozen=True)
class Predictions:
    """Predicted labels and the neighbours they were computed from."""

    predicted_label: F32
    neighbors: Neighbors


def _top_k(queries: F32, keys: F32, k: int, tile: int) -> tuple[Indices, F32]:
    """The k smallest ``queries @ keys.T`` of every query row, ordered by (key, column).

    The key matrix is computed ``tile`` columns at a time. The first tile's k-th smallest key
    (``np.partition``) keeps every key at or below it; a later tile only contributes keys
    strictly below the current k-th, as its columns lose ties to the ones already kept. The
    few survivors are merged with the running k by a sort on (row, key, column).
    Returns ``(columns, their keys)``, both ``(rows, k)``.
    """
    columns = keys.shape[0]
    first = max(tile, k)
    block = queries @ keys[:first].T
    kth = min(k, block.shape[1]) - 1
    limit = np.partition(block, kth, axis=1)[:, kth : kth + 1]
    best = _merge(block, block <= limit, 0, None, k)
    for start in range(first, columns, tile):
        block = queries @ keys[start : start + tile].T
        best = _merge(block, block < best[1][:, -1:], start, best, k)
    return best


def _merge(
    block: F32,
    mask: NDArray[np.bool_],
    offset: int,
    best: tuple[Indices, F32] | None,
    k: int,
) -> tuple[Indices, F32]:
    """The k best of each row among the running ones and the masked keys of ``block``."""
    flat = np.flatnonzero(mask)
    rows, cols = np.divmod(flat, block.shape[1])
    values = block.reshape(-1)[flat]
    cols += offset
    if best is not None:
        best_cols, best_keys = best
        n, width = best_cols.shape
        rows = np.concatenate([np.repeat(np.arange(n), width), rows])
        cols = np.concatenate([best_cols.reshape(-1), cols])
        values = np.concatenate([best_keys.reshape(-1), values])
    order = np.lexsort((cols, values, rows))
    # Every row has at least k entries: keep the first k of each row's run.
    counts = np.bincount(rows, minlength=block.shape[0])
    starts = np.cumsum(counts) - counts
    take = order[(starts[:, None] + np.arange(k)).reshape(-1)]
    return cols[take].reshape(-1, k), values[take].reshape(-1, k)


def _vote(labels: F32, keys: F32) -> F32:
    """Most frequent label per row; ties to the nearest member, then to the smaller label.

    ``keys`` orders each row nearest first (smaller is nearer) and is sorted ascending.
    """
    out = np.empty(labels.shape[0], np.float32)
    k = labels.shape[1]
    step = max(1, _BLOCK_ELEMENTS // (k * k))
    for start in range(0, labels.shape[0], step):
        lab = labels[start : start + step]
        key = keys[start : start + step]
        same = lab[:, :, None] == lab[:, None, :]
        counts = same.sum(axis=2)
        nearest_member = np.take_along_axis(key, same.argmax(axis=2), axis=1)
        best = np.lexsort((lab, nearest_member, -counts), axis=1)[:, 0]
        out[start : start + step] = lab[np.arange(lab.shape[0]), best]
    return out


class KnnModel:
    """A trained k-NN index: the sampled (and possibly projected) points and their labels."""

    def __init__(
        self,
        *,
        points: F32,
        labels: F32,
        hyperparameters: KnnHyperparameters,
        projection: F32 | None = None,
    ) -> None:
        self.hyperparameters = hyperparameters
        self.points = points
        self.labels = labels
        self.projection = projection
        self.k = hyperparameters.k
        self.predictor_type = hyperparameters.predictor_type
        self.index_metric = hyperparameters.index_metric
        self.feature_dim = hyperparameters.feature_dim
        # Search-ready copies. One GEMM of a block of queries with ``self._keys`` gives a key
        # per (query, point), smaller = nearer. For L2 the points are centred (distances do
        # not change and the float32 expansion loses far less precision) and the key is
        # |y|^2 - 2x.y (the query's own |x|^2 does not change the order): rows are
        # [-2y, |y|^2] and queries get a trailing 1. For the similarities the key is -x.y.
        if self.index_metric == "L2":
            self._center = points.mean(axis=0, dtype=np.float64).astype(np.float32)
            self._index = points - self._center
            squares = np.einsum("ij,ij->i", self._index, self._index)
            self._keys = np.hstack([-2.0 * self._index, squares[:, None]]).astype(np.float32)
        else:
            self._center = np.zeros(points.shape[1], np.float32)
            self._index = _normalized(points) if self.index_metric == "COSINE" else points
            self._keys = -self._index

    @property
    def size(self) -> int:
        """Number of indexed (sampled) points."""
        return int(self.points.shape[0])

    def _queries(self, features: F32) -> F32:
        queries = np.asarray(features, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.feature_dim:
            got = queries.shape[1] if queries.ndim == 2 else queries.shape
            raise InferenceInputError(
                f"The feature dimension of the input ({got}) does not match the feature "
                f"dimension of the model ({self.feature_dim})"
            )
        if not np.isfinite(queries).all():
            raise InferenceInputError("The input contains a NaN or infinite value")
        if self.projection is not None:
            queries = queries @ self.projection
        if self.index_metric == "L2":
            return queries - self._center
        return _normalized(queries) if self.index_metric == "COSINE" else queries

    def kneighbors(self, features: F32) -> Neighbors:
        """Exact k nearest neighbours of every row of ``features`` (``(n, feature_dim)``)."""
        queries = self._queries(features)
        n, k = queries.shape[0], self.k
        distances = np.empty((n, k), np.float32)
        indices = np.empty((n, k), np.intp)
        step = max(1, min(self.hyperparameters.mini_batch_size, _BLOCK_ELEMENTS // _TILE_POINTS))
        for start in range(0, n, step):
            block = queries[start : start + step]
            tile = max(_TILE_POINTS, _BLOCK_ELEMENTS // block.shape[0])
            if self.index_metric == "L2":
                ones = np.ones((block.shape[0], 1), np.float32)
                nearest, _ = _top_k(np.hstack([block, ones]), self._keys, k, tile)
                # Report the chosen points' distances computed directly (no cancellation).
                diff = self._index[nearest] - block[:, None, :]
                found = np.einsum("ijk,ijk->ij", diff, diff)
                order = np.lexsort((nearest, found), axis=1)
                nearest = np.take_along_axis(nearest, order, axis=1)
                found = np.take_along_axis(found, order, axis=1)
            else:
                nearest, keys = _top_k(block, self._keys, k, tile)
                found = -keys
            distances[start : start + step] = found
            indices[start : start + step] = nearest
        return Neighbors(distances=distances, labels=self.labels[indices], indices=indices)

    def predict(self, features: F32) -> Predictions:
        """Predicted label of every row of ``features`` and the neighbours behind it."""
        neighbors = self.kneighbors(features)
        if self.predictor_type == "regressor":
            predicted = neighbors.labels.mean(axis=1, dtype=np.float64).astype(np.float32)
        else:
            keys = neighbors.distances if self.index_metric == "L2" else -neighbors.distances
            predicted = _vote(neighbors.labels, keys)
        return Predictions(predicted_label=predicted, neighbors=neighbors)

    def evaluate(self, features: F32, labels: F32) -> dict[str, float]:
        """The test-channel scores the built-in logs: accuracy and macro F1, or mse."""
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            got = features.shape[1] if features.ndim == 2 else 0
            raise TrainingDataError(
                f"The feature_dim hyperparameter ({self.feature_dim}) does not match the number "
                f"of features in the test channel ({got}; the first column is the label)"
            )
        predicted = self.predict(features).predicted_label
        if self.predictor_type == "regressor":
            return {"mse": metrics.mse(labels, predicted)}
        return {
            "accuracy": metrics.accuracy(labels, predicted),
            "macro_f_1.000": metrics.macro_f1(labels, predicted),
        }

    # ------------------------------------------------------------------------- artifact

    def to_artifact(self) -> bytes:
        """The ``model.tar.gz`` a training job uploads (``model.json`` + ``model.npz``)."""
        metadata = {
            "format": _ARTIFACT_FORMAT,
            # The built-in lets users edit k and predictor_type in its metadata file; from_artifact
            # honours edits of these two fields the same way.
            "k": self.k,
            "predictor_type": self.predictor_type,
            "hyperparameters": asdict(self.hyperparameters),
        }
        arrays = {"points": self.points, "labels": self.labels}
        if self.projection is not None:
            arrays["projection"] = self.projection
        npz = io.BytesIO()
        np.savez(npz, allow_pickle=False, **arrays)
        out = io.BytesIO()
        # Fixed mtimes make the artifact a pure function of the model.
        with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            for name, payload in (
                (ARTIFACT_JSON, json.dumps(metadata, sort_keys=True).encode()),
                (ARTIFACT_NPZ, npz.getvalue()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                info.mtime = 0
                tar.addfile(info, io.BytesIO(payload))
        return out.getvalue()

    @classmethod
    def from_artifact(cls, data: bytes) -> KnnModel:
        """Load a ``model.tar.gz``; raises :class:`ModelArtifactError` if it is unusable."""
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                metadata = json.loads(_member(tar, ARTIFACT_JSON))
                with np.load(io.BytesIO(_member(tar, ARTIFACT_NPZ)), allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
        except ModelArtifactError:
            raise
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ModelArtifactError(
                f"The model artifact is not a readable tar.gz archive: {exc}"
            ) from None
        except ValueError as exc:
            raise ModelArtifactError(f"The model artifact is corrupt: {exc}") from None
        try:
            if metadata.get("format") != _ARTIFACT_FORMAT:
                raise ValueError(f"unknown format {metadata.get('format')!r}")
            raw = {**metadata["hyperparameters"], "k": metadata["k"]}
            raw["predictor_type"] = metadata["predictor_type"]
            strings = {key: str(value) for key, value in raw.items() if value is not None}
            hyperparameters = KnnHyperparameters.parse(strings)
            points = np.asarray(arrays["points"], dtype=np.float32)
            labels = np.asarray(arrays["labels"], dtype=np.float32)
            projection = arrays.get("projection")
            width = hyperparameters.dimension_reduction_target or hyperparameters.feature_dim
            if points.ndim != 2 or points.shape[1] != width or labels.shape != points.shape[:1]:
                raise ValueError(f"points {points.shape} and labels {labels.shape} do not match")
            expected = (hyperparameters.feature_dim, width)
            if (projection is None) != (hyperparameters.dimension_reduction_target is None) or (
                projection is not None and projection.shape != expected
            ):
                raise ValueError("the projection does not match the hyperparameters")
            if hyperparameters.k > points.shape[0]:
                raise ValueError(f"k={hyperparameters.k} exceeds the {points.shape[0]} points")
        except (KeyError, TypeError, ValueError, AttributeError, HyperparameterError) as exc:
            raise ModelArtifactError(
                f"The model artifact is not a valid k-NN model: {exc}"
            ) from None
        return cls(
            points=points,
            labels=labels,
            hyperparameters=hyperparameters,
            projection=None if projection is None else projection.astype(np.float32),
        )


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError:
        raise ModelArtifactError(f"The model artifact has no {name}") from None
    handle = tar.extractfile(member)
    if handle is None:
        raise ModelArtifactError(f"The model artifact's {name} is not a regular file")
    return handle.read()


def _normalized(vectors: F32) -> F32:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A zero vector has no direction: leave it at zero (similarity 0 with everything).
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
