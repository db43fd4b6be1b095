"""LIME on word masks: a locally weighted linear model of the classifier around the text.

Sampling and kernel follow the lime package's ``LimeTextExplainer`` so results are comparable:
row 0 is the full text; each other row removes k words, k uniform in 1..n, the words uniform
without replacement. A row's distance to the text is the cosine distance of the indicator
vectors x 100; its weight is sqrt(exp(-d^2 / width^2)) with width 25. The surrogate is
scikit-learn's ``Ridge(alpha=1)`` on the indicators, fitted per label with those weights.
Unlike the lime package, sampling uses its own seeded generator, so the same text gives the
same numbers on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KERNEL_WIDTH = 25.0


def lime_masks(n_words: int, samples: int, seed: int = 0) -> np.ndarray:
    """``samples`` coalitions [samples, n] sampled as lime's text explainer does (row 0 keeps every word).

    Examples:
        >>> m = lime_masks(4, 5)
        >>> m.shape, bool(m[0].all()), bool((m[1:].sum(axis=1) < 4).all())
        ((5, 4), True, True)
    """
    rng = np.random.default_rng(seed)
    removed = rng.integers(1, n_words + 1, samples - 1)
    ranks = np.argsort(rng.random((samples - 1, n_words)), axis=1).argsort(axis=1)
    masks = np.ones((samples, n_words), dtype=bool)
    masks[1:] = ranks >= removed[:, None]
    return masks


def lime_weights(masks: np.ndarray, width: float = KERNEL_WIDTH) -> np.ndarray:
    """Kernel weights of coalitions: sqrt(exp(-d^2/width^2)), d = 100 x cosine distance to the full text.

    Examples:
        >>> lime_weights(np.array([[True, True], [True, False]])).round(4).tolist()
        [1.0, 0.5034]
    """
    kept = masks.sum(axis=1)
    distance = 100.0 * (1.0 - np.sqrt(kept / masks.shape[1]))
    return np.sqrt(np.exp(-(distance**2) / width**2))


@dataclass
class LimeFit:
    """Coefficients [n, labels], intercepts [labels] and weighted R^2 [labels] of the surrogate."""

    coef: np.ndarray
    intercept: np.ndarray
    score: np.ndarray


def lime_fit(masks: np.ndarray, values: np.ndarray, *, width: float = KERNEL_WIDTH, alpha: float = 1.0) -> LimeFit:
    """Fit the weighted ridge surrogate of ``values`` [samples, labels] on the coalitions ``masks``.

    Examples:
        >>> m = lime_masks(3, 200)
        >>> fit = lime_fit(m, (m @ np.array([1.0, -2.0, 0.5]))[:, None], alpha=1e-6)
        >>> fit.coef[:, 0].round(3).tolist()
        [1.0, -2.0, 0.5]
    """
    from sklearn.linear_model import Ridge

    x = masks.astype(np.float64)
    y = np.asarray(values, dtype=np.float64).reshape(len(x), -1)
    w = lime_weights(masks, width)
    model = Ridge(alpha=alpha, fit_intercept=True).fit(x, y, sample_weight=w)
    coef = np.atleast_2d(model.coef_).T if y.shape[1] > 1 else model.coef_.reshape(-1, 1)
    scores = np.array([_weighted_r2(y[:, c], x @ coef[:, c] + np.atleast_1d(model.intercept_)[c], w) for c in range(y.shape[1])])
    return LimeFit(coef=coef, intercept=np.atleast_1d(model.intercept_).astype(np.float64), score=scores)


def _weighted_r2(y: np.ndarray, predicted: np.ndarray, w: np.ndarray) -> float:
    mean = np.average(y, weights=w)
    total = float(np.sum(w * (y - mean) ** 2))
    return 1.0 - float(np.sum(w * (y - predicted) ** 2)) / total if total > 0 else 1.0
