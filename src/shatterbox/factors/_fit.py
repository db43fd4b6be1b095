"""Factors of a store: one dictionary (or SAE) shared across layers, scored per layer, importance curves and levels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from shatterbox.errors import InputError
from shatterbox.factors._base import FactorModel, check_matrix
from shatterbox.factors._data import LayerVectors, hidden_layers, layer_vectors
from shatterbox.factors._fista import SparseDictionary
from shatterbox.factors._metrics import FitReport, evaluate
from shatterbox.factors._sae import SparseAutoencoder
from shatterbox.store import Store

LEVELS = ("low", "mid", "high")
TOP_FRACTION = 0.01  # importance of a factor at a layer: mean of its top 1 % coefficients there (at least 10)


def importance(codes_by_layer: dict[int, np.ndarray], top_fraction: float = TOP_FRACTION) -> np.ndarray:
    """[K, layers]: for every factor, the mean of its largest ``top_fraction`` coefficients at each layer
    (Yun et al.'s importance score; at least 10 values).

    Example:
        >>> codes = {1: np.array([[3.0, 0.0], [1.0, 0.0]]), 2: np.array([[0.0, 2.0], [0.0, 4.0]])}
        >>> importance(codes, 0.5)
        array([[2., 0.],
               [0., 3.]])
    """
    curves = []
    for layer in sorted(codes_by_layer):
        codes = codes_by_layer[layer]
        top = min(len(codes), max(10, int(np.ceil(top_fraction * len(codes)))))
        curves.append(np.sort(codes, axis=0)[-top:].mean(0))
    return np.stack(curves, axis=1)


def levels(curves: np.ndarray, layers: list[int]) -> np.ndarray:
    """low / mid / high per factor from where its importance curve peaks.

    Rule: the centre of mass of the curve above its own minimum (layers renumbered 0..1 across the
    fitted range) below 1/3 is *low*, above 2/3 *high*, else *mid* (a flat curve is mid); a factor
    silent at every layer is *dead*. Above the minimum, because with layers normalised alike most
    curves share a floor that would pull every centre to the middle; the centre of mass, not the
    argmax, so one spiking layer does not decide alone.

    Example:
        >>> levels(np.array([[5.0, 1, 0], [0, 4, 0], [0, 1, 6], [0, 0, 0]]), [1, 2, 3]).tolist()
        ['low', 'mid', 'high', 'dead']
    """
    span = np.linspace(0.0, 1.0, len(layers)) if len(layers) > 1 else np.zeros(1)
    rise = curves - curves.min(1, keepdims=True)  # a flat floor says nothing about where a factor lives
    weight = rise.sum(1)
    centre = np.where(weight > 0, (rise * span).sum(1) / np.where(weight > 0, weight, 1.0), 0.5)
    total = curves.sum(1)
    out = np.where(centre < 1 / 3, "low", np.where(centre > 2 / 3, "high", "mid")).astype(object)
    out[total <= 0] = "dead"
    return out.astype(str)


@dataclass
class Factors:
    """A factor model fitted on a store's hidden states, with what it says about each layer.

    ``reports[layer]`` is the held-out :class:`FitReport`; ``importance_`` [K, layers] the
    importance curves; ``levels_`` low/mid/high/dead per factor; ``mean``/``scale`` the per-layer
    normalisation the model expects (``(h − mean[l]) / scale[l]``).
    """

    model: FactorModel
    layers: list[int]
    mean: dict[int, np.ndarray]
    scale: dict[int, float]
    reports: dict[int, FitReport]
    importance_: np.ndarray
    levels_: np.ndarray
    store: dict

    def codes(self, hidden: np.ndarray, layer: int) -> np.ndarray:
        """Codes [n, K] of raw hidden states of ``layer`` (normalised as in the fit)."""
        if layer not in self.mean:
            raise InputError(f"these factors were fitted on layers {self.layers}, not {layer}")
        hidden = check_matrix(hidden, "codes", len(self.mean[layer]))
        return self.model.transform((hidden - self.mean[layer]) / self.scale[layer])

    def reconstruct(self, hidden: np.ndarray, layer: int) -> np.ndarray:
        """Raw hidden states of ``layer`` rebuilt from their codes (normalisation undone) [n, d]."""
        recon = self.model.inverse_transform(self.codes(hidden, layer))
        return (recon * self.scale[layer] + self.mean[layer]).astype(np.float32)

    def level_counts(self) -> dict[str, int]:
        """How many factors each level has."""
        return {level: int((self.levels_ == level).sum()) for level in (*LEVELS, "dead")}

    def to_dict(self) -> dict:
        """JSON-ready summary (model, per-layer reports, level counts)."""
        return {
            "model": repr(self.model), "layers": self.layers, "store": self.store,
            "reports": {str(l): r.to_dict() for l, r in self.reports.items()}, "levels": self.level_counts(),
        }

    def save(self, path: str | Path) -> Path:
        """One safetensors file: weights, normalisation, curves and reports."""
        arrays = {f"mean_{l}": m for l, m in self.mean.items()} | {"importance": self.importance_.astype(np.float32)}
        extra = {"layers": self.layers, "scale": {str(l): s for l, s in self.scale.items()}, "store": self.store,
                 "reports": {str(l): r.to_dict() for l, r in self.reports.items()}, "levels": self.levels_.tolist()}
        return self.model.save(path, extra=extra, arrays=arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Factors":
        """Factors saved by :meth:`save`."""
        model = FactorModel.load(path)
        extra, arrays = model.extra_, model.arrays_
        if "layers" not in extra:
            raise InputError(f"{str(path)!r} holds a bare factor model, not store factors: load it with FactorModel.load")
        layers = [int(l) for l in extra["layers"]]
        return cls(model, layers, {l: arrays[f"mean_{l}"] for l in layers}, {l: float(extra["scale"][str(l)]) for l in layers},
                   {int(l): FitReport(**r) for l, r in extra["reports"].items()}, arrays["importance"], np.array(extra["levels"]),
                   extra["store"])


def make_model(kind: str, **params) -> FactorModel:
    """``"fista"`` -> :class:`SparseDictionary`, ``"sae"`` -> :class:`SparseAutoencoder`, with ``params``."""
    classes = {"fista": SparseDictionary, "sae": SparseAutoencoder}
    if kind not in classes:
        raise InputError(f"unknown factor model {kind!r}: use fista (sparse coding) or sae (sparse autoencoder)")
    try:
        return classes[kind](**params)
    except TypeError as exc:
        raise InputError(f"{kind}: {exc}") from None


def fit_factors(store: Store | str | Path, *, layers: list[int] | None = None, kind: str = "fista", max_tokens: int = 50_000,
                heldout: float = 0.1, seed: int = 0, progress: Callable[[int, int], None] | None = None,
                vectors: LayerVectors | None = None, **params) -> Factors:
    """Fit one factor model shared by ``layers`` (default: every hidden layer but the embeddings) of a store.

    Example:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=60), tempfile.mkdtemp(), layers="1-3")
        >>> f = fit_factors(s, n_factors=32, alpha=1.0, n_epochs=1)
        >>> f.importance_.shape, sorted(f.reports)
        ((32, 3), [1, 2, 3])
    """
    store = store if isinstance(store, Store) else Store.open(store)
    if layers is None:
        layers = [l for l in hidden_layers(store) if l > 0] or None
    vectors = vectors or layer_vectors(store, layers, max_tokens=max_tokens, heldout=heldout, seed=seed)
    model = make_model(kind, seed=seed, **params)
    x, _ = vectors.stacked("train")
    model.fit(x, progress=progress)
    train_codes = {l: model.transform(vectors.train[l]) for l in vectors.layers}
    reports = {l: evaluate(model, vectors.heldout[l], vectors.train[l]) for l in vectors.layers}
    curves = importance(train_codes)
    info = {"path": str(store.root), "key": store.manifest["key"], "model": store.model, "corpus": store.manifest["corpus"]["name"]}
    return Factors(model, vectors.layers, vectors.mean, vectors.scale, reports, curves, levels(curves, vectors.layers), info)


def seed_spread(store: Store | str | Path, seeds: tuple[int, ...] = (0, 1, 2), **kwargs) -> dict[int, dict[str, float]]:
    """Fit once per seed (sample, split and initialisation all change) and summarise each layer's held-out
    variance explained, PCA control and mean L0 as mean and standard deviation over the seeds.

    Example:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=60), tempfile.mkdtemp(), layers="1")
        >>> sorted(seed_spread(s, (0, 1), n_factors=16, alpha=1.0, n_epochs=1)[1])[:2]
        ['mean_l0_mean', 'mean_l0_sd']
    """
    if len(seeds) < 2:
        raise InputError("a spread needs at least two seeds")
    store = store if isinstance(store, Store) else Store.open(store)
    return spread([fit_factors(store, seed=s, **kwargs) for s in seeds])


def spread(fits: list[Factors]) -> dict[int, dict[str, float]]:
    """Per layer: mean and standard deviation (ddof 1) of the held-out variance explained, PCA control and
    mean L0 over fits of different seeds."""
    out: dict[int, dict[str, float]] = {}
    for layer in fits[0].layers:
        for name in ("variance_explained", "pca_variance_explained", "mean_l0"):
            values = np.array([getattr(f.reports[layer], name) for f in fits])
            out.setdefault(layer, {}).update({f"{name}_mean": float(values.mean()), f"{name}_sd": float(values.std(ddof=1))})
    return out
