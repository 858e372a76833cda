"""Transformed channels: ``scale=standard`` against the untransformed formatter, in one run.

Both run in fresh processes on the synthetic CSV of :mod:`bench.synthetic` and write their
channels to files, as :mod:`bench.formatter` does. The check reads the standardised channels
with the local SageMaker's own reader (what its training job reads) and compares every test row
with the float32 of ``(x - offset) / divisor``, computed from the upload and the run's figures.

``python -m bench.transformed plain|standard CSV OUTDIR`` is the child each measurement runs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench import synthetic
from bench.core import Context, Result, Target, benchmark, peak_rss_mib, run_child

MB = 1_000_000
QUICK_SIZES = (10 * MB,)
FULL_SIZES = (10 * MB, 100 * MB, 1000 * MB)
OPTIONS = {"plain": {}, "standard": {"scale": "standard"}}


def _label(size: int) -> str:
    return f"{size // 1000 // MB}GB" if size >= 1000 * MB else f"{size // MB}MB"


def child(kind: str, csv: Path, out: Path) -> dict[str, Any]:
    """One format of the upload, channels written as files (imports done before the clock)."""
    from dropfit import plaintransform, preprocessed  # noqa: F401  (imported by the function)
    from dropfit.dataset import TrainLayout, plan_dataset
    from dropfit.options import parse_options

    imported = peak_rss_mib()
    started = time.perf_counter()
    plan = plan_dataset(lambda: csv.open("rb"), parse_options(OPTIONS[kind]), 1, TrainLayout())
    names = plan.train_object_names()
    train = [(out / "train" / name).open("wb") for name in names]
    with (out / "test.csv").open("wb") as test:
        metadata = plan.write(train, test)
    (out / "metadata.json").write_bytes(metadata.to_json())
    return {
        "seconds": time.perf_counter() - started,
        "peak_mib": peak_rss_mib(),
        "imports_mib": imported,
        "rows": metadata.n_rows,
        "engine": plan.engine,
    }


def _measure(kind: str, csv: Path, out: Path) -> dict[str, Any]:
    (out / "train").mkdir(parents=True, exist_ok=True)
    for old in (out / "train").iterdir():
        old.unlink()
    return run_child(["-m", "bench.transformed", kind, str(csv), str(out)])


def local_engine_reads(csv: Path, out: Path) -> bool:
    """The local SageMaker's reader takes the channels, and every test row is the float32 of
    the standardised upload row (the run's offsets and divisors)."""
    import pandas as pd
    from dropfit.run_metadata import RunMetadata
    from dropfit.split import holdout_mask

    from dropfit_local.knn import parse_labeled_csv

    metadata = RunMetadata.from_json((out / "metadata.json").read_bytes())
    spec = metadata.transform()
    assert spec is not None
    train_rows = 0
    for part in sorted((out / "train").iterdir()):
        labels, features = parse_labeled_csv(part.read_text(), what=part.name)
        train_rows += len(labels)
        if features.shape[1] != metadata.feature_dim:
            return False
    _, test = parse_labeled_csv((out / "test.csv").read_text(), what="test.csv")
    frame = pd.read_csv(csv, dtype=str)  # numbers as float() reads them, below
    raw = frame.loc[holdout_mask(len(frame), metadata.test_fraction), metadata.feature_names]
    offsets = np.array([c.offset for c in spec.columns])
    divisors = np.array([c.divisor for c in spec.columns])
    x = raw.to_numpy(dtype=str).astype(np.float64)
    expected = ((x - offsets) / divisors).astype(np.float32)
    return train_rows == metadata.n_train and np.array_equal(test, expected)


def _runs(size: int) -> int:
    return 1 if size >= 1000 * MB else 3


@benchmark("formatter_transformed")
def formatter_transformed(ctx: Context) -> Iterator[Result]:
    """scale=standard vs the untransformed formatter: throughput ratio and peak memory."""
    for size in QUICK_SIZES if ctx.quick else FULL_SIZES:
        label = _label(size)
        csv = synthetic.cached_csv(size)
        mb = csv.stat().st_size / MB
        measured: dict[str, list[dict[str, Any]]] = {kind: [] for kind in OPTIONS}
        for _ in range(_runs(size)):  # interleaved: both see the same machine load
            for kind in OPTIONS:
                measured[kind].append(_measure(kind, csv, ctx.workdir / f"{kind}-{label}"))
        best = {kind: min(runs, key=lambda r: r["seconds"]) for kind, runs in measured.items()}
        plain, standard = best["plain"], best["standard"]
        at_1gb = size >= 1000 * MB
        yield Result(
            f"formatter_transformed.throughput.{label}",
            mb / standard["seconds"],
            "MB/s",
            baseline=mb / plain["seconds"],
            target=Target("ratio", ">=", 0.7) if at_1gb else None,
            detail={
                "seconds": round(standard["seconds"], 3),
                "baseline_seconds": round(plain["seconds"], 3),
                "engine": standard["engine"],
                "baseline_engine": plain["engine"],
                "rows": standard["rows"],
                "runs": _runs(size),
            },
        )
        yield Result(
            f"formatter_transformed.peak_memory.{label}",
            max(r["peak_mib"] for r in measured["standard"]),
            "MiB",
            baseline=max(r["peak_mib"] for r in measured["plain"]),
            target=Target("value", "<=", 256) if at_1gb else None,
            detail={"after_imports_mib": round(standard["imports_mib"], 1)},
        )
        if size == min(QUICK_SIZES):
            reads = local_engine_reads(csv, ctx.workdir / f"standard-{label}")
            yield Result(
                f"formatter_transformed.local_engine_reads.{label}",
                1.0 if reads else 0.0,
                "bool",
                target=Target("value", "==", 1),
                check=True,
            )


def main(argv: list[str]) -> None:
    print(json.dumps(child(argv[0], Path(argv[1]), Path(argv[2]))))


if __name__ == "__main__":
    main(sys.argv[1:])
