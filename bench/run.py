"""``make bench``: run the benchmarks, print the table, write bench/results.json.

    python -m bench.run              # every benchmark, full sizes (~5 minutes)
    python -m bench.run --quick      # small sizes, what CI runs so that the suite cannot rot
    python -m bench.run --only formatter coldstart

The exit status is 1 when a benchmark fails to run or a correctness check fails, and (full mode
only: small sizes say little about speed) when a performance target is missed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

# Importing a benchmark module registers its benchmarks: add new ones here.
from bench import (  # noqa: F401
    cli,
    coldstart,
    formatter,
    knn,
    package,
    pipeline,
    predict,
    rivals,
    s3read,
    transformed,
)
from bench.core import REGISTRY, ROOT, Context, Result, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--only", nargs="+", choices=sorted(REGISTRY), help="these benchmarks")
    parser.add_argument("--output", type=Path, help="results file (default bench/results*.json)")
    args = parser.parse_args(argv)
    default = "results-quick.json" if args.quick else "results.json"
    output = args.output or ROOT / "bench" / default

    results: list[Result] = []
    errors: dict[str, str] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dropfit-bench-") as scratch:
        for spec in REGISTRY.values():
            if (args.only and spec.name not in args.only) or (args.quick and not spec.quick):
                continue
            print(f"running {spec.name}: {spec.about}", file=sys.stderr, flush=True)
            workdir = Path(scratch) / spec.name
            workdir.mkdir()
            try:
                for result in spec.run(Context(quick=args.quick, workdir=workdir)):
                    results.append(result)
                    print(f"  {result.name}: {result.value:.4g} {result.unit}", file=sys.stderr)
            except Exception:
                errors[spec.name] = traceback.format_exc()
                print(errors[spec.name], file=sys.stderr)

    print(table(results))
    failed = [r.name for r in results if r.passed is False and (r.check or not args.quick)]
    report = {
        "mode": "quick" if args.quick else "full",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "system": platform.platform(),
        },
        "benchmarks": [r.to_json() for r in results],
        "errors": errors,
        "failed": failed,
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    if errors or failed:
        print(f"errors: {sorted(errors)}  failed: {failed}", file=sys.stderr)
        return 1
    return 0


def _cpus() -> int | None:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
