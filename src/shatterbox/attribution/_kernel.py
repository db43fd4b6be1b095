"""Kernel SHAP: Shapley values as the solution of a weighted least-squares fit over sampled coalitions.

The Shapley kernel gives coalitions of size s (of n players) the total weight (n - 1) / (s (n - s)). Sizes are
taken from the outside in (1 and n - 1, then 2 and n - 2, ...): a pair of sizes whose coalitions the remaining
budget can pay for in full is enumerated, each coalition carrying its share of the size's weight; the rest of the
budget draws coalitions with their complements (paired sampling) from the sizes left, with the kernel's
distribution over sizes, repeated draws adding weight instead of evaluations. The values minimise the weighted
squared error of v(S) - v(empty) ~ sum of the values in S, subject to summing to v(all) - v(empty) (efficiency
holds exactly). With every coalition enumerated (a budget of 2^n) they are the exact Shapley values; for an
additive game they are exact at any budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Callable

import numpy as np

from shatterbox.attribution._shapley import ShapleyValues, _evaluate
from shatterbox.errors import BudgetTooSmall, InputError


@dataclass
class KernelDesign:
    """Coalitions [k, n] other than the empty and full ones, their regression weights [k], and whether every coalition
    of every size is among them (``complete``: the values are then the exact Shapley values)."""

    masks: np.ndarray
    weights: np.ndarray
    complete: bool


def check_kernel_budget(n_players: int, evaluations: int) -> None:
    """Refuse fewer than two players, or a budget below the whole and the empty text plus every word alone and every
    word left out (or every coalition, where that is fewer).

    Examples:
        >>> check_kernel_budget(10, 15)
        Traceback (most recent call last):
        ...
        shatterbox.errors.BudgetTooSmall: a budget of 15 model evaluations is too small for Kernel SHAP on 10 words: ...
    """
    n = n_players
    if n < 2:
        raise InputError("Kernel SHAP needs at least two players (words)")
    least = min(2 + 2 * n, 2**n)
    if evaluations < least:
        raise BudgetTooSmall(f"a budget of {evaluations} model evaluations is too small for Kernel SHAP on {n} words: "
                             f"it needs at least {least} (the whole and the empty text, every word alone and every word left out); "
                             f"raise it (samples={least})", parameter="samples")


def kernel_design(n_players: int, evaluations: int, seed: int = 0) -> KernelDesign:
    """The coalitions Kernel SHAP evaluates for ``n_players`` within ``evaluations`` model evaluations (the empty and
    full coalitions included), deterministic for a given ``seed``.

    Examples:
        >>> d = kernel_design(4, 16)
        >>> len(d.masks), d.complete, round(float(d.weights.sum()), 6)
        (14, True, 1.0)
        >>> len(kernel_design(10, 42).masks)
        40
    """
    n = n_players
    check_kernel_budget(n, evaluations)
    mass = np.array([0.0] + [(n - 1) / (s * (n - s)) for s in range(1, n)])
    mass /= mass.sum()
    left = min(evaluations, 2**n) - 2
    everything = left == 2**n - 2
    parts, weights, open_sizes = [], [], []
    remaining = 1.0
    for s in range(1, n // 2 + 1):
        sizes = [s] if s == n - s else [s, n - s]
        count = sum(comb(n, k) for k in sizes)
        share = mass[sizes].sum() / remaining if remaining > 0 else 0.0
        affordable = count <= left and (s == 1 or everything or share * left >= count)
        if open_sizes or not affordable:
            open_sizes += sizes
            continue
        for k in sizes:
            block = _all_of_size(n, k)
            parts.append(block)
            weights.append(np.full(len(block), mass[k] / len(block)))
        left -= count
        remaining -= mass[sizes].sum()
    complete = not open_sizes
    if open_sizes and left > 0:
        sampled, counts = _paired_sample(n, sorted(set(open_sizes)), mass, left, seed)
        parts.append(sampled)
        weights.append(remaining * counts / counts.sum())
    masks = np.concatenate(parts) if parts else np.zeros((0, n), dtype=bool)
    return KernelDesign(masks=masks, weights=np.concatenate(weights) if weights else np.zeros(0), complete=complete)


def kernel_coalitions(n_players: int, evaluations: int, seed: int = 0) -> np.ndarray:
    """Every coalition :func:`kernel_shap` evaluates with these arguments (the empty and full ones first), so many texts'
    can be scored ahead in shared forward passes (:func:`~shatterbox.attribution.evaluate_together`).

    Examples:
        >>> kernel_coalitions(3, 8).astype(int).tolist()[:3]
        [[0, 0, 0], [1, 1, 1], [1, 0, 0]]
    """
    ends = np.stack([np.zeros(n_players, bool), np.ones(n_players, bool)])
    return np.concatenate([ends, kernel_design(n_players, evaluations, seed).masks])


def _all_of_size(n: int, k: int) -> np.ndarray:
    """Every coalition of exactly ``k`` of ``n`` players [C(n, k), n] (called only for counts the budget pays for)."""
    members = np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    out = np.zeros((len(members), n), dtype=bool)
    np.put_along_axis(out, members, True, axis=1)
    return out


def _paired_sample(n: int, sizes: list[int], mass: np.ndarray, room: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``room`` distinct coalitions of the given sizes, each drawn with its complement, sizes by kernel mass;
    and how often each was drawn (its weight). Stops when ``room`` is used or every such coalition is in."""
    rng = np.random.default_rng(seed)
    p = mass[sizes] / mass[sizes].sum()
    available = sum(comb(n, k) for k in sizes)
    seen: dict[bytes, int] = {}
    order: list[np.ndarray] = []
    counts: list[float] = []
    draws = 0
    while len(order) < min(room, available) and draws < 100 * room:
        draws += 1
        z = np.zeros(n, dtype=bool)
        z[rng.choice(n, size=int(rng.choice(sizes, p=p)), replace=False)] = True
        for member in (z, ~z):
            key = member.tobytes()
            if key in seen:
                counts[seen[key]] += 1.0
            elif len(order) < room:
                seen[key] = len(order)
                order.append(member)
                counts.append(1.0)
    return np.array(order), np.array(counts)


