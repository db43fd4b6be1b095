"""Keeping a long corpus run's memory flat: freed activation buffers go back to the OS.

A forward pass allocates and frees buffers of a few MiB (hidden states, MLP activations) whose
sizes change with every batch's shape. glibc serves such buffers from ``mmap`` at first, but
raises its threshold each time one is freed, so later ones come from the heap, which fragments:
resident memory then creeps up shard after shard (``bench/harvest.py`` measured 1,090 MiB after
2,000 sentences and 1,561 MiB after 50,000). Fixing the threshold keeps large buffers in ``mmap``
and returns them whole when freed. Arrow's own pool (mimalloc) keeps freed pages for reuse, so
the store's writers allocate from the system allocator instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import pyarrow as pa

MMAP_THRESHOLD = 1 << 20  # buffers of at least 1 MiB are mapped and unmapped on their own
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_applied: bool | None = None


def bound_heap() -> bool:
    """Make glibc return freed buffers of at least 1 MiB to the OS (once per process); whether it applies.

    On other C libraries (macOS, Windows, musl) it does nothing and returns False. It changes the
    whole process's allocator: large buffers cost one ``mmap`` each (a few microseconds, against
    hundreds of milliseconds per forward pass).

    Example:
        >>> bound_heap()  # Linux with glibc
        True
    """
    global _applied
    if _applied is None:
        _applied = _set_threshold()
    return _applied


def _set_threshold() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.gnu_get_libc_version and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def writer_pool() -> pa.MemoryPool:
    """The Arrow memory pool the store's writers use: the system allocator, which gives freed pages back.

    Example:
        >>> writer_pool().backend_name
        'system'
    """
    return pa.system_memory_pool()
