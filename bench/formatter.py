"""Formatter throughput and peak memory: the streaming formatter vs the tutorial's pandas path.

Both run in fresh processes on the same synthetic CSV and write their channels to files; the
streaming one is dropfit.dataset exactly as the format function runs it (file source instead of
S3). Their outputs must hold the same rows, with the same values, as sets.

``python -m bench.formatter stream|naive CSV OUTDIR`` is the child each measurement runs.
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
from bench.core import (
    Context,
    Result,
    Target,
    benchmark,
    limit_cpus,
    peak_rss_mib,
    run_child,
)

MB = 1_000_000
QUICK_SIZES = (10 * MB,)
FULL_SIZES = (10 * MB, 100 * MB, 1000 * MB)
LAMBDA_MB, FULL_VCPU_MB = 1024, 1769  # a Lambda gets one vCPU at 1,769 MB, a share below
LAMBDA_LIMIT_S = 900
# S3 reads: ~90 MB/s per connection (S3's performance guide: "one concurrent request for each
# 85-90 MB/s of desired network throughput"), and each pass reads with READ_WINDOW ranged GETs
# at once (dropfit.aws.s3). AWS publishes no network limit for Lambda; the one public measurement
# (github.com/sjakthol/aws-network-benchmark, 2024: iperf3, one connection, egress) saw 600 Mbps
# sustained after a 2.7 Gbps burst, at every memory size: the estimate says that case too.
S3_MB_PER_S = 90
MEASURED_LAMBDA_NET_MB_PER_S = 75  # 600 Mbps
PEAK_BYTES_PER_ROW = 7  # split mask and label ids (3), the permutation while drawn (4)


def _label(size: int) -> str:
    return f"{size // 1000 // MB}GB" if size >= 1000 * MB else f"{size // MB}MB"


# --- the two children -----------------------------------------------------------------------


# The options each streaming child formats with (metadata as an upload would give them).
OPTIONS = {
    "stream": {},
    "stream_k_auto": {"k": "auto"},
    "stream_scaled_k_auto": {"scale": "standard", "k": "auto"},
}


def stream(csv: Path, out: Path, options: dict[str, str] | None = None) -> dict[str, Any]:
    """Dropfit's formatter: streaming passes, channels written as files."""
    from dropfit.dataset import TrainLayout, plan_dataset
    from dropfit.options import parse_options
    from dropfit.parallel import usable_cpus

    imported = peak_rss_mib()
    started, cpu = time.perf_counter(), time.process_time()
    plan = plan_dataset(lambda: csv.open("rb"), parse_options(options or {}), 1, TrainLayout())
    names = plan.train_object_names()
    train = [(out / "train" / name).open("wb") for name in names]
    with (out / "test.csv").open("wb") as test:
        metadata = plan.write(train, test)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "cpus": usable_cpus(),
        "peak_mib": peak_rss_mib(),
        "imports_mib": imported,
        "rows": plan.metadata.n_rows,
        "train_objects": len(names),
        "engine": plan.engine,
        "k": metadata.k,
    }


def naive(csv: Path, out: Path) -> dict[str, Any]:
    """The tutorial: read_csv -> label first -> classes to ints -> train_test_split -> to_csv."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    imported = peak_rss_mib()
    started = time.perf_counter()
    frame = pd.read_csv(csv)
    label = "species"
    frame = frame[[label, *[c for c in frame.columns if c != label]]]
    classes = sorted(frame[label].unique())
    frame[label] = frame[label].map({c: i for i, c in enumerate(classes)})
    train, test = train_test_split(frame, test_size=0.25, random_state=0)
    train.to_csv(out / "train" / "train.csv", header=False, index=False)
    test.to_csv(out / "test.csv", header=False, index=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": peak_rss_mib(), "imports_mib": imported}


# --- comparing outputs -----------------------------------------------------------------------


def _row_hashes(paths: list[Path]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """A hash of every row's values (as float64), sorted: equal multisets of rows, equal arrays."""
    import pandas as pd

    hashes = []
    for path in paths:
        for chunk in pd.read_csv(path, header=None, dtype=np.float64, chunksize=500_000):
            hashes.append(pd.util.hash_pandas_object(chunk, index=False).to_numpy())
    joined = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    joined.sort()
    return joined


def row_hashes(out: Path) -> tuple[bytes, bytes]:
    """The sorted hashes of the rows of an output directory's train and test channels: two
    directories hold the same rows in each channel when these are equal."""
    train = _row_hashes(sorted((out / "train").iterdir()))
    return train.tobytes(), _row_hashes([out / "test.csv"]).tobytes()


def same_rows(ours: Path, theirs: Path) -> bool:
    return row_hashes(ours) == row_hashes(theirs)


# --- the benchmark ---------------------------------------------------------------------------


