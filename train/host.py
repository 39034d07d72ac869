"""The host settings a training run uses on the CPU: how memory is allocated.

Each training step allocates and frees the same large activations and targets (tens of MB). glibc's malloc
serves blocks that large with fresh ``mmap`` pages and gives them back on free, so every step pays the page
faults again: 5-7% of the network's time and half of the time spent making examples here
(benchmarks/train_speed.py). Keeping freed memory in the heap (the mmap threshold at its 32 MiB maximum, no
trimming) lets the next step reuse it. Set once per process, before the first batch; worker processes
inherit it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit hosts
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> str:
    """Tell glibc's malloc to reuse freed large blocks; what was set, in a few words ("" where the C library
    is not glibc, which keeps its own defaults)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return ""
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return ""
    if not (
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    ):
        return ""
    return "malloc keeps freed blocks up to 32 MiB"
