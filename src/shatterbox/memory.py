"""Keeping a long corpus run's memory flat: freed activation buffers go back to the OS.

A forward pass allocates and frees buffers of a few MiB (hidden states, MLP activations) whose
sizes change with every batch's shape. glibc serves such buffers from ``mmap`` at first, but
raises its threshold each time one is freed, so later ones come from the heap, which fragments:
resident memory then creeps up shard after shard (``bench/harvest.py`` measured 1,090 MiB after
2,000 sentences and 1,561 MiB after 50,000). Inside :func:`bounded_heap` the threshold is fixed
at 1 MiB, so large buffers are mapped and returned whole. It costs time (every large buffer is
mapped fresh), so on leaving, glibc gets back the thresholds its dynamic rule ends at (32 MiB for
mmap, 64 MiB for trimming) and the rest of the process runs at full speed. Arrow's own pool
(mimalloc) keeps freed pages for reuse, so the store's writers allocate from the system allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from contextlib import contextmanager
from typing import Iterator

import pyarrow as pa

MMAP_THRESHOLD = 1 << 20  # inside bounded_heap: buffers of at least 1 MiB are mapped and unmapped on their own
RELAXED_MMAP = 32 << 20  # afterwards: glibc's own ceiling for its dynamic mmap threshold
RELAXED_TRIM = 64 << 20  # ... and the trim threshold that goes with it (twice the mmap threshold)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc only (not musl)
        return libc
    except (OSError, AttributeError):
        return None


@contextmanager
def bounded_heap() -> Iterator[bool]:
    """Within the block, glibc returns freed buffers of at least 1 MiB to the OS; yields whether it applies.

    On other C libraries (macOS, Windows, musl) it does nothing and yields False.

    Example:
        >>> with bounded_heap() as applied:
        ...     applied  # Linux with glibc
        True
    """
    libc = _libc()
    applied = bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    try:
        yield applied
    finally:
        if applied:
            libc.mallopt(_M_MMAP_THRESHOLD, RELAXED_MMAP)
            libc.mallopt(_M_TRIM_THRESHOLD, RELAXED_TRIM)


def writer_pool() -> pa.MemoryPool:
    """The Arrow memory pool the store's writers use: the system allocator, which gives freed pages back.

    Example:
        >>> writer_pool().backend_name
        'system'
    """
    return pa.system_memory_pool()
