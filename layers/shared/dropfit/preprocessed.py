"""The formatter's path for uploads whose features are transformed (scale, encode, missing).

The reference engine: three passes over the upload, read in chunks with pandas (every value as
text, as the reference engine reads it). Plain uploads take the fast engine
(:mod:`dropfit.plaintransform`), which finds the same figures and writes the same bytes.

1. scan: validate (text features need ``encode=onehot``, empty cells ``missing=drop|median``),
   count the rows kept (``missing=drop`` leaves out every row with an empty cell), find the
   classes;
2. fit, on the training rows only (the split of the kept rows): each number column's mean and
   standard deviation (Chan's pairwise update), minimum and maximum, the median where values are
   missing, each text column's categories; keep the first :data:`crossval.MAX_ROWS` training
   rows of the split's order for cross-validation (``scale=auto``, ``k=auto``);
3. write: every kept row transformed (:mod:`dropfit.preprocessing`'s arithmetic, with numpy),
   label first, numbers as :mod:`dropfit.floattext` writes them (the float32 k-NN reads, as
   predict sends it), to its channel.

Memory: one chunk of ~400,000 cells, 1 byte per data row (which rows are kept, then which are
test rows), the cross-validation sample, and, for ``missing=median``, 8 bytes per training row
of every number column that has an empty cell (the exact median needs its values).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from dropfit import crossval, csvscan
from dropfit.csvscan import (
    MAX_FEATURES,
    ColumnStats,
    Encoding,
    LabelStats,
    Router,
    Scan,
    add_label_texts,
    choose_label,
    guess_label,
)
from dropfit.csvsource import Source, open_text
from dropfit.dataset import (
    DatasetPlan,
    TrainLayout,
    bad_value,
    decide,
    k_candidates,
    train_parts,
)
from dropfit.errors import InvalidUpload
from dropfit.floattext import rows_text
from dropfit.options import AUTO, KChoice, UploadOptions
from dropfit.preprocessing import CATEGORY, NUMBER, Column, Preprocessing
from dropfit.run_metadata import RunMetadata
from dropfit.split import holdout_mask, train_order_head

F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]
MAX_CATEGORIES = 100  # per text column: one-hot encoding is for categories, not free text


@dataclass(slots=True)
class _Found:
    """What pass 1 learnt."""

    header: list[str]
    label: int
    n_rows: int  # data rows in the upload
    kept: npt.NDArray[np.bool_]  # per data row: not dropped
    columns: list[ColumnStats]  # over the non-empty cells
    first_empty: list[int | None]  # per column: the first data row where it is empty
    empties: npt.NDArray[np.int64]  # per column: empty cells in kept rows
    label_stats: LabelStats
    size: int


def _chunks(text: Any, n_columns: int) -> Iterator[pd.DataFrame]:
    for frame in csvscan._chunks(text, n_columns):
        yield frame.apply(lambda column: column.str.strip())


def _scan(source: Source, options: UploadOptions, label_hint: int | None) -> _Found:
    with open_text(source) as text:
        header = csvscan.parse_header(text)
    columns = [ColumnStats() for _ in header]
    first_empty: list[int | None] = [None] * len(header)
    empties = np.zeros(len(header), dtype=np.int64)
    label_stats = LabelStats()
    label = label_hint
    kept_parts: list[npt.NDArray[np.bool_]] = []
    n_rows = n_kept = 0
    with open_text(source) as text:
        try:
            for frame in _chunks(text, len(header)):
                if len(frame.columns) != len(header) or not isinstance(frame.index, pd.RangeIndex):
                    raise InvalidUpload(
                        f"The data rows do not have the {len(header)} fields of the header "
                        "(ragged rows)."
                    )
                cells = frame.to_numpy(dtype=object)
                empty = cells == ""
                rows = np.arange(n_rows, n_rows + len(frame), dtype=np.int64)
                kept = (
                    ~empty.any(axis=1) if options.missing == "drop" else np.ones(len(frame), bool)
                )
                for j, stats in enumerate(columns):
                    present = ~empty[:, j]
                    if not present.all() and first_empty[j] is None:
                        first_empty[j] = int(rows[np.argmin(present)])
                    empties[j] += int((empty[:, j] & kept).sum())
                    raw = cells[present, j]
                    stats.add(csvscan.to_floats(raw), raw, rows[present])
                if label is None:
                    label = guess_label(header, [c.numeric for c in columns], options.label)
                    if label is None and options.encode == "onehot":
                        label = _label(header, columns, options)
                if label is not None:
                    texts = cells[kept & ~empty[:, label], label]
                    add_label_texts(texts, n_kept, label_stats)
                kept_parts.append(kept)
                n_rows += len(frame)
                n_kept += int(kept.sum())
        except pd.errors.ParserError:
            csvscan.raise_first_ragged(source, header)
            raise InvalidUpload("The file is not valid CSV; check its quoting.") from None
        size = text.buffer.raw.offset  # type: ignore[attr-defined]
    if n_rows == 0:
        raise InvalidUpload("The file has a header but no data rows.")
    assert label is not None
    return _Found(
        header,
        label,
        n_rows,
        np.concatenate(kept_parts),
        columns,
        first_empty,
        empties,
        label_stats,
        size,
    )


def _label(header: list[str], columns: list[ColumnStats], options: UploadOptions) -> int:
    """As the plain rule says, except that with one-hot encoding several text columns may be
    features: then the label is the last column unless named."""
    numeric = [c.numeric for c in columns]
    if options.encode == "onehot" and options.label is None and numeric.count(False) > 1:
        return len(header) - 1
    return choose_label(header, numeric, options.label)


def _check(found: _Found, options: UploadOptions) -> list[str]:
    """Refusals the options do not lift; each feature's kind (NUMBER or CATEGORY)."""
    header, label = found.header, found.label
    missing_label = found.first_empty[label]
    if missing_label is not None and options.missing != "drop":
        raise InvalidUpload(
            f"Label column {header[label]!r} is empty in data row {missing_label + 1}. A label "
            "is never filled in: fill it, remove the row, or upload with missing=drop."
        )
    kinds = []
    for j, name in enumerate(header):
        if j == label:
            continue
        stats = found.columns[j]
        if not stats.numeric:
            if options.encode != "onehot":
                raise InvalidUpload(
                    f"Feature column {name!r} is not numeric; features must be numbers, or "
                    "upload with encode=onehot to turn its categories into 0/1 features."
                )
            kinds.append(CATEGORY)
            continue
        if stats.first_bad is not None:
            raise bad_value(name, stats.first_bad, "feature")
        empty = found.first_empty[j]
        if empty is not None and options.missing == "refuse":
            raise InvalidUpload(
                f"Column {name!r} is empty in data row {empty + 1}. Missing values are not "
                "imputed unless asked: fill them in, or upload with missing=drop (drop such "
                "rows) or missing=median (the training rows' median)."
            )
        kinds.append(NUMBER)
    if found.kept.sum() == 0:
        raise InvalidUpload("Every data row has an empty cell: missing=drop leaves none.")
    return kinds


