"""The formatter keeps freed memory in the process: its next arrays need no new pages."""

from __future__ import annotations

import resource

import numpy as np
from dropfit.heap import keep_freed_memory


def _page_faults_of_arrays(mib: int, times: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(times):
        np.ones(mib * 1024 * 1024, dtype=np.uint8)  # written, then freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_arrays_allocated_again_reuse_freed_pages() -> None:
    # 40 MiB: beyond the 32 MiB up to which glibc's own threshold would ever rise, so without
    # the setting every array is a fresh mmap (10,240 page faults each).
    assert keep_freed_memory()
    _page_faults_of_arrays(40, 1)  # the heap grows once

    faults = _page_faults_of_arrays(40, 10)

    assert faults < 1000
