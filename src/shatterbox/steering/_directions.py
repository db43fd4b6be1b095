"""Directions to steer along, each tied to the model and hidden layer it came from: DiffMean (the mean residual state of
one set of a store's sentences minus another's), a probe's weight vector, a factor's atom or an SAE latent's decoder row,
a random direction, or any vector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from shatterbox.errors import InputError
from shatterbox.models import LoadedModel
from shatterbox.store import as_store


@dataclass
class Direction:
    """A vector in hidden layer ``layer``'s residual space (raw, as the model holds it) and where it came from.

    Examples:
        >>> d = Direction("demo", "vector", 2, torch.tensor([3.0, 4.0]))
        >>> d.unit.tolist(), d.norm
        ([0.6000000238418579, 0.800000011920929], 5.0)
    """

    name: str
    kind: str
    layer: int
    vector: torch.Tensor
    model: str = ""
    model_hash: str = ""

    @property
    def norm(self) -> float:
        """Its length in the raw residual space."""
        return float(self.vector.float().norm())

    @property
    def unit(self) -> torch.Tensor:
        """The direction with length 1 (what a strength multiplies)."""
        return self.vector.float() / max(self.norm, 1e-12)

    def check(self, model: LoadedModel, layer: int) -> "Direction":
        """This direction, refused with one message when ``model`` or ``layer`` is not the one it fits.

        Examples:
            >>> from shatterbox.models import load
            >>> Direction("d", "vector", 2, torch.ones(5)).check(load(), 2)
            Traceback (most recent call last):
            ...
            shatterbox.errors.InputError: the direction 'd' has 5 numbers but the residual stream of 'default' has 384: give a vector of the model's hidden size
        """
        width = int(model.model.config.hidden_size)
        if self.vector.dim() != 1 or self.vector.numel() != width:
            raise InputError(f"the direction {self.name!r} has {self.vector.numel()} numbers but the residual stream of {model.name!r} has {width}: "
                             "give a vector of the model's hidden size", parameter="direction")
        if not bool(torch.isfinite(self.vector).all()) or self.norm == 0:
            raise InputError(f"the direction {self.name!r} is zero or not finite: give a direction with finite, nonzero numbers", parameter="direction")
        if not 0 <= layer <= model.n_layers:
            raise InputError(f"layer {layer} is out of range: {model.name!r} has hidden states 0-{model.n_layers}", parameter="layer")
        if self.model_hash:
            from shatterbox.store import model_hash

            if model_hash(model) != self.model_hash:
                raise InputError(f"the direction {self.name!r} comes from {self.model!r}, not from {model.name!r}: build it from a store of that model",
                                 parameter="direction")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (without the vector)."""
        return {"name": self.name, "kind": self.kind, "layer": self.layer, "norm": round(self.norm, 6), "model": self.model}


def parse_labels(spec: str) -> tuple[str, str, str]:
    """``"COLUMN=FIRST,SECOND"`` -> (column, first, second): which label column and values a DiffMean or probe reads.

    Examples:
        >>> parse_labels("label=positive,negative")
        ('label', 'positive', 'negative')
        >>> parse_labels("label")
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: cannot read labels 'label': write COLUMN=FIRST,SECOND (a label column, then the two values compared: positive,negative for the column label)
    """
    column, _, values = spec.partition("=")
    first, _, second = values.partition(",")
    if not column.strip() or not first.strip() or not second.strip():
        raise InputError(f"cannot read labels {spec!r}: write COLUMN=FIRST,SECOND (a label column, then the two values compared: "
                         "positive,negative for the column label)", parameter="labels")
    return column.strip(), first.strip(), second.strip()


def middle_layer(model: LoadedModel) -> int:
    """The hidden layer steering uses when none is given: the middle of the stack (concepts are most linearly steerable
    there in most decoders; the bench compares layers).

    Examples:
        >>> from shatterbox.models import load
        >>> middle_layer(load())
        3
    """
    return model.n_layers // 2


def vector_direction(vector: Any, layer: int, *, name: str = "vector") -> Direction:
    """Any vector of the hidden size, as a direction of hidden layer ``layer``.

    Examples:
        >>> vector_direction([1.0, 0.0], 3).kind
        'vector'
    """
    try:
        v = torch.as_tensor(np.asarray(vector, dtype=np.float32))
    except (TypeError, ValueError):
        raise InputError("the direction is not a list of numbers: give a vector of the model's hidden size", parameter="direction") from None
    return Direction(name, "vector", int(layer), v.reshape(-1))


def random_direction(model: LoadedModel, layer: int, *, seed: int = 0) -> Direction:
    """A seeded random direction (Gaussian, unit length) of ``model``'s residual stream: the control of every steering run.

    Examples:
        >>> from shatterbox.models import load
        >>> d = random_direction(load(), 3, seed=1)
        >>> d.vector.shape[0], round(d.norm, 6)
        (384, 1.0)
    """
    g = torch.Generator().manual_seed(int(seed))
    v = torch.randn(int(model.model.config.hidden_size), generator=g)
    return Direction(f"random (seed {seed})", "random", int(layer), v / v.norm(), model.name)


