"""Faithfulness of an attribution: does removing the words it ranks highest change the prediction?

For the explained label, words are ordered by their value (most supporting first). The deletion
curve removes the top-k words (k = 0..n), the insertion curve keeps only the top-k. From them:

- comprehensiveness (DeYoung et al. 2020, ERASER): mean over ERASER's five bins, k = 1, 5, 10, 20
  and 50 % of the words (rounded up, at least one word), of f(text) - f(text without the top-k);
  higher is better;
- sufficiency: the same mean of f(text) - f(only the top-k); lower is better;
- AOPC of deletion (Samek et al.): mean over k = 1..n of f(text) - f(text without the top-k); higher is better;
- AOPC of insertion: mean over k = 1..n of f(only the top-k) - f(no words); higher is better.

All 2n+2 coalitions go to the game in one call (it batches and caches them). Words are removed the
way the game masks them, so these scores favour methods that learned from the same masking
(Shapley, Owen, LIME) over gradients and attention (:data:`MASKING_BIAS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import ceil
from typing import Callable

import numpy as np

BINS = (0.01, 0.05, 0.1, 0.2, 0.5)  # ERASER's shares of the words
MASKING_BIAS = ("every score removes words the way the game masks them: methods that sample the same masking "
                "(Shapley, Owen, LIME) are favoured over gradients and attention")


@dataclass
class Faithfulness:
    """Scores of one attribution for one label, and the curves behind them (probability after k words)."""

    comprehensiveness: float
    sufficiency: float
    aopc_deletion: float
    aopc_insertion: float
    deletion: np.ndarray
    insertion: np.ndarray

    def to_dict(self) -> dict:
        """Plain numbers and lists, for JSON."""
        out = asdict(self)
        out["deletion"], out["insertion"] = self.deletion.tolist(), self.insertion.tolist()
        return out


def curve_masks(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion coalitions [n+1, n] for words ordered by ``scores`` (highest first).

    Examples:
        >>> d, i = curve_masks(np.array([0.1, 0.9]))
        >>> d.astype(int).tolist(), i.astype(int).tolist()
        ([[1, 1], [1, 0], [0, 0]], [[0, 0], [0, 1], [1, 1]])
    """
    n = len(scores)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-np.asarray(scores), kind="stable")] = np.arange(n)
    k = np.arange(n + 1)[:, None]
    return rank[None, :] >= k, rank[None, :] < k


def faithfulness(value_fn: Callable[[np.ndarray], np.ndarray], scores: np.ndarray, label: int) -> Faithfulness:
    """Comprehensiveness, sufficiency and AOPC of the word ``scores`` for output ``label`` of ``value_fn``.

    Examples:
        >>> weights = np.array([1.0, 2.0, 3.0])
        >>> f = faithfulness(lambda m: (m @ weights)[:, None], weights, 0)
        >>> f.comprehensiveness, f.aopc_deletion
        (3.4, 4.666666666666667)
    """
    deletion_masks, insertion_masks = curve_masks(scores)
    v = np.asarray(value_fn(np.concatenate([deletion_masks, insertion_masks])), dtype=np.float64)
    v = v[:, None] if v.ndim == 1 else v
    n = len(scores)
    deletion, insertion = v[: n + 1, label], v[n + 1 :, label]
    full, base = deletion[0], insertion[0]
    ks = [max(1, ceil(p * n)) for p in BINS]  # one k per bin: a short text repeats k = 1
    return Faithfulness(
        comprehensiveness=float(np.mean(full - deletion[ks])),
        sufficiency=float(np.mean(full - insertion[ks])),
        aopc_deletion=float(np.mean(full - deletion[1:])),
        aopc_insertion=float(np.mean(insertion[1:] - base)),
        deletion=deletion,
        insertion=insertion,
    )
