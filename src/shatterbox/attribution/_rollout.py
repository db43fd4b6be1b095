"""Attention rollout (Abnar & Zuidema, 2020): attention flow through the layers, as a baseline.

Each layer's head-averaged attention is mixed with the identity for the residual stream
(0.5 A + 0.5 I, rows renormalised) and the layers are multiplied from the first to the last.
The row of the position the classifier reads (first token, last token, or the mean of all rows
for a mean-pooled head) says how much of each input token flowed there. It is class-agnostic.
"""

from __future__ import annotations

import numpy as np


def attention_rollout(attentions: np.ndarray, *, residual: float = 0.5) -> np.ndarray:
    """Rollout [tokens, tokens] of attentions [layer, head, tokens, tokens].

    Examples:
        >>> eye = np.broadcast_to(np.eye(3), (2, 4, 3, 3))
        >>> attention_rollout(eye).tolist() == np.eye(3).tolist()
        True
    """
    a = attentions.astype(np.float64).mean(axis=1)
    a = residual * np.eye(a.shape[-1]) + (1.0 - residual) * a
    a /= a.sum(axis=-1, keepdims=True)
    out = np.eye(a.shape[-1])
    for layer in a:  # a loop over layers only; each step is one matrix product
        out = layer @ out
    return out


def rollout_relevance(attentions: np.ndarray, pooling: str, *, residual: float = 0.5) -> np.ndarray:
    """Per-token relevance [tokens] for the position a classifier reads (``first``, ``last`` or ``mean``).

    Examples:
        >>> eye = np.broadcast_to(np.eye(3), (2, 4, 3, 3))
        >>> rollout_relevance(eye, "first").tolist()
        [1.0, 0.0, 0.0]
    """
    flow = attention_rollout(attentions, residual=residual)
    if pooling == "first":
        return flow[0]
    if pooling == "last":
        return flow[-1]
    return flow.mean(axis=0)
