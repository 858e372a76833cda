"""Turn an uploaded CSV into the k-NN training and test channels, or say exactly why not.

What it does, as the tutorial does by hand: moves the label to the first column, maps class names
to ints 0..n-1 in sorted order, splits train/test like ``train_test_split(random_state=0)`` and
writes header-less CSVs (label first) for SageMaker's ``text/csv`` input.

It streams: pass 1 (:func:`plan_dataset`) reads the upload once to validate it and count its rows,
pass 2 (:meth:`DatasetPlan.write`) reads it again and sends each row to its channel. Memory stays
flat whatever the size: a few blocks of 8 MiB, plus 3 bytes per data row (7 while the split is
drawn). Uploads held in memory take the same path (:func:`format_dataset`).

Decisions (documented in README):
- Missing values are refused, not imputed: k-NN has no notion of a missing coordinate, and silently
  filling one in would change the model. The error names the column and the data row.
- Data rows are counted from 1 after the header; file lines (in ragged-row errors) count the header.
- Only comma-separated UTF-8 text (a UTF-8 byte-order mark is accepted).
- The train and test channels hold exactly the rows ``train_test_split`` puts in each, with the
  same values, **in upload order** (not in the split's shuffled order: that would need the whole
  file in memory; k-NN does not depend on the order of its training points). Numbers are written
  as uploaded when they are plain decimal (``5.1`` stays ``5.1``), else in Python's shortest form.
- A large training channel is written as several objects of about ``TrainLayout.part_bytes``, at
  least one per training instance and a multiple of their number, with equal row counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dropfit import crossval, csvscan, plaincsv, plainwrite
from dropfit.csvscan import (
    MAX_CLASSES,
    MAX_FEATURES,
    MAX_NAME_LENGTH,
    TALLY_LIMIT,
    Encoding,
    Router,
    Scan,
    Sink,
    all_numbers,
    choose_label,
    numeric_class_name,
)
from dropfit.csvsource import Source, bytes_source
from dropfit.errors import InvalidUpload
from dropfit.heap import keep_freed_memory
from dropfit.labels import LabelMap
from dropfit.options import AUTO, K_MAX, KChoice, UploadOptions
from dropfit.parallel import usable_cpus
from dropfit.run_metadata import RunMetadata
from dropfit.split import RANDOM_STATE, holdout_mask, split_sizes
from dropfit.tap import ChannelTap

__all__ = [
    "MAX_CLASSES",
    "MAX_FEATURES",
    "MAX_NAME_LENGTH",
    "DatasetPlan",
    "FormattedDataset",
    "Sink",
    "TrainLayout",
    "format_dataset",
    "k_candidates",
    "plan_dataset",
    "train_object_names",
]


@dataclass(frozen=True, slots=True)
class FormattedDataset:
    train_csv: bytes
    test_csv: bytes
    metadata: RunMetadata

    def hyperparameters(self) -> dict[str, str]:
        return self.metadata.hyperparameters()


@dataclass(frozen=True, slots=True)
class TrainLayout:
    """How the training channel is cut into objects."""

    instance_count: int = 1  # k-NN instances reading it ShardedByS3Key: at least one object each
    part_bytes: int = 128 * 1024 * 1024  # the size objects are aimed at when there are several


def train_object_names(parts: int) -> list[str]:
    """Object names under the training channel's prefix: ``train.csv``, or numbered parts."""
    return ["train.csv"] if parts == 1 else [f"part-{i:05d}.csv" for i in range(parts)]


@dataclass(frozen=True)
class DatasetPlan:
    """A validated upload: what the channels will hold, and how to write them.

    ``metadata.k`` is final unless ``k_auto``: then :meth:`write` chooses it by cross-validation
    on the training rows it writes, and returns the final metadata.
    """

    metadata: RunMetadata
    train_parts: int
    engine: str  # who writes the channels: "plain" (fast), "reference" or "preprocessed"
    _write: Callable[[Router], None] = field(repr=False)
    k_auto: bool = False

    def train_object_names(self) -> list[str]:
        return train_object_names(self.train_parts)

    def write(self, train: Sequence[Sink], test: Sink) -> RunMetadata:
        """Every data row to the test sink or to its training part (closed when full); the
        run's final metadata (k chosen, test label figures)."""
        if len(train) != self.train_parts:
            raise ValueError(f"expected {self.train_parts} training sinks, got {len(train)}")
        meta = self.metadata
        is_test = holdout_mask(meta.n_rows, meta.test_fraction)
        regressor = meta.predictor_type == "regressor"
        tap = (
            ChannelTap(is_test, meta.test_fraction, sample=self.k_auto, test_labels=regressor)
            if self.k_auto or regressor
            else None
        )
        router = Router(is_test, meta.n_train, train, test, tap)
        self._write(router)
        router.close()
        if tap is None:
            return meta
        changes: dict[str, Any] = {}
        if regressor:
            changes["test_labels"] = tap.test_label_stats()
        if self.k_auto:
            features, labels = tap.sample()
            found = crossval.search(
                features, labels, not regressor, k_candidates(meta.sample_size), ["none"]
            )
            changes["k"] = found.chosen_k
            changes["k_search"] = found.k_search()
        return replace(meta, **changes)