GROUP = 4096  # values per moment update: the figures never depend on how the upload was read


@dataclass(slots=True)
class Moments:
    """Count, mean, sum of squared deviations, min and max of a column's training values.

    Values are taken in upload order in groups of :data:`GROUP` (Chan's pairwise update per
    group), whatever batches they come in: both engines find the same figures, bit for bit.
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = np.inf
    high: float = -np.inf
    values: list[F64] = field(default_factory=list)  # kept for the median
    _pending: list[F64] = field(default_factory=list)
    _pending_count: int = 0

    def add(self, x: F64, keep: bool = False) -> None:
        if not len(x):
            return
        self.low, self.high = min(self.low, float(x.min())), max(self.high, float(x.max()))
        if keep:
            self.values.append(x)
        self._pending.append(x)
        self._pending_count += len(x)
        if self._pending_count >= GROUP:
            pending = np.concatenate(self._pending)
            whole = len(pending) - len(pending) % GROUP
            for start in range(0, whole, GROUP):
                self._update(pending[start : start + GROUP])
            rest = pending[whole:]
            self._pending, self._pending_count = [rest], len(rest)

    def close(self) -> Moments:
        """The figures, with the last (partial) group counted."""
        if self._pending_count:
            self._update(np.concatenate(self._pending))
            self._pending, self._pending_count = [], 0
        return self

    def _update(self, x: F64) -> None:
        n, mean = len(x), float(x.mean())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += float(((x - mean) ** 2).sum()) + delta * delta * self.count * n / total
        self.count = total


def _numbers(texts: npt.NDArray[Any]) -> F64:
    """Cells of a number column as float64 (NaN where empty), rounded correctly like predict's
    ``float()``."""
    return np.array([float(t) if t else np.nan for t in texts], dtype=np.float64)


def _features(cells: npt.NDArray[Any], spec: Preprocessing, indices: list[int], scale: bool) -> F64:
    """The model's input for rows of cells (the arithmetic of Preprocessing.transform)."""
    parts: list[F64] = []
    for column, j in zip(spec.columns, indices, strict=True):
        if column.kind == CATEGORY:
            texts = cells[:, j]
            parts.append(
                np.stack([(texts == c).astype(np.float64) for c in column.categories], axis=1)
            )
            continue
        x = _numbers(cells[:, j])
        if column.median is not None:
            x = np.where(np.isnan(x), column.median, x)
        if scale:
            x = (x - column.offset) / column.divisor
        parts.append(x[:, None])
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(cells), 0))