def kernel_fit(masks: np.ndarray, weights: np.ndarray, v: np.ndarray, base: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Values [n, outputs] minimising sum_z w_z (v_z - base - z . values)^2 subject to sum(values) = full - base.

    Examples:
        >>> m = np.array([[1, 0], [0, 1]], bool)
        >>> kernel_fit(m, np.ones(2), np.array([[1.0], [2.0]]), np.zeros(1), np.array([3.0])).ravel().round(6).tolist()
        [1.0, 2.0]
    """
    z = masks.astype(np.float64)
    y = v - base
    gram = z.T @ (weights[:, None] * z) + 1e-10 * np.eye(z.shape[1])
    a_inv_b = np.linalg.solve(gram, z.T @ (weights[:, None] * y))
    a_inv_1 = np.linalg.solve(gram, np.ones(z.shape[1]))
    gap = (full - base) - a_inv_b.sum(axis=0)
    return a_inv_b + np.outer(a_inv_1, gap) / a_inv_1.sum()


def kernel_shap(value_fn: Callable[[np.ndarray], np.ndarray], n_players: int, *, evaluations: int = 500, seed: int = 0,
                batch_size: int = 4096) -> ShapleyValues:
    """Kernel SHAP values [n, outputs] from at most ``evaluations`` model evaluations (exact when that covers 2^n).

    Examples:
        >>> weights = np.array([1.0, 2.0, 3.0, 4.0])
        >>> kernel_shap(lambda m: m @ weights, 4, evaluations=10).values[:, 0].round(6).tolist()
        [1.0, 2.0, 3.0, 4.0]
    """
    design = kernel_design(n_players, evaluations, seed)
    ends = _evaluate(value_fn, np.stack([np.zeros(n_players, bool), np.ones(n_players, bool)]), batch_size)
    v = _evaluate(value_fn, design.masks, batch_size)
    values = kernel_fit(design.masks, design.weights, v, ends[0], ends[1])
    return ShapleyValues(values=values, base=ends[0], full=ends[1], evaluations=len(design.masks) + 2)