def k_candidates(sample_size: int) -> list[int]:
    """What k=auto tries: :data:`crossval.K_CANDIDATES`, at most the points the model keeps."""
    return [k for k in crossval.K_CANDIDATES if k <= min(sample_size, K_MAX)]


def plan_dataset(
    source: Source,
    options: UploadOptions,
    default_k: KChoice,
    layout: TrainLayout = TrainLayout(),
) -> DatasetPlan:
    """Pass 1: validate one upload. Raises :class:`InvalidUpload` naming the problem."""
    keep_freed_memory()  # every path allocates arrays per piece
    if options.transforms:
        # imported here: it builds on this module's decide() and train_parts()
        from dropfit import preprocessed

        return preprocessed.plan(source, options, default_k, layout)
    workers = usable_cpus()
    try:
        found = plaincsv.scan(source, options.label, options.predictor_type, workers)
    except plaincsv.NotPlain:
        found = csvscan.scan(source, options.label)
    numeric = [column.numeric for column in found.columns]
    label = choose_label(found.header, numeric, options.label)
    if label != found.label_index:
        # The first rows pointed at another label column: gather the real one's classes.
        found = csvscan.scan(source, options.label, label_hint=label)
    metadata, encoding, k_auto = decide(found, label, options, default_k)
    parts = train_parts(found.size, metadata, layout)
    if plainwrite.can_write(found, encoding):
        return DatasetPlan(
            metadata,
            parts,
            "plain",
            lambda router: plainwrite.write(source, found, encoding, router, workers),
            k_auto,
        )
    return DatasetPlan(
        metadata,
        parts,
        "reference",
        lambda router: csvscan.write(source, found.header, encoding, router),
        k_auto,
    )


def format_dataset(data: bytes, options: UploadOptions, default_k: KChoice) -> FormattedDataset:
    """Validate and format an upload held in memory (one training object)."""
    plan = plan_dataset(bytes_source(data), options, default_k)
    train, test = _Buffer(), _Buffer()
    metadata = plan.write([train], test)
    return FormattedDataset(train.value(), test.value(), metadata)


class _Buffer:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self._parts.append(bytes(data))

    def close(self) -> None:
        pass

    def value(self) -> bytes:
        return b"".join(self._parts)


# --- deciding, from what pass 1 found (in the order a whole-file check meets the problems) ---


def bad_value(name: str, bad: csvscan.BadValue, role: str) -> InvalidUpload:
    if bad.kind == csvscan.TOO_LARGE:
        return InvalidUpload(
            f"{role.capitalize()} column {name!r} has the value {bad.raw[:40]!r} in data row "
            f"{bad.row + 1}: too large for the 32-bit floats k-NN computes in (at most about "
            "3.4e38 in magnitude)."
        )
    return InvalidUpload(
        f"{role.capitalize()} column {name!r} has a {bad.kind} value {bad.raw[:40]!r} in data row "
        f"{bad.row + 1}; {role}s must be finite numbers."
    )


