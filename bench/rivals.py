"""The formatter against what a user could write with Polars or DuckDB, and against the floor.

Every pipeline does the formatter's job on the same synthetic CSV, in a fresh process, and
writes header-less train and test CSVs (label first, as its class index) that must hold the
same rows as Dropfit's: the rows ``train_test_split(random_state=0)`` puts in each
(:func:`dropfit.split.holdout_mask`, handed to each pipeline as a column of booleans).

- Polars: a lazy ``scan_csv`` with the test mask glued on horizontally, both channels written
  by ``sink_csv`` in one query on Polars' streaming engine (``collect_all``: faster than two
  queries, though it caches the shared scan, so its peak grows with the file); on 2 threads
  and on 1 (``POLARS_MAX_THREADS``).
- DuckDB: ``read_csv`` ``POSITIONAL JOIN`` the mask, each channel written by ``COPY``.
- The floor of Dropfit's design: one numpy pass that finds every separator of the file and
  writes two masked copies of it (no validation, no label moved): what reading, finding the
  rows and cutting them costs at the least on one core.

Dropfit runs on every CPU it may use and pinned to one. Rounds alternate the pipelines (they
see the same machine load) and each figure is the median of its rounds.

``python -m bench.rivals polars|duckdb|floor CSV OUTDIR`` is the child each measurement runs.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench import synthetic
from bench.core import Context, Result, Target, benchmark, limit_cpus, peak_rss_mib, python_env
from bench.formatter import MB, measure, row_hashes

LABEL = "species"
QUICK_SIZE, FULL_SIZE = 10 * MB, 1000 * MB
FULL_ROUNDS = 3
_NEWLINE, _COMMA = 10, 44


def _rows(csv: Path) -> int:
    """The data rows of the synthetic CSV (no blank lines: one row per line after the header).

    Counted before the clock starts: a rival is not charged for learning what Dropfit's pass 1
    learns on its way."""
    with csv.open("rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b"")) - 1


def _mask(n_rows: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The test rows, drawn as Dropfit draws them (in the timed part, as Dropfit's is)."""
    from dropfit.split import holdout_mask

    return holdout_mask(n_rows, 0.25)


def _mapping() -> dict[str, int]:
    return {name: i for i, name in enumerate(sorted(synthetic.CLASSES))}


# --- the children ---------------------------------------------------------------------------


def polars(csv: Path, out: Path) -> dict[str, Any]:
    import polars as pl

    imported, n_rows = peak_rss_mib(), _rows(csv)
    started = time.perf_counter()
    mask = pl.LazyFrame({"is_test": _mask(n_rows)})
    frame = pl.concat([pl.scan_csv(csv), mask], how="horizontal")
    label = pl.col(LABEL).replace_strict(_mapping(), return_dtype=pl.Int32)
    features = [c for c in frame.collect_schema().names() if c not in (LABEL, "is_test")]
    rows = frame.select(label, *features, "is_test")
    pl.collect_all(
        [
            rows.filter(~pl.col("is_test"))
            .drop("is_test")
            .sink_csv(out / "train" / "train.csv", include_header=False, lazy=True),
            rows.filter(pl.col("is_test"))
            .drop("is_test")
            .sink_csv(out / "test.csv", include_header=False, lazy=True),
        ],
        engine="streaming",  # Polars' streaming engine: the fastest of its engines here
    )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": peak_rss_mib(), "imports_mib": imported}


def duckdb(csv: Path, out: Path) -> dict[str, Any]:
    import duckdb as ddb
    import pandas as pd

    imported, n_rows = peak_rss_mib(), _rows(csv)
    started = time.perf_counter()
    con = ddb.connect(config={"threads": int(os.environ.get("DUCKDB_THREADS", "2"))})
    split = pd.DataFrame({"is_test": _mask(n_rows)})
    con.register("split", split)
    classes = " ".join(f"WHEN '{name}' THEN {i}" for name, i in _mapping().items())
    features = ", ".join(f"f{i}" for i in range(synthetic.FEATURES))
    rows = (
        f"SELECT CASE {LABEL} {classes} END AS label, {features}, is_test "
        f"FROM read_csv('{csv}', header=true) POSITIONAL JOIN split"
    )
    for where, path in (("NOT", out / "train" / "train.csv"), ("", out / "test.csv")):
        con.execute(
            f"COPY (SELECT * EXCLUDE (is_test) FROM ({rows}) WHERE {where} is_test) "
            f"TO '{path}' (HEADER false)"
        )
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": peak_rss_mib(), "imports_mib": imported}


