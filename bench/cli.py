"""Start-up of the ``dropfit`` command: ``dropfit --help``, the whole process, as a user waits.

Baseline, in the same run: ``python -c "import boto3"`` (the interpreter starting, plus boto3: what
any AWS command line in Python pays at least). Runs are interleaved so that both see the same
machine load; the medians are compared. What ``--help`` imports is a test
(tests/cli/test_commands.py), not a timing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from statistics import median

from bench.core import ROOT, Context, Result, Target, benchmark, python_env

RUNS, QUICK_RUNS = 15, 3
DROPFIT = Path(sys.executable).parent / "dropfit"  # the console script make install puts there


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, env=python_env(), cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=60
    )
    return time.perf_counter() - started


@benchmark("cli")
def cli(ctx: Context) -> Iterator[Result]:
    """``dropfit --help`` against ``python -c 'import boto3'`` (median wall time)."""
    help_command = [str(DROPFIT), "--help"]
    baseline_command = [sys.executable, "-c", "import boto3"]
    _seconds(help_command)  # bytecode compiled, files cached, as on a user's second run
    _seconds(baseline_command)
    helps, baselines = [], []
    for _ in range(QUICK_RUNS if ctx.quick else RUNS):
        helps.append(_seconds(help_command))
        baselines.append(_seconds(baseline_command))
    yield Result(
        "cli.help_start",
        median(helps) * 1000,
        "ms",
        baseline=median(baselines) * 1000,
        target=Target("ratio", "<=", 1.5),
        detail={"baseline": "python -c 'import boto3'", "runs": len(helps)},
    )