def measure(
    module: str, kind: str, csv: Path, out: Path, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python -m module kind csv out`` (a child writing out/train/*, out/test.csv)."""
    (out / "train").mkdir(parents=True, exist_ok=True)
    for old in (out / "train").iterdir():
        old.unlink()
    return run_child(["-m", module, kind, str(csv), str(out)], env)


def _measure(kind: str, csv: Path, out: Path) -> dict[str, Any]:
    return measure("bench.formatter", kind, csv, out)


def _runs(size: int) -> tuple[int, int]:
    """(streaming runs, naive runs): the best of several, fewer where a run is long."""
    if size >= 1000 * MB:
        return 1, 1
    return (5, 3) if size <= 10 * MB else (5, 2)


@benchmark("formatter")
def formatter(ctx: Context) -> Iterator[Result]:
    """Formatter throughput and peak memory vs the tutorial's pandas path (same run, same file)."""
    for size in QUICK_SIZES if ctx.quick else FULL_SIZES:
        label = _label(size)
        csv = synthetic.cached_csv(size)
        mb = csv.stat().st_size / MB
        ours_dir, naive_dir = ctx.workdir / f"ours-{label}", ctx.workdir / f"naive-{label}"
        n_ours, n_naive = _runs(size)
        ours, theirs = [], []
        for i in range(max(n_ours, n_naive)):  # interleaved: both see the same machine load
            if i < n_ours:
                ours.append(_measure("stream", csv, ours_dir))
            if i < n_naive:
                theirs.append(_measure("naive", csv, naive_dir))
        best = min(ours, key=lambda r: r["seconds"])
        base = min(theirs, key=lambda r: r["seconds"])
        equal = same_rows(ours_dir, naive_dir)
        throughput_target = Target("ratio", ">=", 8) if size == 100 * MB else None
        yield Result(
            f"formatter.throughput.{label}",
            mb / best["seconds"],
            "MB/s",
            baseline=mb / base["seconds"],
            target=throughput_target,
            detail={
                "seconds": round(best["seconds"], 3),
                "baseline_seconds": round(base["seconds"], 3),
                "runs": [n_ours, n_naive],
                "rows": best["rows"],
                "engine": best["engine"],
                "train_objects": best["train_objects"],
            },
        )
        yield Result(
            f"formatter.peak_memory.{label}",
            max(r["peak_mib"] for r in ours),
            "MiB",
            baseline=max(r["peak_mib"] for r in theirs),
            target=Target("value", "<=", 256) if size >= 1000 * MB else None,
            detail={"after_imports_mib": round(best["imports_mib"], 1)},
        )
        yield Result(
            f"formatter.same_rows_as_sklearn.{label}",
            1.0 if equal else 0.0,
            "bool",
            target=Target("value", "==", 1),
            check=True,
        )
        if size >= 1000 * MB:
            yield _lambda_fit(best, mb)


def _read_mb_per_s(network_mb_per_s: float | None = None) -> float:
    """A pass's S3 read rate: the window's connections at ~90 MB/s each, up to the network's."""
    from dropfit.aws.s3 import READ_WINDOW

    connections = READ_WINDOW * S3_MB_PER_S
    return connections if network_mb_per_s is None else min(connections, network_mb_per_s)


def _lambda_seconds(cpu_s_per_gb: float, read_mb_per_s: float) -> float:
    """1 GB in two passes, each as slow as the slower of its work and its S3 read (they
    overlap)."""
    return 2 * max(cpu_s_per_gb / 2, 1000 / read_mb_per_s)


def _lambda_fit(run: dict[str, Any], mb: float) -> Result:
    """The 1 GB time on a 1,024 MB Lambda (its share of a vCPU, S3 read with ranged GETs), and
    the largest CSV one function handles: memory bounds it at 1,024 MB, time (15 min) beyond.

    The CPU work is the run's CPU time (all its threads), spread over the vCPUs a function's
    memory buys, at most the CPUs it was measured on here."""
    from dropfit.aws.s3 import READ_PART_BYTES, READ_WINDOW

    seconds, rows, peak_mib = run["cpu_seconds"], run["rows"], run["peak_mib"]
    vcpus = min(LAMBDA_MB / FULL_VCPU_MB, run["cpus"])
    cpu_s_per_gb = seconds / (mb / 1000) / vcpus
    estimate = _lambda_seconds(cpu_s_per_gb, _read_mb_per_s())
    bytes_per_row = mb * MB / rows
    # blocks, parser, interpreter, and the S3 reader's parts (the file source here has none)
    reader_mib = (READ_WINDOW + 1) * READ_PART_BYTES / 2**20
    fixed_mib = peak_mib + reader_mib - rows * PEAK_BYTES_PER_ROW / 2**20

    def largest_gb(memory_mb: int) -> float:
        by_memory = (memory_mb - fixed_mib) * 2**20 / PEAK_BYTES_PER_ROW * bytes_per_row / 1e9
        cpu_s = seconds / (mb / 1000) / min(memory_mb / FULL_VCPU_MB, run["cpus"])
        by_time = LAMBDA_LIMIT_S / _lambda_seconds(cpu_s, _read_mb_per_s())
        return round(min(by_memory, by_time), 1)

    return Result(
        "formatter.lambda_1024MB_estimate.1GB",
        estimate,
        "s",
        baseline=LAMBDA_LIMIT_S,
        target=Target("ratio", "<=", 1 / 3),  # a wide margin: a third of the 15-minute limit
        detail={
            "local_seconds": round(run["seconds"], 2),
            "cpu_only_seconds": round(seconds / vcpus, 1),
            "assumes": "1,024/1,769 of a vCPU; each pass reads S3 with "
            f"{READ_WINDOW} ranged GETs at once at ~{S3_MB_PER_S} MB/s each "
            f"({_read_mb_per_s():.0f} MB/s), overlapped with the work; parts upload in the "
            "background",
            "single_stream_seconds": round(_lambda_seconds(cpu_s_per_gb, S3_MB_PER_S), 1),
            "network_600Mbps_seconds": round(
                _lambda_seconds(cpu_s_per_gb, _read_mb_per_s(MEASURED_LAMBDA_NET_MB_PER_S)), 1
            ),
            "peak_mib_with_s3_reader": round(peak_mib + reader_mib, 1),
            "largest_csv_gb_1024MB": largest_gb(1024),
            "largest_csv_gb_10240MB": largest_gb(10240),
            "by_memory_mb": {
                memory: _memory_setting(memory, seconds / (mb / 1000)) for memory in MEMORY_SETTINGS
            },
        },
    )


MEMORY_SETTINGS = (1024, 1769, 2048, 2654, 3538, 5307, 10240)


def _memory_setting(memory_mb: int, cpu_s_per_gb: float) -> dict[str, float]:
    """What a function of this memory gets (vCPUs, the formatter's threads) and the formatter's
    throughput there: its CPU time per GB spread over its threads' share of vCPUs, each pass as
    slow as the slower of that work and its S3 read. Threads are counted as the function counts
    them (:func:`dropfit.parallel.usable_cpus`), at most the CPUs measured on here."""
    from dropfit.parallel import usable_cpus

    vcpus = memory_mb / FULL_VCPU_MB
    threads = usable_cpus({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb)})
    seconds = _lambda_seconds(cpu_s_per_gb / min(vcpus, threads), _read_mb_per_s())
    return {
        "vcpus": round(vcpus, 2),
        "threads": threads,
        "seconds_per_gb": round(seconds, 1),
        "mb_per_s": round(1000 / seconds),
    }


# --- k=auto: what cross-validation adds to the format time --------------------------------------

K_AUTO_ROWS, K_AUTO_FEATURES = 100_000, 64
K_AUTO_QUICK_ROWS = 10_000


@benchmark("formatter_k_auto")
def formatter_k_auto(ctx: Context) -> Iterator[Result]:
    """k=auto's cost: the same upload formatted with k=1 and with k=auto (same run, same file)."""
    rows = K_AUTO_QUICK_ROWS if ctx.quick else K_AUTO_ROWS
    csv = synthetic.cached_csv(10**12, features=K_AUTO_FEATURES, rows=rows)
    runs = 3 if ctx.quick else 5
    measured: dict[str, list[dict[str, Any]]] = {kind: [] for kind in OPTIONS}
    for i in range(runs):  # interleaved: all see the same machine load
        for kind in OPTIONS:
            if kind == "stream_scaled_k_auto" and i:
                continue  # the slow numpy path: once is enough for its figure
            measured[kind].append(_measure(kind, csv, ctx.workdir / f"k-auto-{kind}"))
    best = {kind: min(done, key=lambda r: r["seconds"]) for kind, done in measured.items()}
    fixed, auto = best["stream"], best["stream_k_auto"]
    yield Result(
        f"formatter.k_auto_time.{rows // 1000}k_x_{K_AUTO_FEATURES}",
        auto["seconds"],
        "s",
        baseline=fixed["seconds"],
        target=None if ctx.quick else Target("ratio", "<=", 1.2),
        detail={
            "engine": auto["engine"],
            "k_chosen": auto["k"],
            "runs": runs,
            "peak_mib": round(auto["peak_mib"], 1),
            "baseline_peak_mib": round(fixed["peak_mib"], 1),
        },
    )
    scaled = best["stream_scaled_k_auto"]
    yield Result(
        f"formatter.scaled_k_auto_time.{rows // 1000}k_x_{K_AUTO_FEATURES}",
        scaled["seconds"],
        "s",
        baseline=fixed["seconds"],
        detail={
            "engine": scaled["engine"],
            "k_chosen": scaled["k"],
            "peak_mib": round(scaled["peak_mib"], 1),
            "note": "scale=standard,k=auto: the three-pass numpy path (issue 13 optimises it)",
        },
    )


def main(argv: list[str]) -> None:
    limit_cpus()
    kind, csv, out = argv[0], Path(argv[1]), Path(argv[2])
    measured = naive(csv, out) if kind == "naive" else stream(csv, out, OPTIONS[kind])
    print(json.dumps(measured))


if __name__ == "__main__":
    main(sys.argv[1:])
