"""The one batching helper: every batched model call in shatterbox slices its rows with :func:`chunks`."""

from __future__ import annotations

from typing import Iterator


def chunks(n: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in pieces of at most ``size`` rows.

    Examples:
        >>> [(s.start, s.stop) for s in chunks(5, 2)]
        [(0, 2), (2, 4), (4, 5)]
    """
    size = max(1, int(size))
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
