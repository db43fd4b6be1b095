"""Exact Shapley values over all 2^n coalitions of n players (words), evaluated in batches.

phi_i = sum over S not containing i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from typing import Callable

import numpy as np

from shatterbox.errors import InputError

MAX_EXACT_PLAYERS = 20


def coalitions(n: int) -> np.ndarray:
    """Every coalition of ``n`` players as a bool matrix [2^n, n]; row m has player i iff bit i of m is set.

    Example:
        >>> coalitions(2).astype(int).tolist()
        [[0, 0], [1, 0], [0, 1], [1, 1]]
    """
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(bool)


@dataclass
class ShapleyValues:
    """Shapley values [players, outputs], with v(empty) as ``base`` and v(all) as ``full``.

    Efficiency holds: ``values.sum(axis=0) == full - base``.
    """

    values: np.ndarray
    base: np.ndarray
    full: np.ndarray
    evaluations: int


def _evaluate(value_fn: Callable[[np.ndarray], np.ndarray], masks: np.ndarray, batch_size: int) -> np.ndarray:
    """``value_fn`` over ``masks`` in batches of ``batch_size``; always [len(masks), outputs]."""
    parts = [np.asarray(value_fn(masks[i : i + batch_size]), dtype=np.float64) for i in range(0, len(masks), batch_size)]
    out = np.concatenate(parts, axis=0)
    return out[:, None] if out.ndim == 1 else out


def shapley_exact(
    value_fn: Callable[[np.ndarray], np.ndarray], n_players: int, *, batch_size: int = 256
) -> ShapleyValues:
    """Exact Shapley values of the game ``value_fn`` (bool coalitions [k, n] -> values [k] or [k, outputs]).

    It evaluates each of the 2^n coalitions once, ``batch_size`` at a time.

    Example:
        >>> weights = np.array([1.0, 2.0, 3.0])
        >>> shapley_exact(lambda m: m @ weights, 3).values[:, 0].tolist()
        [1.0, 2.0, 3.0]
    """
    if not 1 <= n_players <= MAX_EXACT_PLAYERS:
        raise InputError(
            f"exact Shapley values need 1-{MAX_EXACT_PLAYERS} players (words), not {n_players}: "
            "use a sampled estimator for longer texts"
        )
    masks = coalitions(n_players)
    v = _evaluate(value_fn, masks, batch_size)
    size = masks.sum(axis=1)
    weight = np.array([factorial(s) * factorial(n_players - s - 1) / factorial(n_players) for s in range(n_players)])
    index = np.arange(len(masks))
    values = np.empty((n_players, v.shape[1]))
    for i in range(n_players):  # a loop over players; every coalition is handled at once
        without = index[~masks[:, i]]
        values[i] = (weight[size[without]][:, None] * (v[without | (1 << i)] - v[without])).sum(axis=0)
    return ShapleyValues(values=values, base=v[0], full=v[-1], evaluations=len(masks))