def floor(csv: Path, out: Path) -> dict[str, Any]:
    """Every separator found, two masked copies written: one pass, in blocks of whole lines."""
    from dropfit.csvsource import BLOCK_BYTES

    imported, n_rows = peak_rss_mib(), _rows(csv)
    started = time.perf_counter()
    is_test = _mask(n_rows)
    row0, carry = 0, b""
    with (
        csv.open("rb") as source,
        (out / "train" / "train.csv").open("wb") as train,
        (out / "test.csv").open("wb") as test,
    ):
        header = source.readline()
        assert header
        while chunk := source.read(BLOCK_BYTES):
            block = carry + chunk
            cut = block.rfind(b"\n") + 1
            carry = block[cut:]
            arr = np.frombuffer(block, np.uint8, cut)
            separators = np.flatnonzero((arr == _COMMA) | (arr == _NEWLINE))
            ends = separators[arr[separators] == _NEWLINE] + 1
            rows = is_test[row0 : row0 + len(ends)]
            row0 += len(ends)
            fate = np.repeat(rows, np.diff(ends, prepend=0))
            test.write(arr[fate].data)
            train.write(arr[~fate].data)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": peak_rss_mib(), "imports_mib": imported}


CHILDREN = {"polars": polars, "duckdb": duckdb, "floor": floor}


def main(argv: list[str]) -> None:
    limit_cpus()
    kind, csv, out = argv[0], Path(argv[1]), Path(argv[2])
    print(json.dumps(CHILDREN[kind](csv, out)))


# --- the benchmark --------------------------------------------------------------------------

ONE_CPU = {"DROPFIT_BENCH_CPUS": "1"}
# name -> (child, environment): Dropfit's children are bench.formatter's
PIPELINES: dict[str, tuple[str, dict[str, str]]] = {
    "dropfit": ("stream", {}),
    "dropfit_1cpu": ("stream", ONE_CPU),
    "polars_2threads": ("polars", {"POLARS_MAX_THREADS": "2"}),
    "polars_1thread": ("polars", {"POLARS_MAX_THREADS": "1"}),
    "duckdb_2threads": ("duckdb", {"DUCKDB_THREADS": "2"}),
    "floor": ("floor", ONE_CPU),
}

COMPARED = ("dropfit", "dropfit_1cpu", "polars_2threads", "duckdb_2threads")  # Dropfit's first


@benchmark("formatter_rivals")
def formatter_rivals(ctx: Context) -> Iterator[Result]:
    """The formatter vs Polars, DuckDB and the floor of its design (same run, same file)."""
    size = QUICK_SIZE if ctx.quick else FULL_SIZE
    csv = synthetic.cached_csv(size)
    mb = csv.stat().st_size / MB
    label = f"{size // MB}MB" if size < 1000 * MB else f"{size // 1000 // MB}GB"
    rounds = 1 if ctx.quick else FULL_ROUNDS
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in PIPELINES}
    hashes: dict[str, tuple[bytes, bytes]] = {}
    for round_ in range(rounds):  # alternating: every pipeline sees the same machine load
        for name, (child, extra) in PIPELINES.items():
            module = "bench.formatter" if child == "stream" else "bench.rivals"
            out = ctx.workdir / name
            measured[name].append(measure(module, child, csv, out, python_env(**extra)))
            if round_ == rounds - 1:  # compared, then removed: the disk holds one output at a time
                if name in COMPARED:
                    hashes[name] = row_hashes(out)
                shutil.rmtree(out)
    seconds = {
        name: statistics.median(r["seconds"] for r in runs) for name, runs in measured.items()
    }
    peak = {name: max(r["peak_mib"] for r in runs) for name, runs in measured.items()}
    detail = {
        "seconds": {name: round(s, 3) for name, s in seconds.items()},
        "peak_mib": {name: round(p, 1) for name, p in peak.items()},
        "rounds": rounds,
        "cpus": len(os.sched_getaffinity(0)),
        "load_average_1min": round(os.getloadavg()[0], 2),  # at the end: others' jobs count too
    }
    full = not ctx.quick

    def throughput(name: str, versus: str, bound: float | None) -> Result:
        return Result(
            f"formatter.vs_{versus}.{label}",
            mb / seconds[name],
            "MB/s",
            baseline=mb / seconds[versus],
            target=Target("ratio", ">=", bound) if bound is not None and full else None,
            detail=detail if versus == "polars_2threads" else {},
        )

    yield throughput("dropfit", "polars_2threads", 1.25)
    yield throughput("dropfit_1cpu", "polars_1thread", None)
    yield throughput("dropfit", "duckdb_2threads", None)
    yield Result(
        f"formatter.one_cpu_vs_floor.{label}",
        seconds["dropfit_1cpu"],
        "s",
        baseline=seconds["floor"],
        target=Target("ratio", "<=", 1.5) if full else None,
    )
    yield Result(
        f"formatter.peak_memory_all_cpus.{label}",
        peak["dropfit"],
        "MiB",
        baseline=peak["polars_2threads"],
        target=Target("value", "<=", 256) if full else None,
    )
    for name in COMPARED[1:]:
        yield Result(
            f"formatter.same_rows.{name}.{label}",
            1.0 if hashes[name] == hashes["dropfit"] else 0.0,
            "bool",
            target=Target("value", "==", 1),
            check=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
