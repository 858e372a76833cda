"""The CPUs the formatter uses, and work spread over threads with its results kept in order."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dropfit.parallel import ordered_map, usable_cpus

AFFINITY = len(os.sched_getaffinity(0))
NO_CGROUP = Path("/nonexistent/cpu.max")


def test_a_lambda_uses_its_memorys_share_of_vcpus_rounded_to_the_nearest(tmp_path: Path) -> None:
    at = {
        mb: usable_cpus({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(mb)}, NO_CGROUP)
        for mb in (1024, 2048, 2653, 2654, 3538, 10240)
    }

    assert at == {
        1024: 1,
        2048: 1,
        2653: 1,
        2654: min(2, AFFINITY),
        3538: min(2, AFFINITY),
        10240: min(6, AFFINITY),
    }


def test_a_cgroup_quota_bounds_the_count_and_no_quota_leaves_the_affinity(tmp_path: Path) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")
    unlimited = tmp_path / "unlimited"
    unlimited.write_text("max 100000\n")

    assert usable_cpus({}, quota) == 1
    assert usable_cpus({}, unlimited) == AFFINITY
    assert usable_cpus({}, NO_CGROUP) == AFFINITY


def test_results_come_in_the_items_order_whatever_finishes_first() -> None:
    def slow_when_even(i: int) -> int:
        time.sleep(0.01 if i % 2 == 0 else 0)
        return i * i

    assert list(ordered_map(slow_when_even, range(20), workers=3)) == [i * i for i in range(20)]
    assert list(ordered_map(slow_when_even, range(5), workers=1)) == [0, 1, 4, 9, 16]


def test_work_runs_on_several_threads_and_takes_only_a_few_items_ahead() -> None:
    taken: list[int] = []
    threads: set[int] = set()

    def items() -> Iterator[int]:
        for i in range(100):
            taken.append(i)
            yield i

    def work(i: int) -> int:
        threads.add(threading.get_ident())
        time.sleep(0.001)
        return i

    results = ordered_map(work, items(), workers=2)
    first = next(results)

    assert first == 0 and len(taken) <= 4
    assert list(results) == list(range(1, 100))
    assert len(threads) == 2


def test_an_error_in_the_work_is_raised_at_its_item() -> None:
    def fails_at_3(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        return i

    seen = []
    with pytest.raises(ValueError, match="three"):
        for result in ordered_map(fails_at_3, range(10), workers=2):
            seen.append(result)

    assert seen == [0, 1, 2]
