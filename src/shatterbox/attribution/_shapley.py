"""Exact Shapley values over all 2^n coalitions of n players (words), evaluated in batches.

phi_i = sum over S not containing i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial
from typing import Callable, Sequence

import numpy as np

from shatterbox.options import EXPLAIN
from shatterbox._batching import chunks
from shatterbox.errors import BudgetTooSmall, InputError

MAX_EXACT_PLAYERS = 20


def coalitions(n: int) -> np.ndarray:
    """Every coalition of ``n`` players as a bool matrix [2^n, n]; row m has player i iff bit i of m is set.

    Examples:
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
    parts = [np.asarray(value_fn(masks[rows]), dtype=np.float64) for rows in chunks(len(masks), batch_size)]
    out = np.concatenate(parts, axis=0)
    return out[:, None] if out.ndim == 1 else out


def shapley_exact(
    value_fn: Callable[[np.ndarray], np.ndarray], n_players: int, *, batch_size: int = 256
) -> ShapleyValues:
    """Exact Shapley values of the game ``value_fn`` (bool coalitions [k, n] -> values [k] or [k, outputs]).

    It evaluates each of the 2^n coalitions once, ``batch_size`` at a time.

    Examples:
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


@dataclass
class SampledShapley(ShapleyValues):
    """Sampled Shapley values with a 95% error bar per value (``error``, same shape as ``values``).

    ``pairs``: antithetic permutation pairs drawn; ``largest_error``: the largest 95 % error bar of
    the watched label(s) when sampling stopped; ``converged``: whether it reached the requested precision.
    """

    error: np.ndarray = None  # type: ignore[assignment]
    pairs: int = 0
    converged: bool = False
    largest_error: float = 0.0


def _prefix_masks(ranks: np.ndarray) -> np.ndarray:
    """Coalitions of the first 1..n-1 players of each permutation, [perms, n-1, n] (``ranks[p, i]`` = position of i)."""
    n = ranks.shape[1]
    return ranks[:, None, :] < np.arange(1, n)[None, :, None]


def _marginals(ranks: np.ndarray, v: np.ndarray, base: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Each player's marginal contribution in each permutation, [perms, n, outputs]."""
    perms, n = ranks.shape
    chain = np.concatenate(
        [np.broadcast_to(base, (perms, 1, v.shape[-1])), v.reshape(perms, n - 1, -1), np.broadcast_to(full, (perms, 1, v.shape[-1]))],
        axis=1,
    )  # chain[p, j] = value of the first j players of permutation p
    return np.take_along_axis(chain, ranks[..., None] + 1, axis=1) - np.take_along_axis(chain, ranks[..., None], axis=1)


def _antithetic_ranks(rng: np.random.Generator, pairs: int, n_players: int) -> np.ndarray:
    """[2·pairs, n] positions of each player: ``pairs`` random permutations, then their reverses."""
    ranks = np.argsort(rng.random((pairs, n_players)), axis=1).argsort(axis=1)
    return np.concatenate([ranks, n_players - 1 - ranks])


def first_round_coalitions(n_players: int, pairs: int, seed: int = 0) -> np.ndarray:
    """The coalitions :func:`shapley_sampled` evaluates first with ``min_pairs=pairs`` and this ``seed`` (the empty and
    full ones, then the prefixes of each permutation and its reverse) — all of them in the quick mode, so they can be
    evaluated ahead with other texts' (:func:`~shatterbox.attribution.evaluate_together`).

    Examples:
        >>> first_round_coalitions(3, 1).astype(int).tolist()[:2], first_round_coalitions(3, 1).shape
        ([[0, 0, 0], [1, 1, 1]], (6, 3))
    """
    ends = np.stack([np.zeros(n_players, bool), np.ones(n_players, bool)])
    both = _antithetic_ranks(np.random.default_rng(seed), pairs, n_players)
    return np.concatenate([ends, _prefix_masks(both).reshape(-1, n_players)])


def pair_cost(n_players: int) -> int:
    """Model evaluations of one antithetic pair of permutations (a permutation and its reverse).

    Examples:
        >>> pair_cost(8)
        14
    """
    return 2 * (n_players - 1)


def check_sampling_budget(n_players: int, budget: int) -> None:
    """Refuse a budget that cannot pay for one antithetic pair of permutations (and the two ends).

    Examples:
        >>> check_sampling_budget(8, 10)
        Traceback (most recent call last):
        ...
        shatterbox.errors.BudgetTooSmall: a budget of 10 model evaluations is too small: ...
    """
    cost = pair_cost(n_players)
    if budget < 2 + cost:
        raise BudgetTooSmall(
            f"a budget of {budget} model evaluations is too small: sampling {n_players} words needs at least "
            f"{2 + cost} (one antithetic pair of permutations; {2 + 2 * cost} for error bars); "
            f"raise the budget (budget={2 + 2 * cost})", parameter="budget"
        )


