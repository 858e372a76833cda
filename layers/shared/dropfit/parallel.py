"""The CPUs this process may use, and work spread over them with its results kept in order.

A Lambda function gets CPU time in proportion to its memory: the equivalent of one vCPU at
1,769 MB, up to six at 10,240 MB, while it may *see* more CPUs than it has time for (two from
128 MB to 3,008 MB). So the count is the smallest of the CPUs this process may run on (its
affinity, not ``os.cpu_count``), its cgroup's CPU quota, and, on Lambda, its memory's share of
vCPUs rounded to the nearest: two threads take about a tenth more CPU time than one doing all
the work, so a second one pays once it gets at least half a vCPU (from 2,654 MB). numpy
releases the GIL in most of its work on large arrays, so threads are enough to use them (and
Lambda has no ``/dev/shm`` for ``multiprocessing``'s pools and queues).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

LAMBDA_MB_PER_VCPU = 1769
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus(
    environ: Mapping[str, str] | None = None, cgroup_cpu_max: Path = _CGROUP_CPU_MAX
) -> int:
    """How many threads of CPU-bound work this process can run at once (at least 1)."""
    env = os.environ if environ is None else environ
    counts = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1]
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            counts.append(math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 CPU controller here: no quota to honour
    # Set by the Lambda runtime itself (not by our template), so read here rather than settings.
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit():
        counts.append(math.floor(int(memory) / LAMBDA_MB_PER_VCPU + 0.5))
    return max(1, min(counts))


def ordered_map[T, R](work: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(work, items)`` on ``workers`` threads: results in the items' order, and at most
    ``2 * workers`` items taken ahead of the one the caller is given (memory stays bounded).

    An exception raised by ``work`` is raised to the caller at that item; items after it may
    have been worked on, never handed out.
    """
    if workers <= 1:
        yield from map(work, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="dropfit-work")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