def decide(
    found: Scan, label: int, options: UploadOptions, default_k: KChoice
) -> tuple[RunMetadata, Encoding, bool]:
    """The run's metadata and how rows are written, from what pass 1 found; whether k=auto.

    With k=auto, ``metadata.k`` is 1 until cross-validation chooses it.
    """
    header = found.header
    name = header[label]
    features = [j for j in range(len(header)) if j != label]
    for j in features:
        bad = found.columns[j].first_bad
        if bad is not None:
            raise bad_value(header[j], bad, "feature")

    column, stats = found.columns[label], found.label
    if options.predictor_type is not None:
        predictor_type = options.predictor_type
    else:
        fractional = column.numeric and column.first_bad is None and stats.any_fractional
        predictor_type = "regressor" if fractional else "classifier"

    label_map: LabelMap | None = None
    counts: dict[str, int] = {}
    overflow = False
    if predictor_type == "classifier":
        if column.numeric:
            if column.first_bad is not None:
                raise bad_value(name, column.first_bad, "label")
            too_long = stats.first_long_number
            counts = {numeric_class_name(v): n for v, n in stats.values.counts.items()}
            overflow = stats.values.overflow
        else:
            too_long = stats.first_long_text
            counts = dict(stats.texts.counts)
            overflow = stats.texts.overflow
        if too_long is not None:
            row, length = too_long
            raise InvalidUpload(
                f"Label column {name!r} has a class name of {length} characters in data "
                f"row {row + 1}; at most {MAX_NAME_LENGTH} are allowed."
            )
        if name in counts and all_numbers([header[j] for j in features]):
            # iris without its header: 5.1,3.5,1.4,0.2,setosa became the column names
            raise InvalidUpload(
                f"The first line looks like data, not a header: the feature columns are named "
                f"with numbers and the label column's name {name!r} is one of its own classes. "
                "The CSV needs a header row naming the columns."
            )
        label_map = LabelMap.from_labels(counts)
    elif column.first_bad is not None:
        raise bad_value(name, column.first_bad, "label")

    n_rows = found.n_rows
    n_train, n_test = split_sizes(n_rows, options.test_fraction)
    if label_map is not None:
        _check_class_counts(label_map, counts, overflow, n_train, name)
    sample_size = options.sample_size if options.sample_size is not None else n_train
    if sample_size > n_train:
        raise InvalidUpload(
            f"Option sample_size={sample_size} is larger than the training set ({n_train} rows)."
        )
    chosen = options.k if options.k is not None else default_k
    k = 1 if chosen == AUTO else int(chosen)
    if k > min(sample_size, K_MAX):
        raise InvalidUpload(
            f"k={k} is larger than the {sample_size} training points the model will hold; "
            f"use k <= {min(sample_size, K_MAX)}."
        )

    metadata = RunMetadata(
        label_column=name,
        feature_names=[header[j] for j in features],
        predictor_type=predictor_type,
        classes=list(label_map.classes) if label_map is not None else None,
        n_rows=n_rows,
        n_train=n_train,
        n_test=n_test,
        test_fraction=options.test_fraction,
        random_state=RANDOM_STATE,
        k=k,
        sample_size=sample_size,
    )
    encoding = Encoding(
        label_index=label,
        feature_indices=features,
        classes=label_map.index() if label_map is not None else None,
        numeric_classes=column.numeric,
    )
    return metadata, encoding, chosen == AUTO


def _check_class_counts(
    label_map: LabelMap, counts: dict[str, int], overflow: bool, n_train: int, name: str
) -> None:
    n_classes = len(label_map.classes)
    if n_classes < 2:
        raise InvalidUpload(
            f"Label column {name!r} has only one class ({label_map.classes[0]!r}); a classifier "
            "needs at least 2 classes."
        )
    if overflow:
        raise InvalidUpload(
            f"Label column {name!r} has more than {TALLY_LIMIT} classes; at most {MAX_CLASSES} "
            "are supported. For a numeric target use predictor_type=regressor."
        )
    if n_classes > MAX_CLASSES:
        raise InvalidUpload(
            f"Label column {name!r} has {n_classes} classes; at most {MAX_CLASSES} are supported. "
            "For a numeric target use predictor_type=regressor."
        )
    if n_classes > n_train:
        raise InvalidUpload(
            f"Label column {name!r} has {n_classes} classes but only {n_train} training rows."
        )
    single = [c for c in label_map.classes if counts[c] < 2]
    if single:
        raise InvalidUpload(
            f"Class {single[0]!r} of label column {name!r} has a single row; every class needs "
            "at least 2 rows so that training can see it."
        )


def train_parts(size: int, metadata: RunMetadata, layout: TrainLayout) -> int:
    """As many objects as ~part_bytes of training rows need, a multiple of the instance count."""
    instances = layout.instance_count
    n_train = metadata.n_train
    if instances > 1:
        if n_train < instances:
            raise InvalidUpload(
                f"The training set has {n_train} rows, fewer than the {instances} training "
                "instances; each instance needs at least one. Upload more rows."
            )
        if metadata.sample_size < instances:
            raise InvalidUpload(
                f"Option sample_size={metadata.sample_size} is smaller than the {instances} "
                "training instances; each instance samples its share of it."
            )
    estimate = size * n_train / max(1, metadata.n_rows)
    parts = max(1, math.ceil(estimate / layout.part_bytes))
    parts = math.ceil(parts / instances) * instances
    return int(min(parts, n_train // instances * instances))
