"""Scores of an explanation: correlation of simulated with true activations (OpenAI 2023), detection and
fuzzing balanced accuracy (EleutherAI's delphi), each with a bootstrap 95 % interval over excerpts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from shatterbox.errors import InputError

BOOTSTRAP = 1000
LEVELS = 10


@dataclass(frozen=True)
class Score:
    """A score with its bootstrap 95 % interval (``low``, ``high``); NaN when undefined."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict:
        """JSON-ready: value, low, high (NaN as None)."""
        return {k: (None if not np.isfinite(v) else round(float(v), 4)) for k, v in (("value", self.value), ("low", self.low), ("high", self.high))}


def discretise(activations: np.ndarray, maximum: float) -> np.ndarray:
    """``floor(10 · relu(a) / maximum)`` clipped to 0–10, as the explainer is shown them; all 0 when ``maximum`` <= 0.

    Examples:
        >>> discretise(np.array([-1.0, 0.0, 0.5, 0.99, 1.0, 2.0]), 1.0).tolist()
        [0, 0, 5, 9, 10, 10]
    """
    a = np.asarray(activations, dtype=np.float64)
    if not maximum > 0:
        return np.zeros(a.shape, dtype=np.int64)
    return np.clip(np.floor(LEVELS * np.maximum(a, 0.0) / maximum + 1e-9), 0, LEVELS).astype(np.int64)


def _pooled_r(stats: np.ndarray) -> np.ndarray:
    """Pearson r from pooled sums [..., 6] = (n, Σx, Σy, Σxx, Σyy, Σxy); NaN where a side is constant."""
    n, sx, sy, sxx, syy, sxy = np.moveaxis(stats, -1, 0)
    cov = sxy - sx * sy / np.maximum(n, 1)
    vx = sxx - sx * sx / np.maximum(n, 1)
    vy = syy - sy * sy / np.maximum(n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vx * vy)
    scale = np.maximum(np.abs(sxx), 1.0) * 1e-12
    return np.where((vx > scale) & (vy > np.maximum(np.abs(syy), 1.0) * 1e-12), r, np.nan)


def _excerpt_stats(true: Sequence[np.ndarray], simulated: Sequence[np.ndarray]) -> np.ndarray:
    """[excerpts, 6] sums each excerpt adds to a pooled correlation."""
    if len(true) != len(simulated) or any(len(t) != len(s) for t, s in zip(true, simulated)):
        raise InputError("true and simulated activations must have one array per excerpt, of equal lengths")
    return np.array([[len(t), t.sum(), s.sum(), (t * t).sum(), (s * s).sum(), (t * s).sum()]
                     for t, s in ((np.asarray(t, np.float64), np.asarray(s, np.float64)) for t, s in zip(true, simulated))]).reshape(-1, 6)


def _resamples(n: int, seed: int, b: int = BOOTSTRAP) -> np.ndarray:
    """[b, n] multinomial counts: how often each of ``n`` items is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64) if n else np.zeros((b, 0))


def _interval(samples: np.ndarray) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if len(finite) < len(samples) / 2:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def correlation_score(true: Sequence[np.ndarray], simulated: Sequence[np.ndarray], *, seed: int = 0) -> Score:
    """Pearson correlation of true and simulated activations pooled over every token of every excerpt
    (OpenAI's all-at-once score), with a bootstrap interval resampling excerpts. A constant simulation scores 0.

    Examples:
        >>> t = [np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0])]
        >>> correlation_score(t, [np.array([0, 10, 0]), np.array([0, 0])]).value
        1.0
        >>> correlation_score(t, [np.array([0, 0, 0]), np.array([0, 0])]).value
        0.0
    """
    stats = _excerpt_stats(true, simulated)
    value = _pooled_r(stats.sum(0))
    flat = stats.sum(0)
    constant_sim = flat[4] - flat[2] ** 2 / max(flat[0], 1) <= max(abs(flat[4]), 1.0) * 1e-12
    if constant_sim:
        return Score(0.0, 0.0, 0.0)
    boot = _pooled_r(_resamples(len(stats), seed) @ stats)
    boot = np.where(np.isnan(boot), 0.0, boot)
    return Score(float(value), *_interval(boot))


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray, *, seed: int = 0) -> Score:
    """Mean of the true-positive and true-negative rates (chance = 0.5), with a bootstrap interval.

    Examples:
        >>> balanced_accuracy(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 0])).value
        0.75
    """
    y, p = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    if y.shape != p.shape or not y.any() or y.all():
        raise InputError("balanced accuracy needs labels and predictions of one shape, with both classes present")
    cells = np.stack([y & p, y, ~y & ~p, ~y], axis=1).astype(np.float64)  # [items, 4]
    boot = _resamples(len(y), seed) @ cells
    with np.errstate(invalid="ignore", divide="ignore"):
        samples = 0.5 * (boot[:, 0] / boot[:, 1] + boot[:, 2] / boot[:, 3])
    total = cells.sum(0)
    return Score(float(0.5 * (total[0] / total[1] + total[2] / total[3])), *_interval(samples))


def paired_difference(true: Sequence[np.ndarray], a: Sequence[np.ndarray], b: Sequence[np.ndarray], *, seed: int = 0) -> Score:
    """Correlation score of simulation ``a`` minus that of ``b`` on the same excerpts, with a paired bootstrap
    interval (the same resamples for both): ``low > 0`` means ``a`` beats ``b`` beyond resampling noise.

    Examples:
        >>> t = [np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([0.0, 0.0])]
        >>> d = paired_difference(t, [np.array([0, 9]), np.array([9, 0]), np.array([0, 0])], [np.array([0, 9]), np.array([0, 9]), np.array([9, 0])])
        >>> d.value > 0.5
        True
    """
    sa, sb = _excerpt_stats(true, a), _excerpt_stats(true, b)
    counts = _resamples(len(sa), seed)

    def r(stats: np.ndarray) -> np.ndarray:
        return np.nan_to_num(_pooled_r(stats), nan=0.0)

    value = float(r(sa.sum(0)) - r(sb.sum(0)))
    return Score(value, *_interval(r(counts @ sa) - r(counts @ sb)))
