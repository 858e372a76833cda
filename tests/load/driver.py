"""Sustained predictions against the local HTTP API, and the memory of the stack meanwhile.

:func:`run_load` keeps ``clients`` threads (one keep-alive HTTP connection each) posting
one-row predictions for ``seconds``, while a sampler reads the resident memory (RSS) of the stack's
process and of every process it started (the runtimes' emulators and Python runtimes) from
``/proc``. :class:`LoadResult` has the figures: requests served, latency percentiles, errors, and
memory in the first and last windows of the run.
"""

from __future__ import annotations

import csv
import math
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

SAMPLE_SECONDS = 0.5


@dataclass(frozen=True)
class MemoryWindow:
    """Mean RSS (MiB) per role over a window of the run, and in all."""

    by_role: dict[str, float]
    total: float


@dataclass
class LoadResult:
    seconds: float
    clients: int
    latencies_ms: list[float] = field(default_factory=list)  # of the requests served
    errors: Counter[str] = field(default_factory=Counter)
    first: MemoryWindow | None = None
    last: MemoryWindow | None = None
    window_seconds: float = 0.0

    @property
    def served(self) -> int:
        return len(self.latencies_ms)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the latency (nearest rank), in ms."""
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else math.nan

    @property
    def memory_growth(self) -> float:
        """Relative growth of the stack's total RSS from the first window to the last."""
        assert self.first is not None and self.last is not None
        return self.last.total / self.first.total - 1

    def report(self) -> str:
        lines = [
            f"load: {self.seconds:.0f} s, {self.clients} clients, one-row predictions",
            f"  requests served: {self.served} ({self.served / self.seconds:.1f}/s)",
            f"  errors: {self.error_count}" + (f" {dict(self.errors)}" if self.errors else ""),
            f"  latency: p50 {self.percentile(50):.1f} ms, p90 {self.percentile(90):.1f} ms, "
            f"p99 {self.percentile(99):.1f} ms, max {max(self.latencies_ms, default=0):.1f} ms",
        ]
        if self.first is not None and self.last is not None:
            lines.append(
                f"  memory (RSS, MiB; mean of the first {self.window_seconds:.0f} s -> "
                f"the last {self.window_seconds:.0f} s):"
            )
            for role in sorted(self.first.by_role.keys() | self.last.by_role.keys()):
                before = self.first.by_role.get(role, 0.0)
                after = self.last.by_role.get(role, 0.0)
                lines.append(f"    {role:<40} {before:8.1f} -> {after:8.1f}")
            lines.append(
                f"    {'total':<40} {self.first.total:8.1f} -> {self.last.total:8.1f} "
                f"({self.memory_growth:+.1%})"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------- memory of the stack


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children[ppid].append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children = _children()
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def role(pid: int) -> str:
    """What a process of the stack is: the stack itself, or a function's emulator or runtime."""
    proc = Path("/proc") / str(pid)
    command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    function = Path(proc / "cwd").resolve().name  # runtimes run in their CodeUri folder
    if "awslambdaric" in command:
        return f"runtime {function} (Python)"
    if "aws-lambda-rie" in command:
        return f"runtime {function} (emulator)"
    if "dropfit_local" in command:
        return "stack (moto, SageMaker, HTTP API)"
    return command.split(" ", 1)[0]


def rss_mib(pid: int) -> float:
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0  # a zombie has no memory


def sample(root: int) -> dict[str, float]:
    """RSS (MiB) per role, summed over the processes of each role (``xN`` when several), now."""
    memory: dict[str, float] = defaultdict(float)
    count: Counter[str] = Counter()
    for pid in process_tree(root):
        try:
            kind, rss = role(pid), rss_mib(pid)
        except OSError:
            continue  # it exited meanwhile
        memory[kind] += rss
        count[kind] += 1
    return {f"{kind} x{count[kind]}" if count[kind] > 1 else kind: m for kind, m in memory.items()}


def _mean(samples: Sequence[dict[str, float]]) -> MemoryWindow:
    roles = {role for s in samples for role in s}
    by_role = {r: statistics.fmean(s.get(r, 0.0) for s in samples) for r in roles}
    return MemoryWindow(by_role, statistics.fmean(sum(s.values()) for s in samples))


# ---------------------------------------------------------------- the load


def feature_rows(path: Path) -> list[list[float]]:
    """The numeric columns of a CSV with a header row and the label last (iris.csv)."""
    with path.open(newline="") as source:
        rows = list(csv.reader(source))[1:]
    return [[float(value) for value in row[:-1]] for row in rows]


def run_load(
    url: str,
    rows: Sequence[Sequence[float]],
    *,
    seconds: float,
    clients: int,
    stack_pid: int | None = None,
    window_seconds: float = 10.0,
    auth: requests.auth.AuthBase | None = None,
) -> LoadResult:
    """POST ``{"instances": [row]}`` to ``url`` from ``clients`` threads for ``seconds``.

    A request is served when it answers 200 with one prediction; anything else (another status,
    a malformed answer, a connection error or timeout) is an error, counted by kind.
    """
    result = LoadResult(seconds, clients, window_seconds=min(window_seconds, seconds / 3))
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def client(offset: int) -> None:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        with requests.Session() as session:
            session.auth = auth  # signed as the stack's ApiAuth requires
            i = offset
            while (began := time.monotonic()) < deadline:
                row = rows[i % len(rows)]
                i += 1
                try:
                    response = session.post(url, json={"instances": [row]}, timeout=30)
                    elapsed = (time.monotonic() - began) * 1000
                    if response.status_code != 200:
                        errors[f"HTTP {response.status_code}"] += 1
                    elif response.json().get("count") != 1:
                        errors["malformed answer"] += 1
                    else:
                        latencies.append(elapsed)
                except (requests.RequestException, ValueError) as error:
                    errors[type(error).__name__] += 1
        with lock:
            result.latencies_ms.extend(latencies)
            result.errors.update(errors)

    samples: list[tuple[float, dict[str, float]]] = []
    threads = [threading.Thread(target=client, args=(n * 7,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    while stack_pid is not None and (now := time.monotonic()) < deadline:
        samples.append((now - start, sample(stack_pid)))
        time.sleep(SAMPLE_SECONDS)
    for thread in threads:
        thread.join()
    if samples:
        window = result.window_seconds
        result.first = _mean([s for t, s in samples if t <= window])
        result.last = _mean([s for t, s in samples if t >= seconds - window])
    return result
