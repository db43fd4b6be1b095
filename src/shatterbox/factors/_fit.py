"""Factors of a store: one dictionary (or SAE) shared across layers, scored per layer, importance curves and levels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from shatterbox.errors import InputError
from shatterbox.factors._base import FactorModel, check_matrix, load_models, save_models
from shatterbox.factors._data import LayerVectors, hidden_layers, layer_vectors
from shatterbox.factors._fista import SparseDictionary
from shatterbox.factors._metrics import FitReport, evaluate
from shatterbox.factors._sae import SparseAutoencoder
from shatterbox.store import Store, as_store

LEVELS = ("low", "mid", "high")
TOP_FRACTION = 0.01  # importance of a factor at a layer: mean of its top 1 % coefficients there (at least 10)


def importance(codes_by_layer: dict[int, np.ndarray], top_fraction: float = TOP_FRACTION) -> np.ndarray:
    """[K, layers]: for every factor, the mean of its largest ``top_fraction`` coefficients at each layer
    (Yun et al.'s importance score; at least 10 values).

    Examples:
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

    Examples:
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

    ``models[layer]`` is the model that codes ``layer``: one object for every layer when the
    dictionary is shared (as in Yun et al.), one per layer otherwise. Factors are numbered
    0..``n_factors``-1; with one dictionary per layer, layer ``layers[i]``'s own factors are
    ``i·K .. (i+1)·K − 1`` (:meth:`home`), and :meth:`codes` reads a layer with every layer's
    dictionary, so each factor still has an importance curve over all layers.
    ``reports[layer]`` is the held-out :class:`FitReport` (of the layer's own model);
    ``importance_`` [n_factors, layers] the importance curves; ``levels_`` low/mid/high/dead per
    factor; ``mean``/``scale`` the per-layer normalisation (``(h − mean[l]) / scale[l]``).
    """

    models: dict[int, FactorModel]
    layers: list[int]
    mean: dict[int, np.ndarray]
    scale: dict[int, float]
    reports: dict[int, FitReport]
    importance_: np.ndarray
    levels_: np.ndarray
    store: dict

    @property
    def shared(self) -> bool:
        """Whether one dictionary codes every layer."""
        return len({id(m) for m in self.models.values()}) == 1

    @property
    def model(self) -> FactorModel:
        """The model of the first fitted layer (the only one when shared)."""
        return self.models[self.layers[0]]

    @property
    def n_factors(self) -> int:
        """How many factors in all (K, or K per layer times the layers)."""
        return self.model.n_factors * (1 if self.shared else len(self.layers))

    @property
    def fit_seconds(self) -> float:
        """Training time of every distinct model, summed."""
        return float(sum(getattr(m, "fit_seconds_", 0.0) for m in {id(m): m for m in self.models.values()}.values()))

    def home(self, factor: int) -> int | None:
        """The layer whose dictionary holds ``factor`` (None when shared)."""
        return None if self.shared else self.layers[factor // self.model.n_factors]

    def companions(self, factor: int) -> list[int]:
        """The factors coded together with ``factor`` (all of them, or its layer's block): what one
        pass over the store computes anyway, worth caching together."""
        size = self.model.n_factors
        start = 0 if self.shared else factor // size * size
        return list(range(start, start + size))

    def layer_of(self, layer: int | None) -> int:
        """``layer`` checked against the fitted layers (the first fitted one when None)."""
        if layer is None:
            return self.layers[0]
        if layer not in self.layers:
            raise InputError(f"these factors were fitted on layers {self.layers}, not {layer}", parameter="layer")
        return layer

    def block(self, layer: int) -> int:
        """The number of the first factor of ``layer``'s own model (0 when one model codes every layer)."""
        return 0 if self.shared else self.layers.index(self.layer_of(layer)) * self.model.n_factors

    def normalise(self, hidden: np.ndarray, layer: int) -> np.ndarray:
        """Raw hidden states of ``layer`` centred and scaled as in the fit."""
        if layer not in self.mean:
            raise InputError(f"these factors were fitted on layers {self.layers}, not {layer}")
        hidden = check_matrix(hidden, "codes", len(self.mean[layer]))
        return (hidden - self.mean[layer]) / self.scale[layer]

    def codes(self, hidden: np.ndarray, layer: int, *, units: list[int] | None = None) -> np.ndarray:
        """Codes [n, n_factors] of raw hidden states of ``layer``. With one dictionary per layer,
        every layer's dictionary reads them (blocks side by side); ``units`` limits the work to the
        blocks holding those factors (the other columns stay 0)."""
        x = self.normalise(hidden, layer)
        if self.shared:
            return self.model.transform(x)
        size = self.model.n_factors
        blocks = set(range(len(self.layers))) if units is None else {int(u) // size for u in units}
        out = np.zeros((len(x), self.n_factors), np.float32)
        for i in sorted(blocks):
            out[:, i * size:(i + 1) * size] = self.models[self.layers[i]].transform(x)
        return out

    def reconstruct(self, hidden: np.ndarray, layer: int) -> np.ndarray:
        """Raw hidden states of ``layer`` rebuilt by that layer's model (normalisation undone) [n, d]."""
        x = self.normalise(hidden, layer)
        model = self.models[layer]
        recon = model.inverse_transform(model.transform(x))
        return (recon * self.scale[layer] + self.mean[layer]).astype(np.float32)

    def open_store(self) -> Store:
        """The store these factors were fitted on; refused when it was harvested again since."""
        store = Store.open(self.store["path"])
        if store.manifest["key"] != self.store.get("key"):
            raise InputError(f"the store {self.store['path']!r} was harvested again since these factors were fitted: fit them again")
        return store

    def level_counts(self) -> dict[str, int]:
        """How many factors each level has."""
        return {level: int((self.levels_ == level).sum()) for level in (*LEVELS, "dead")}

    def describe(self) -> str:
        """The model's repr, prefixed by ``per layer:`` when each layer has its own."""
        return repr(self.model) if self.shared else f"per layer ({len(self.layers)}): {self.model!r}"

    def to_dict(self) -> dict:
        """JSON-ready summary (model, per-layer reports, level counts)."""
        return {
            "model": self.describe(), "shared": self.shared, "layers": self.layers, "store": self.store,
            "reports": {str(l): r.to_dict() for l, r in self.reports.items()}, "levels": self.level_counts(),
        }

    def save(self, path: str | Path) -> Path:
        """One safetensors file: weights (one model, or one per layer), normalisation, curves and reports."""
        arrays = {f"mean_{l}": m for l, m in self.mean.items()} | {"importance": self.importance_.astype(np.float32)}
        extra = {"layers": self.layers, "scale": {str(l): s for l, s in self.scale.items()}, "store": self.store,
                 "reports": {str(l): r.to_dict() for l, r in self.reports.items()}, "levels": self.levels_.tolist()}
        models = {"": self.model} if self.shared else {str(l): m for l, m in self.models.items()}
        return save_models(path, models, extra=extra, arrays=arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Factors":
        """Factors saved by :meth:`save`."""
        models, extra, arrays = load_models(path)
        if "layers" not in extra:
            raise InputError(f"{str(path)!r} holds a bare factor model, not store factors: load it with FactorModel.load")
        layers = [int(l) for l in extra["layers"]]
        by_layer = {l: models[""] for l in layers} if "" in models else {l: models[str(l)] for l in layers}
        return cls(by_layer, layers, {l: arrays[f"mean_{l}"] for l in layers}, {l: float(extra["scale"][str(l)]) for l in layers},
                   {int(l): FitReport(**{k: v for k, v in r.items() if k != "flag"}) for l, r in extra["reports"].items()}, arrays["importance"], np.array(extra["levels"]),
                   extra["store"])


def store_info(store: Store) -> dict:
    """What factors remember of the store they were fitted on (:meth:`Factors.open_store` checks its key)."""
    return {"path": str(store.root), "key": store.manifest["key"], "model": store.model, "corpus": store.manifest["corpus"]["name"]}


EPOCHS = {"fista": 3, "sae": 10}  # passes over the sampled tokens when none are given: at 3 a TopK SAE barely beats PCA


def make_model(kind: str, **params) -> FactorModel:
    """``"fista"`` -> :class:`SparseDictionary`, ``"sae"`` -> :class:`SparseAutoencoder`, with ``params`` (``n_epochs``
    defaults to :data:`EPOCHS` of the kind)."""
    classes = {"fista": SparseDictionary, "sae": SparseAutoencoder}
    if kind not in classes:
        raise InputError(f"unknown factor model {kind!r}: use fista (sparse coding) or sae (sparse autoencoder)")
    if params.get("n_epochs") is None:
        params["n_epochs"] = EPOCHS[kind]
    try:
        return classes[kind](**params)
    except TypeError as exc:
        raise InputError(f"{kind}: {exc}") from None


def fit_factors(store: Store | str | Path, *, layers: list[int] | None = None, kind: str = "fista", per_layer: bool = False,
                max_tokens: int = 50_000, heldout: float = 0.1, seed: int = 0, progress: Callable[[int, int], None] | None = None,
                vectors: LayerVectors | None = None, **params) -> Factors:
    """Fit one factor model shared by ``layers`` (default: every hidden layer but the embeddings) of a
    store, or with ``per_layer=True`` one model per layer (each with ``params``, on that layer's tokens).

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=60), tempfile.mkdtemp(), layers="1-3")
        >>> f = fit_factors(s, n_factors=32, alpha=1.0, n_epochs=1)
        >>> f.importance_.shape, sorted(f.reports)
        ((32, 3), [1, 2, 3])
        >>> fit_factors(s, per_layer=True, n_factors=32, alpha=1.0, n_epochs=1).importance_.shape
        (96, 3)
    """
    store = as_store(store)
    if layers is None:
        layers = [l for l in hidden_layers(store) if l > 0] or None
    vectors = vectors or layer_vectors(store, layers, max_tokens=max_tokens, heldout=heldout, seed=seed)
    if per_layer:
        models = _fit_per_layer(vectors, kind, seed, progress, params)
        curves = np.concatenate([_cross_curves(models[l], vectors, seed) for l in vectors.layers])
    else:
        model = make_model(kind, seed=seed, **params)
        model.fit(vectors.stacked("train")[0], progress=progress)
        models = {l: model for l in vectors.layers}
        curves = importance({l: model.transform(vectors.train[l]) for l in vectors.layers})
    reports = {l: evaluate(models[l], vectors.heldout[l], vectors.train[l]) for l in vectors.layers}
    return Factors(models, vectors.layers, vectors.mean, vectors.scale, reports, curves, levels(curves, vectors.layers), store_info(store))


CURVE_TOKENS = 5_000  # tokens per layer on which a per-layer dictionary's cross-layer importance is read


def _fit_per_layer(vectors: LayerVectors, kind: str, seed: int, progress: Callable[[int, int], None] | None,
                   params: dict) -> dict[int, FactorModel]:
    """One model per layer, trained on that layer's tokens; progress counts all of them."""
    models, n = {}, len(vectors.layers)
    for i, layer in enumerate(vectors.layers):
        step = None if progress is None else (lambda done, total, i=i: progress(i * total + done, n * total))
        models[layer] = make_model(kind, seed=seed, **params).fit(vectors.train[layer], progress=step)
    return models


def _cross_curves(model: FactorModel, vectors: LayerVectors, seed: int) -> np.ndarray:
    """[K, layers]: the importance of one layer's factors when its dictionary reads every layer
    (on a seeded sample of at most ``CURVE_TOKENS`` training tokens per layer)."""
    n = len(vectors.train[vectors.layers[0]])
    rows = np.sort(np.random.default_rng(seed).permutation(n)[:CURVE_TOKENS])
    return importance({l: model.transform(vectors.train[l][rows]) for l in vectors.layers})


def seed_spread(store: Store | str | Path, seeds: tuple[int, ...] = (0, 1, 2), **kwargs) -> dict[int, dict[str, float]]:
    """Fit once per seed (sample, split and initialisation all change) and summarise each layer's held-out
    variance explained, PCA control and mean L0 as mean and standard deviation over the seeds.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=60), tempfile.mkdtemp(), layers="1")
        >>> sorted(seed_spread(s, (0, 1), n_factors=16, alpha=1.0, n_epochs=1)[1])[:2]
        ['mean_l0_mean', 'mean_l0_sd']
    """
    if len(seeds) < 2:
        raise InputError("a spread needs at least two seeds")
    store = as_store(store)
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