def plan(
    source: Source, options: UploadOptions, default_k: KChoice, layout: TrainLayout
) -> DatasetPlan:
    """Passes 1 and 2: validate, fit the transform on the training rows, choose k and the
    scaling if asked; the plan's write is pass 3.

    A plain upload (:mod:`dropfit.plaincsv`) takes the fast engine,
    :mod:`dropfit.plaintransform`, which writes the same bytes; this module is the reference.
    """
    # imported here: it builds on this module's fitting
    from dropfit import plaintransform

    fast = plaintransform.plan(source, options, default_k, layout)
    return fast if fast is not None else reference_plan(source, options, default_k, layout)


def reference_plan(
    source: Source, options: UploadOptions, default_k: KChoice, layout: TrainLayout
) -> DatasetPlan:
    """:func:`plan` with pandas, for any upload the options accept."""
    found = _scan(source, options, None)
    label = _label(found.header, found.columns, options)
    if label != found.label:
        found = _scan(source, options, label)
    kinds = _check(found, options)
    n_kept = int(found.kept.sum())
    # decide() judges the kept rows as the plain path judges an upload: classes, split, k.
    scan = Scan(
        found.header,
        n_kept,
        [ColumnStats() if j != label else found.columns[j] for j in range(len(found.header))],
        label,
        found.label_stats,
        found.size,
    )
    metadata, encoding, k_auto = decide(scan, label, options, default_k)
    is_test = holdout_mask(n_kept, options.test_fraction)
    spec, moments, sample = _fit(
        source, found=found, kinds=kinds, encoding=encoding, is_test=is_test, options=options
    )
    spec, metadata = finish(spec, moments, sample, metadata, options=options, k_auto=k_auto)
    parts = train_parts(found.size, metadata, layout)
    indices = [j for j in range(len(found.header)) if j != label]

    def write(router: Router) -> None:
        _write(source, found=found, spec=spec, indices=indices, encoding=encoding, router=router)

    return DatasetPlan(metadata, parts, "preprocessed", write)


def finish(
    spec: Preprocessing,
    moments: list[Moments],
    sample: tuple[F64, F64],
    metadata: RunMetadata,
    *,
    options: UploadOptions,
    k_auto: bool,
) -> tuple[Preprocessing, RunMetadata]:
    """The fitted transform (the scaling chosen by cross-validation if asked) and the run's
    metadata (k chosen if asked), from the unscaled fit and the cross-validation sample."""
    if spec.width > MAX_FEATURES:
        raise InvalidUpload(
            f"One-hot encoding makes {spec.width} features; at most {MAX_FEATURES} are supported."
        )
    changes: dict[str, Any] = {}
    scale = options.scale
    if options.scale == AUTO or k_auto:
        features, labels = sample
        numeric = np.concatenate(
            [
                np.ones(1, bool) if c.kind == NUMBER else np.zeros(len(c.categories), bool)
                for c in spec.columns
            ]
        )
        found_search = crossval.search(
            features,
            labels,
            metadata.predictor_type == "classifier",
            k_candidates(metadata.sample_size) if k_auto else [metadata.k],
            crossval.SCALES if options.scale == AUTO else [options.scale],
            scaled=numeric,
        )
        if k_auto:
            changes["k"] = found_search.chosen_k
            changes["k_search"] = found_search.k_search()
        if options.scale == AUTO:
            scale = found_search.scale
            spec = replace(
                spec, scale_chosen_by="cross-validation", scale_scores=found_search.scale_scores
            )
    spec = scaled(spec, scale, moments)
    metadata = replace(metadata, feature_dim=spec.width, preprocessing=spec.to_json(), **changes)
    return spec, metadata


