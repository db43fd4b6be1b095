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
Caches are bounded by bytes: :class:`ByteLRU`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pyarrow as pa

__all__ = ["ByteLRU", "MMAP_THRESHOLD", "RELAXED_MMAP", "RELAXED_TRIM", "bounded_heap", "nbytes_of", "writer_pool"]

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

    Examples:
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

    Examples:
        >>> writer_pool().backend_name
        'system'
    """
    return pa.system_memory_pool()


def nbytes_of(value: object, _depth: int = 0) -> int:
    """Roughly the bytes ``value`` holds: arrays by ``nbytes``, strings by length, containers and plain
    objects by their contents (three levels deep), anything else 64.

    Examples:
        >>> import numpy as np
        >>> nbytes_of({"a": np.zeros(1000), "b": "x" * 100}) > 8000
        True
    """
    if hasattr(value, "nbytes") and isinstance(getattr(value, "nbytes"), int):
        return int(value.nbytes)
    if isinstance(value, (str, bytes, bytearray)):
        return len(value) + 49
    if _depth > 3:
        return 64
    if isinstance(value, dict):
        return 64 + sum(nbytes_of(k, _depth + 1) + nbytes_of(v, _depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return 56 + sum(nbytes_of(v, _depth + 1) for v in value)
    if hasattr(value, "__dict__"):
        return 64 + sum(nbytes_of(v, _depth + 1) for v in vars(value).values())
    return 64


class ByteLRU:
    """A thread-safe least-recently-used cache bounded by bytes, not by entries.

    ``sizeof(value)`` gives an entry's bytes (default :func:`nbytes_of`); a value larger than the
    whole budget is returned but not kept.

    Examples:
        >>> cache = ByteLRU(100, sizeof=len)
        >>> cache.put("a", "x" * 60); cache.put("b", "y" * 60)
        >>> "a" in cache, "b" in cache, cache.nbytes
        (False, True, 60)
    """

    def __init__(self, max_bytes: int, *, sizeof: Callable[[Any], int] = nbytes_of) -> None:
        self.max_bytes, self.sizeof = int(max_bytes), sizeof
        self.items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.nbytes, self.lock = 0, threading.Lock()

    def __contains__(self, key: Any) -> bool:
        with self.lock:
            return key in self.items

    def __len__(self) -> int:
        return len(self.items)

    def get(self, key: Any, default: Any = None) -> Any:
        """The cached value of ``key`` (now the most recent), or ``default``."""
        with self.lock:
            if key not in self.items:
                return default
            self.items.move_to_end(key)
            return self.items[key][0]

    def put(self, key: Any, value: Any) -> None:
        """Keep ``value``, dropping the least recently used entries until the budget holds."""
        size = int(self.sizeof(value))
        with self.lock:
            if key in self.items:
                self.nbytes -= self.items.pop(key)[1]
            if size > self.max_bytes:
                return
            self.items[key] = (value, size)
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                self.nbytes -= self.items.popitem(last=False)[1][1]

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        """The cached value of ``key``, or ``make()`` kept and returned."""
        missing = object()
        value = self.get(key, missing)
        if value is missing:
            value = make()
            self.put(key, value)
        return value