def shapley_sampled(
    value_fn: Callable[[np.ndarray], np.ndarray],
    n_players: int,
    *,
    precision: float = EXPLAIN.precision,
    budget: int = 4000,
    seed: int = 0,
    outputs: Sequence[int] | Callable[[np.ndarray], Sequence[int]] | None = None,
    min_pairs: int = 8,
) -> SampledShapley:
    """Shapley values by antithetic permutation sampling, stopping at ``precision`` or ``budget``.

    Each sample is a random permutation and its reverse; a player's sample is the mean of its two
    marginal contributions. ``error`` is the 95% half-width (Student t over the pairs; ``None`` when
    the budget allows a single pair); sampling stops once the largest error bar over ``outputs``
    (default: all; or a function of v(all) that picks them) is at most ``precision``, or when the
    next round would exceed ``budget`` evaluations of ``value_fn``. The empty and full coalitions go
    in the first round's call. Every permutation's marginals sum to v(all) - v(empty), so efficiency
    holds exactly at any sample size.

    Examples:
        >>> weights = np.array([1.0, 2.0, 3.0])
        >>> r = shapley_sampled(lambda m: m @ weights, 3)
        >>> r.values[:, 0].round(6).tolist(), r.converged
        ([1.0, 2.0, 3.0], True)
    """
    from scipy.stats import t as student_t

    if n_players < 2:
        raise InputError("sampled Shapley values need at least two players (words)")
    check_sampling_budget(n_players, budget)
    cost = pair_cost(n_players)
    rng = np.random.default_rng(seed)
    ends = np.stack([np.zeros(n_players, bool), np.ones(n_players, bool)])
    samples: list[np.ndarray] = []
    spent, round_pairs, error, worst, cols = 0, min_pairs, None, float("inf"), None
    while True:
        round_pairs = max(1, min(round_pairs, (budget - spent - (2 if not spent else 0)) // cost))
        both = _antithetic_ranks(rng, round_pairs, n_players)
        masks = _prefix_masks(both).reshape(-1, n_players)
        v = np.asarray(value_fn(masks if spent else np.concatenate([ends, masks])), dtype=np.float64)
        v = v[:, None] if v.ndim == 1 else v
        if not spent:
            (base, full), v = v[:2], v[2:]
            chosen = outputs(full) if callable(outputs) else outputs
            cols = list(range(v.shape[1])) if chosen is None else list(chosen)
            spent = 2
        spent += len(v)
        marg = _marginals(both, v, base, full)
        samples.append(0.5 * (marg[:round_pairs] + marg[round_pairs:]))
        stacked = np.concatenate(samples)
        m = len(stacked)
        if m > 1:
            error = student_t.ppf(0.975, m - 1) * stacked.std(axis=0, ddof=1) / np.sqrt(m)
            worst = float(error[:, cols].max())
        if worst <= precision or spent + cost > budget:
            break
        wanted = int(np.ceil(m * (worst / precision) ** 2)) - m if m > 1 else 1  # pairs still needed at this spread
        round_pairs = int(min(max(wanted, 1), m))  # at most double per round
    return SampledShapley(
        values=stacked.mean(axis=0), base=base, full=full, evaluations=spent, error=error, pairs=m,
        converged=worst <= precision, largest_error=worst,
    )


def balanced_tree(n_players: int) -> list[list[tuple[int, int]]]:
    """For each player, the spans [a, b) of its siblings on the path up a balanced binary tree of contiguous players.

    Examples:
        >>> balanced_tree(4)[0]
        [(1, 2), (2, 4)]
    """
    paths: list[list[tuple[int, int]]] = [[] for _ in range(n_players)]

    def split(a: int, b: int) -> None:
        if b - a < 2:
            return
        mid = (a + b + 1) // 2
        for i in range(a, mid):
            paths[i].insert(0, (mid, b))
        for i in range(mid, b):
            paths[i].insert(0, (a, mid))
        split(a, mid)
        split(mid, b)

    split(0, n_players)
    return paths


def owen_plan(n_players: int) -> int:
    """Upper bound of the evaluations :func:`owen_values` makes (distinct coalitions are evaluated once).

    Examples:
        >>> owen_plan(4)
        32
    """
    return sum(2 ** (len(path) + 1) for path in balanced_tree(n_players))


def owen_values(
    value_fn: Callable[[np.ndarray], np.ndarray], n_players: int, *, batch_size: int = 4096
) -> ShapleyValues:
    """Owen values for a balanced binary hierarchy of contiguous players (phrases inside the sentence).

    At every level a group plays a two-player game against its sibling group, so a player's value is its
    marginal contribution averaged over the 2^depth ways its ancestors' siblings are present or absent.
    Efficiency holds; for an additive game they equal Shapley values.

    Examples:
        >>> weights = np.array([1.0, 2.0, 3.0])
        >>> owen_values(lambda m: m @ weights, 3).values[:, 0].tolist()
        [1.0, 2.0, 3.0]
    """
    if n_players < 1:
        raise InputError("Owen values need at least one player (word)")
    rows, owners = [], []
    for i, path in enumerate(balanced_tree(n_players)):
        choice = coalitions(len(path))  # [2^d, d]: which siblings are present
        spans = np.zeros((len(path), n_players), dtype=bool)
        for j, (a, b) in enumerate(path):
            spans[j, a:b] = True
        without = (choice.astype(np.int64) @ spans.astype(np.int64)) > 0
        with_i = without.copy()
        with_i[:, i] = True
        rows.extend([without, with_i])
        owners.append(len(without))
    masks = np.concatenate(rows)
    unique, inverse = np.unique(masks, axis=0, return_inverse=True)
    ends = _evaluate(value_fn, np.stack([np.zeros(n_players, bool), np.ones(n_players, bool)]), batch_size)
    v = _evaluate(value_fn, unique, batch_size)[inverse.reshape(-1)]
    values, cursor = np.empty((n_players, v.shape[1])), 0
    for i, count in enumerate(owners):
        values[i] = (v[cursor + count : cursor + 2 * count] - v[cursor : cursor + count]).mean(axis=0)
        cursor += 2 * count
    return ShapleyValues(values=values, base=ends[0], full=ends[1], evaluations=len(unique) + 2)