def _fit(
    source: Source,
    *,
    found: _Found,
    kinds: list[str],
    encoding: Encoding,
    is_test: npt.NDArray[np.bool_],
    options: UploadOptions,
) -> tuple[Preprocessing, list[Moments], tuple[F64, F64]]:
    """Pass 2 over the training rows: the unscaled transform and the cross-validation sample."""
    indices = encoding.feature_indices
    n_kept = len(is_test)
    wanted = train_order_head(n_kept, options.test_fraction, crossval.MAX_ROWS)
    rank = np.argsort(wanted)  # the sample's kept rows in upload order, and their places
    ordered = wanted[rank]
    moments = [Moments() for _ in indices]
    categories: list[dict[str, int]] = [{} for _ in indices]
    median = [
        options.missing == "median" and found.empties[j] > 0 and kind == NUMBER
        for j, kind in zip(indices, kinds, strict=True)
    ]
    sample_cells = np.empty((len(wanted), len(found.header)), dtype=object)
    row0 = kept0 = 0
    with open_text(source) as text:
        for frame in _chunks(text, len(found.header)):
            cells = frame.to_numpy(dtype=object)[found.kept[row0 : row0 + len(frame)]]
            row0 += len(frame)
            train = ~is_test[kept0 : kept0 + len(cells)]
            lo, hi = np.searchsorted(ordered, [kept0, kept0 + len(cells)])
            sample_cells[rank[lo:hi]] = cells[ordered[lo:hi] - kept0]
            kept0 += len(cells)
            training = cells[train]
            for c, (j, kind) in enumerate(zip(indices, kinds, strict=True)):
                texts = training[:, j]
                if kind == CATEGORY:
                    values, counts = np.unique(texts[texts != ""].astype(str), return_counts=True)
                    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                        categories[c][value] = categories[c].get(value, 0) + count
                    if len(categories[c]) > MAX_CATEGORIES:
                        raise InvalidUpload(
                            f"Column {found.header[j]!r} has more than {MAX_CATEGORIES} "
                            "distinct values in the training rows; one-hot encoding is for "
                            "categories. Leave it out or turn it into numbers."
                        )
                    continue
                x = _numbers(texts)
                moments[c].add(x[~np.isnan(x)], median[c])
    columns = []
    for c, (j, kind) in enumerate(zip(indices, kinds, strict=True)):
        name = found.header[j]
        if kind == CATEGORY:
            columns.append(Column(name, CATEGORY, categories=sorted(categories[c])))
            continue
        m = moments[c].close()
        if m.count == 0:
            raise InvalidUpload(
                f"Column {name!r} has no value in any training row; there is nothing to learn "
                "from it or to fill it with. Leave it out."
            )
        value = float(np.median(np.concatenate(m.values))) if median[c] else None
        columns.append(Column(name, NUMBER, median=value))
    spec = Preprocessing(
        encode=options.encode,
        missing=options.missing,
        rows_dropped=found.n_rows - n_kept,
        values_filled=int(sum(found.empties[j] for j, m in zip(indices, median, strict=True) if m)),
        columns=columns,
    )
    features = _features(sample_cells, spec, indices, scale=False)
    labels = np.array(
        [float(v) for v in encoding.label_texts(sample_cells[:, encoding.label_index])]
    )
    return spec, moments, (features, labels)


def scaled(spec: Preprocessing, scale: str, moments: list[Moments]) -> Preprocessing:
    """The transform with each number column's offset and divisor for ``scale``."""
    columns = []
    for column, m in zip(spec.columns, moments, strict=True):
        if column.kind != NUMBER or scale == "none":
            columns.append(column)
            continue
        if scale == "standard":
            offset, divisor = m.mean, float(np.sqrt(m.m2 / m.count))
        else:
            offset, divisor = m.low, m.high - m.low
        # a constant column: divided by 1, as scikit-learn does
        columns.append(replace(column, offset=offset, divisor=divisor if divisor > 0 else 1.0))
    return replace(spec, scale=scale, columns=columns)


def rows_text_split(
    is_test: npt.NDArray[np.bool_], prefix: U8, prefix_keep: npt.NDArray[np.bool_], vectors: F64
) -> tuple[memoryview, npt.NDArray[np.int64], memoryview]:
    """Consecutive rows as :meth:`Router.write` takes them: the training rows' bytes and ends,
    the test rows' bytes. A row is its kept prefix bytes (its label and a comma), then its
    transformed values (:mod:`dropfit.floattext`)."""
    train, train_ends = rows_text(prefix[~is_test], prefix_keep[~is_test], vectors[~is_test])
    test, _ = rows_text(prefix[is_test], prefix_keep[is_test], vectors[is_test])
    return train.data, train_ends, test.data


def _write(
    source: Source,
    *,
    found: _Found,
    spec: Preprocessing,
    indices: list[int],
    encoding: Encoding,
    router: Router,
) -> None:
    """Pass 3: every kept row, transformed, label first, to its channel."""
    row0 = kept0 = 0
    with open_text(source) as text:
        for frame in _chunks(text, len(found.header)):
            cells = frame.to_numpy(dtype=object)[found.kept[row0 : row0 + len(frame)]]
            row0 += len(frame)
            if not len(cells):
                continue
            labels = encoding.label_texts(cells[:, encoding.label_index])
            prefix = np.array([f"{label}," for label in labels], dtype=np.bytes_)
            table = prefix.view(np.uint8).reshape(len(labels), -1)
            vectors = _features(cells, spec, indices, scale=True)
            is_test = router.is_test[kept0 : kept0 + len(vectors)]
            router.write(*rows_text_split(is_test, table, table != 0, vectors))
            kept0 += len(cells)
