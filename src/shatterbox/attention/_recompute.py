"""Attention recomputed from recorded queries and keys: what the views compute in the page (views.js), checked here.

Examples:
    >>> q = k = np.zeros((1, 2, 4), dtype=np.float32)
    >>> recompute_attention(q, k, 0.5, causal=False)[0].tolist()
    [[0.5, 0.5], [0.5, 0.5]]
"""

from __future__ import annotations

import numpy as np

from shatterbox.trace import allowed_keys


def recompute_attention(
    queries: np.ndarray, keys: np.ndarray, scaling: float, *, causal: bool, window: int = 0, softcap: float | None = None
) -> np.ndarray:
    """softmax(q k^T * scaling) per head, soft-capped (``softcap * tanh(s / softcap)``) where the model caps,
    with the causal mask if any and a sliding window (query i sees keys i - window < j, ``window`` > 0):
    what the page computes.

    Examples:
        >>> q = k = np.zeros((1, 3, 4), dtype=np.float32)
        >>> recompute_attention(q, k, 0.5, causal=True)[0].tolist()
        [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.3333333432674408, 0.3333333432674408, 0.3333333432674408]]
        >>> recompute_attention(q, k, 0.5, causal=True, window=2)[0][2].tolist()
        [0.0, 0.5, 0.5]
    """
    scores = np.einsum("htd,hsd->hts", queries, keys, dtype=np.float32) * np.float32(scaling)
    if softcap:
        scores = np.float32(softcap) * np.tanh(scores / np.float32(softcap))
    scores = np.where(allowed_keys(scores.shape[-1], causal=causal, window=window), scores, -np.inf)
    scores = scores - scores.max(-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(-1, keepdims=True)


def sliding_window(scores: np.ndarray, causal: bool) -> int:
    """The sliding window a layer's masked scores [head, query, key] show: the most keys a query sees when some
    query is blocked from an earlier key (Gemma's local layers), else 0 (no window).

    Examples:
        >>> s = np.where(np.tril(np.ones((4, 4))) * np.triu(np.ones((4, 4)), -1) > 0, 0.0, -np.inf)[None]
        >>> sliding_window(s, True), sliding_window(np.where(np.tril(np.ones((4, 4))) > 0, 0.0, -np.inf)[None], True)
        (2, 0)
    """
    if not causal:
        return 0
    blocked = np.isneginf(scores[0])
    n = blocked.shape[-1]
    past = np.tril(np.ones((n, n), dtype=bool))
    if not (blocked & past).any():
        return 0
    return int((~blocked & past).sum(-1).max())
