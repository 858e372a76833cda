"""``python -m tests.load``: sustained predictions against a fresh local stack (``make load``).

Starts the stack (``python -m dropfit_local up`` on free ports), uploads the tutorial's iris.csv
through the S3 API, waits until it serves, warms up, then runs the load and prints the report
(requests served, p50/p99 latency, errors, the stack's memory). Exits 1 if any request failed or
the stack's memory grew by ``--max-growth`` or more from the first window to the last.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tests.e2e.stack import DATA, run_stack
from tests.load.driver import feature_rows, run_load

MODEL = "load"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60, help="measured load (default 60)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured load first (5 s)")
    parser.add_argument("--window", type=float, default=10, help="memory windows (10 s)")
    parser.add_argument("--max-growth", type=float, default=0.10, help="memory limit (0.10)")
    parser.add_argument("--predict-runtimes", type=int, default=2, help="predict runtimes (2)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    rows = feature_rows(DATA / "iris.csv")
    with (
        tempfile.TemporaryDirectory(prefix="dropfit-load-") as state,
        run_stack(
            Path(state), "--concurrency", f"predict={args.predict_runtimes}", show_log=False
        ) as local,
    ):
        print(f"local stack up (pid {local.pid}); training and deploying {MODEL!r} ...")
        local.upload(f"{MODEL}.csv", (DATA / "iris.csv").read_bytes())
        description = local.wait_for_new_run(MODEL)
        assert description["status"] == "ready", description
        url = f"{local.api}/models/{MODEL}/predict"
        print(f"warming up for {args.warmup:.0f} s, then {args.seconds:.0f} s against {url}")
        run_load(url, rows, seconds=args.warmup, clients=args.clients, auth=local.signed)
        result = run_load(
            url,
            rows,
            seconds=args.seconds,
            clients=args.clients,
            stack_pid=local.pid,
            window_seconds=args.window,
            auth=local.signed,
        )
    print(result.report())
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seconds": result.seconds,
                    "clients": result.clients,
                    "served": result.served,
                    "errors": dict(result.errors),
                    "p50_ms": result.percentile(50),
                    "p99_ms": result.percentile(99),
                    "memory_first_mib": result.first.total if result.first else None,
                    "memory_last_mib": result.last.total if result.last else None,
                },
                indent=2,
            )
            + "\n"
        )
    failed = result.error_count > 0 or result.memory_growth >= args.max_growth
    print("FAILED" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
