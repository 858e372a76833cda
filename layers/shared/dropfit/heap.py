"""Keep the formatter's freed memory in the process, so that its next arrays need no new pages.

The formatter allocates and frees arrays of one to a few MiB for every piece of every block.
glibc's malloc serves those with ``mmap`` (or trims them off the top of its heap) and gives the
pages back when they are freed, so every new array takes a page fault per 4 KiB it touches:
measured here, a third or more of the time numpy spends on such arrays. With the thresholds
raised, freed arrays stay in malloc's heap and are reused; the process keeps at most what it
held at its peak, which the formatter bounds anyway.
"""

from __future__ import annotations

import ctypes
import functools

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
MMAP_THRESHOLD = 64 * 1024 * 1024  # larger than any block, piece or array the formatter makes
TRIM_THRESHOLD = 256 * 1024 * 1024


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once); False where the C library
    has no ``mallopt`` (not glibc): nothing changes there."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