def diffmean(store: Any, layer: int, column: str, positive: str, negative: str) -> Direction:
    """DiffMean: the mean hidden state (layer ``layer``, every non-special token) of the store's sentences whose label
    ``column`` is ``positive``, minus that of the sentences labelled ``negative``.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import Corpus
        >>> from shatterbox.store import harvest
        >>> import pyarrow as pa
        >>> c = Corpus(pa.table({"id": [0, 1], "text": ["Great.", "Awful."], "label": ["pos", "neg"]}), "t")
        >>> d = diffmean(harvest(c, tempfile.mkdtemp(), layers="2"), 2, "label", "pos", "neg")
        >>> d.kind, d.vector.shape[0]
        ('diffmean', 384)
    """
    store = as_store(store)
    store.require_hidden([layer])
    names = store.sentences().schema.names
    if column not in names or column in ("id", "text"):
        labels = [n for n in names if n not in ("id", "text")]
        raise InputError(f"the store's corpus has no label column {column!r}: it has {labels or 'none'}", parameter="column")
    sentences = store.sentences()
    values = np.asarray(sentences.column(column).to_pylist(), dtype=object)
    ids = sentences.column("id").to_numpy()
    groups = {}
    for label in (positive, negative):
        chosen = ids[values == label]
        if not len(chosen):
            found = sorted({str(v) for v in values})[:8]
            raise InputError(f"no sentence of the store has {column} = {label!r}: its values include {found}", parameter="column")
        groups[label] = chosen
    sums = {label: np.zeros(store.width(f"hidden_{layer}")) for label in groups}
    counts = dict.fromkeys(groups, 0)
    for meta, x in store.batches(f"hidden_{layer}", "not special"):
        sid = meta.column("sentence_id").to_numpy()
        for label, chosen in groups.items():
            mask = np.isin(sid, chosen)
            sums[label] += x[mask].sum(axis=0, dtype=np.float64)
            counts[label] += int(mask.sum())
    mean = {label: sums[label] / max(counts[label], 1) for label in groups}
    vector = torch.from_numpy((mean[positive] - mean[negative]).astype(np.float32))
    return Direction(f"DiffMean {column}: {positive} - {negative}", "diffmean", int(layer), vector, store.model, store.manifest["model"]["hash"])


def probe_direction(store: Any, property: str, layer: int, label: str, *, examples: int = 4000, seed: int = 0) -> Direction:
    """The weight vector a linear probe for ``property`` (a token property or a label column of the store's corpus) gives
    class ``label`` at hidden layer ``layer``, mapped back to the raw residual space (the probe standardises first).

    Examples:
        >>> probe_direction.__name__
        'probe_direction'
    """
    from shatterbox.probes import PROPERTIES, class_directions, examples as probe_examples, features, make_probe

    store = as_store(store)
    store.require_hidden([layer])
    level = "token" if property in PROPERTIES else "sentence"  # a label column of the corpus: one mean-pooled vector per sentence
    found = probe_examples(store, property, level=level, limit=examples, seed=seed)
    classes = sorted({str(c) for c in found.labels})
    if str(label) not in classes:
        raise InputError(f"the probe for {property!r} has no class {label!r}: its classes include {classes[:8]}", parameter="label")
    x = features(store, found, layer)
    probe = make_probe("linear", seed=seed).fit(x, np.asarray([str(c) for c in found.labels]))
    vector = class_directions(probe)[str(label)]
    return Direction(f"probe {property} = {label}", "probe", int(layer), torch.from_numpy(np.asarray(vector, np.float32)), store.model,
                     store.manifest["model"]["hash"])


def factor_direction(factors: Any, factor: int, layer: int) -> Direction:
    """The residual-space direction of one factor (a sparse-dictionary atom, or an SAE latent's decoder row) fitted on a
    store: its atom times the layer's normalisation scale.

    Examples:
        >>> factor_direction("missing.safetensors", 0, 1)
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: no factors file at 'missing.safetensors': fit one with shatterbox factors fit STORE
    """
    from shatterbox.factors import Factors
    from shatterbox.patching import factor_atom

    if not isinstance(factors, Factors):
        if not Path(factors).is_file():
            raise InputError(f"no factors file at {str(factors)!r}: fit one with shatterbox factors fit STORE", parameter="factors")
        factors = Factors.load(factors)
    if not 0 <= factor < factors.n_factors:
        raise InputError(f"factor {factor} is out of range: the file has factors 0-{factors.n_factors - 1}", parameter="factor")
    vector = factor_atom(factors, int(factor), int(layer))
    model_name, digest = str(factors.store.get("model", "")), ""
    path = factors.store.get("path")
    if path and Path(path, "manifest.json").is_file():
        digest = as_store(path).manifest["model"]["hash"]
    return Direction(f"factor {factor}", "factor", int(layer), vector, model_name, digest)


def sentiment_direction(model: LoadedModel, layer: int, *, folder: str | Path | None = None,
                        progress: Callable[[int, int], None] | None = None) -> Direction:
    """DiffMean of the shipped sentiment sentences (positive minus negative) at hidden layer ``layer`` of ``model``: the
    sentences are harvested once into a store (``folder``, default under the shatterbox cache, reused afterwards;
    ``progress(sentences done, sentences)`` while harvesting).

    Examples:
        >>> from shatterbox.models import load
        >>> sentiment_direction(load("gemma-3-270m"), 9).name  # doctest: +SKIP
        'DiffMean label: positive - negative'
    """
    from shatterbox.decoders import cache_dir
    from shatterbox.store import harvest, model_hash

    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer <= model.n_layers:
        raise InputError(f"layer {layer!r} is out of range: {model.name!r} has hidden states 0-{model.n_layers}", parameter="layer")
    folder = Path(folder) if folder is not None else cache_dir().parent / "stores" / f"sentiment-{model_hash(model)[:16]}-hidden-{layer}"
    counted = None if progress is None else (lambda done, tokens, total: progress(done, total))
    store = harvest("sentiment", folder, model=model, layers=str(layer), what="hidden", progress=counted)
    return diffmean(store, int(layer), "label", "positive", "negative")
