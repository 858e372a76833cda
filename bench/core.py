"""The benchmark registry, results and the helpers every benchmark shares.

A benchmark is a function of a :class:`Context` that yields :class:`Result` entries; it registers
itself with :func:`benchmark` and is run by ``python -m bench.run`` (``make bench``). Every
figure is compared with a baseline measured in the same run (these machines are noisy), so
targets are on ratios; absolute times are reported, never asserted.
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "shared"
_OPERATORS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}


@dataclass(frozen=True)
class Target:
    """What a result must reach: ``<metric> <op> <bound>`` on its value or its ratio."""

    metric: str  # "value" or "ratio"
    op: str  # "<=", ">=", "=="
    bound: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"

    def met(self, value: float, ratio: float | None) -> bool:
        measured = value if self.metric == "value" else ratio
        return measured is not None and bool(_OPERATORS[self.op](measured, self.bound))


@dataclass(frozen=True)
class Result:
    """One line of the table and one entry of results.json."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: Target | None = None
    check: bool = False  # a correctness check: enforced in quick mode too
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _rounded(self.value),
            "unit": self.unit,
            "baseline": _rounded(self.baseline),
            "ratio": _rounded(self.ratio),
            "target": str(self.target) if self.target else None,
            "pass": self.passed,
            **({"detail": self.detail} if self.detail else {}),
        }


def _rounded(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.4g}")


@dataclass(frozen=True)
class Context:
    quick: bool
    workdir: Path  # scratch space for this run (outputs, builds), removed afterwards


Benchmark = Callable[[Context], Iterable[Result]]


@dataclass(frozen=True)
class Spec:
    name: str
    run: Benchmark
    quick: bool  # runs in quick mode (CI)
    about: str


REGISTRY: dict[str, Spec] = {}


def benchmark(name: str, *, quick: bool = True) -> Callable[[Benchmark], Benchmark]:
    """Register a benchmark; ``quick=False`` keeps it out of ``--quick`` (CI) runs."""

    def register(run: Benchmark) -> Benchmark:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} is registered twice")
        REGISTRY[name] = Spec(name, run, quick, (run.__doc__ or "").strip().splitlines()[0])
        return run

    return register


# --- measuring ------------------------------------------------------------------------------


def python_env(**extra: str) -> dict[str, str]:
    """A child Python's environment: the layer on the path, no AWS endpoint or credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(LAYER), str(ROOT)]),
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
    )
    # Deployed packages ship compiled bytecode (pip compiles on install): let children write it.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(extra)
    return env


def run_child(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run ``python <args>`` in a fresh process; its last stdout line is a JSON object."""
    completed = subprocess.run(
        [sys.executable, *args],
        env=env or python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited {completed.returncode}:\n{completed.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def limit_cpus() -> None:
    """In a child: run on the first N CPUs this process may use when DROPFIT_BENCH_CPUS=N."""
    wanted = os.environ.get("DROPFIT_BENCH_CPUS")
    if wanted:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: int(wanted)])


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would include the parent's)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- reporting ------------------------------------------------------------------------------


def table(results: Sequence[Result]) -> str:
    rows = [("benchmark", "value", "baseline", "ratio", "target", "pass")]
    for r in results:
        rows.append(
            (
                r.name,
                f"{r.value:.4g} {r.unit}",
                "" if r.baseline is None else f"{r.baseline:.4g} {r.unit}",
                "" if r.ratio is None else f"{r.ratio:.3g}x",
                str(r.target or ""),
                {True: "PASS", False: "FAIL", None: "-"}[r.passed],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
