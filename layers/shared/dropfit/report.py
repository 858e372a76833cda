"""A deployed run's validation report: its test rows through the endpoint, then report.json and
report.html under ``reports/<model>/<run>/``.

The predictions are the endpoint's own answers to the rows of the run's test channel (the very
numbers the training job scored), sent in requests under the endpoint's 4 MB limit: the report
shows what the API serves, not a re-computation. Every answer must come from the run's own
production variant; if a newer run answers meanwhile, that run gets its own report instead.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dropfit import evaluation
from dropfit.aws.s3 import Storage
from dropfit.aws.sagemaker import SageMakerControl, SageMakerRuntime
from dropfit.aws.table import RunsTable
from dropfit.dataset import train_object_names
from dropfit.names import model_from_endpoint_name
from dropfit.prediction import MAX_ENDPOINT_PAYLOAD
from dropfit.records import now_iso
from dropfit.run_metadata import MetadataUnreadable, RunMetadata, metadata_key, run_prefix
from dropfit.settings import ReportSettings

logger = logging.getLogger("dropfit")

# The first rows of the test channel are evaluated (the split is random: they are a random
# sample of it); beyond this the report says how many it left out.
MAX_EVALUATED_ROWS = 100_000
# Rows per InvokeEndpoint request, besides the 4 MB limit: each request stays well within the
# serverless endpoint's 60 s.
BATCH_ROWS = 10_000
# report.json keeps the validation table's first rows up to this size, so that GET
# /models/{model}/report stays far below Lambda's 6 MB response limit.
TABLE_BYTES = 1_000_000

Outcome = Literal["written", "duplicate", "ignored", "superseded"]


@dataclass(frozen=True, slots=True)
class HoldoutRows:
    """The test channel's rows: label (as the channel writes it), features, the features' text."""

    labels: list[str]
    features: list[list[float]]
    lines: list[bytes]  # each row's features exactly as the channel holds them
    total: int  # rows in the channel, evaluated or not


def read_test_rows(lines: Iterable[bytes], limit: int = MAX_EVALUATED_ROWS) -> HoldoutRows:
    """Header-less ``label,feature,...`` lines (the test channel) -> the first ``limit`` rows."""
    labels: list[str] = []
    features: list[list[float]] = []
    texts: list[bytes] = []
    total = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        total += 1
        if total > limit:
            continue
        label, _, rest = line.partition(b",")
        labels.append(label.decode())
        features.append([float(v) for v in rest.split(b",")])
        texts.append(rest)
    return HoldoutRows(labels, features, texts, total)


def endpoint_batches(
    lines: Sequence[bytes], limit: int = MAX_ENDPOINT_PAYLOAD, rows: int = BATCH_ROWS
) -> Iterator[tuple[int, bytes]]:
    """(first row, text/csv body) requests of at most ``limit`` bytes and ``rows`` rows."""
    start, size = 0, 0
    for i, line in enumerate(lines):
        if len(line) > limit:
            raise ValueError(f"test row {i + 1} alone is over the endpoint's {limit} bytes")
        added = len(line) + (1 if i > start else 0)
        if i > start and (size + added > limit or i - start >= rows):
            yield start, b"\n".join(lines[start:i])
            start, added = i, len(line)
            size = 0
        size += added
    if start < len(lines):
        yield start, b"\n".join(lines[start:])


@dataclass(frozen=True, slots=True)
class LabelSummary:
    """What the training rows say about the label: class counts, or the mean."""

    counts: dict[int, int]  # classifier: class index -> training rows
    mean: float | None  # regressor: the training labels' mean


def summarise_labels(lines: Iterable[bytes], predictor_type: str) -> LabelSummary:
    """Training channel lines (label first) -> class counts or the label mean."""
    firsts = (line.split(b",", 1)[0] for line in lines if line.strip())
    if predictor_type == "classifier":
        counts = Counter(firsts)
        return LabelSummary({int(float(k)): n for k, n in counts.items()}, None)
    values = [float(v) for v in firsts]
    return LabelSummary({}, math.fsum(values) / len(values) if values else None)


Cell = float | str | None


@dataclass(frozen=True, slots=True)
class Inputs:
    """How the model's inputs (a test channel row) map back to the upload's features."""

    names: list[str]  # one per model input: the feature, or "feature=category" for one-hot
    features: list[str]  # the upload's features
    columns: list[dict[str, Any]]  # metadata's preprocessing columns; empty: inputs are features

    @classmethod
    def of(cls, metadata: Mapping[str, Any]) -> Inputs:
        features = list(metadata["feature_names"])
        columns = list((metadata.get("preprocessing") or {}).get("columns") or [])
        if not columns:
            return cls(features, features, [])
        names = [
            f"{c['name']}={category}" if c["kind"] == "category" else c["name"]
            for c in columns
            for category in (c["categories"] if c["kind"] == "category" else [None])
        ]
        return cls(names, [c["name"] for c in columns], columns)

    def features_of(self, row: Sequence[float]) -> list[Cell]:
        """A row of model inputs as the upload's values: scaling undone, one-hot groups back to
        their category (None when all zeros: a category the training rows did not have)."""
        if not self.columns:
            return list(row)
        values: list[Cell] = []
        i = 0
        for column in self.columns:
            if column["kind"] == "category":
                group = row[i : i + len(column["categories"])]
                i += len(group)
                hot = [j for j, v in enumerate(group) if v > 0]
                values.append(column["categories"][hot[0]] if hot else None)
            else:
                values.append(row[i] * column.get("divisor", 1.0) + column.get("offset", 0.0))
                i += 1
        return values


def _scale_method(metadata: Mapping[str, Any]) -> str:
    scale = (metadata.get("preprocessing") or {}).get("scale") or {}
    return str(scale.get("method", "none"))


def build_report(
    *,
    model: str,
    run: str,
    metadata: Mapping[str, Any],
    rows: HoldoutRows,
    predicted: Sequence[float],
    train: LabelSummary,
    training_metrics: Mapping[str, float] | None,
    invocations: int,
    created_at: str,
) -> dict[str, Any]:
    """report.json: figures, baseline, warnings, and the validation table."""
    inputs = Inputs.of(metadata)
    predictor_type = str(metadata["predictor_type"])
    # The spreads the distances see: of the model's inputs, scaled or not.
    spreads = evaluation.feature_spreads(rows.features, inputs.names)
    table: list[dict[str, Any]] = []
    class_rows: dict[str, int] | None = None
    if predictor_type == "classifier":
        classes: list[str] = list(metadata["classes"])
        truth = [int(float(label)) for label in rows.labels]
        guesses = [int(p) for p in predicted]
        metrics = evaluation.classification(truth, guesses, classes)
        baseline = evaluation.majority_baseline(truth, classes, train.counts)
        test_counts = Counter(truth)  # the evaluated test rows: all of them but on huge uploads
        class_rows = {
            name: train.counts.get(i, 0) + test_counts.get(i, 0) for i, name in enumerate(classes)
        }
        for values, t, p in zip(rows.features, truth, guesses, strict=True):
            table.append(
                {
                    "features": inputs.features_of(values),
                    "label": classes[t],
                    "prediction": classes[p],
                    "correct": t == p,
                }
            )
    else:
        truth_values = [float(label) for label in rows.labels]
        values_predicted = [float(p) for p in predicted]
        metrics = evaluation.regression(truth_values, values_predicted)
        if train.mean is None:
            raise ValueError("the training channel holds no rows")
        baseline = evaluation.mean_baseline(truth_values, train.mean)
        for values, t_value, p_value in zip(
            rows.features, truth_values, values_predicted, strict=True
        ):
            table.append(
                {
                    "features": inputs.features_of(values),
                    "label": t_value,
                    "prediction": p_value,
                    "error": p_value - t_value,
                }
            )
    scale = _scale_method(metadata)
    advice = evaluation.warnings_for(
        predictor_type=predictor_type,
        scale_method=scale,
        spreads=spreads,
        class_rows=class_rows,
        metrics=metrics,
        baseline=baseline,
    )
    shown = _within_budget(table, TABLE_BYTES)
    report: dict[str, Any] = {
        "model": model,
        "run": run,
        "created_at": created_at,
        "predictor_type": predictor_type,
        "label_column": metadata.get("label_column"),
        "features": inputs.features,
        "features_as_uploaded": bool(inputs.columns),
        "classes": metadata.get("classes"),
        "k": (metadata.get("k_search") or {}).get("chosen", metadata.get("k")),
        "dataset": {
            "rows": metadata.get("n_rows"),
            "train_rows": metadata.get("n_train"),
            "test_rows": rows.total,
            "evaluated_rows": len(rows.labels),
            "test_fraction": metadata.get("test_fraction"),
        },
        "predictions_from": {"source": "endpoint", "invocations": invocations},
        "metrics": metrics,
        "baseline": baseline,
        "training_job_metrics": dict(training_metrics or {}),
        "scaling": scale,
        "preprocessing": metadata.get("preprocessing"),
        "rows_dropped": ((metadata.get("preprocessing") or {}).get("missing") or {}).get(
            "rows_dropped", 0
        ),
        "k_search": metadata.get("k_search"),
        "feature_spreads": spreads,
        "warnings": [a.as_json() for a in advice],
        "table": {"rows": table[:shown], "shown": shown, "total": len(table)},
    }
    return report


def _within_budget(rows: Sequence[Mapping[str, Any]], budget: int) -> int:
    """How many of the first rows fit in ``budget`` bytes of JSON."""
    used = 0
    for i, row in enumerate(rows):
        used += len(json.dumps(row)) + 2
        if used > budget:
            return i
    return len(rows)


def report_keys(reports_prefix: str, model: str, run: str) -> tuple[str, str]:
    """The S3 keys of a run's report.json and report.html."""
    base = f"{reports_prefix}{model}/{run}/"
    return f"{base}report.json", f"{base}report.html"


@dataclass(frozen=True, slots=True)
class Reporter:
    settings: ReportSettings
    storage: Storage
    table: RunsTable
    control: SageMakerControl
    runtime: SageMakerRuntime

    def on_endpoint_in_service(self, endpoint: str) -> Outcome:
        """Write the report of the run the endpoint now serves, once per run."""
        settings = self.settings
        model = model_from_endpoint_name(settings.name_prefix, endpoint)
        state = self.control.describe_endpoint(endpoint)
        if state is None or state.status != "InService" or state.config_name is None:
            return "ignored"  # a later state change brings it back here
        job = state.config_name  # the endpoint config, and its variant, are named after the run
        run = self.table.get_run(model, job)
        if run is None:
            logger.warning("the endpoint serves a run with no record", extra={"run": job})
            return "ignored"
        if run.report is not None:
            return "duplicate"
        bucket, base = settings.bucket_name, run_prefix(settings.datasets_prefix, model, job)
        data = self.storage.read_object(bucket, metadata_key(settings.datasets_prefix, model, job))
        if data is None:
            raise MetadataUnreadable(f"{job} serves but has no metadata.json")
        RunMetadata.from_json(data)  # what every run has; the report also reads what some have
        metadata = json.loads(data)
        rows = read_test_rows(self.storage.lines(bucket, f"{base}test/test.csv"))
        predicted, invocations = self._predict(endpoint, job, rows.lines)
        if predicted is None:
            logger.info("a newer run answers; its own report follows", extra={"run": job})
            return "superseded"
        parts = (run.dataset or {}).get("train_objects", 1)
        train = summarise_labels(
            (
                line
                for name in train_object_names(int(parts))
                for line in self.storage.lines(bucket, f"{base}train/{name}")
            ),
            str(metadata["predictor_type"]),
        )
        report = build_report(
            model=model,
            run=job,
            metadata=metadata,
            rows=rows,
            predicted=predicted,
            train=train,
            training_metrics=run.metrics,
            invocations=invocations,
            created_at=now_iso(),
        )
        from dropfit.report_page import render  # matplotlib: only where a page is drawn

        json_key, html_key = report_keys(settings.reports_prefix, model, job)
        # The page first: report.json, then the run's record, say that both exist.
        self.storage.put(bucket, html_key, render(report).encode(), "text/html; charset=utf-8")
        self.storage.put(bucket, json_key, json.dumps(report).encode(), "application/json")
        self.table.update_run(
            model,
            job,
            report={"json": json_key, "html": html_key, "created_at": report["created_at"]},
        )
        logger.info(
            "report written",
            extra={"model": model, "run": job, "rows": len(rows.labels), "calls": invocations},
        )
        return "written"

    def _predict(
        self, endpoint: str, job: str, lines: Sequence[bytes]
    ) -> tuple[list[float] | None, int]:
        """The endpoint's predicted_label for every line, or None if another run answered."""
        predicted: list[float] = []
        calls = 0
        for _, body in endpoint_batches(lines):
            invocation = self.runtime.invoke(endpoint, body, "text/csv", "application/json")
            calls += 1
            if invocation.variant is not None and invocation.variant != job:
                return None, calls
            answers = json.loads(invocation.body)["predictions"]
            predicted += [float(a["predicted_label"]) for a in answers]
        if len(predicted) != len(lines):
            raise ValueError(f"the endpoint answered {len(predicted)} of {len(lines)} rows")
        return predicted, calls
