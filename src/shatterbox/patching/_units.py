"""The causal column of a neurons run: each explained unit (an MLP neuron, or a factor of a factors file) ablated over
sentences of its store, and how far the model's output moves, beside how well its explanation simulates it.

The default model is a sentence-embedding model, so the output is its mean-pooled sentence embedding and the effect is
1 - cos(embedding, clean embedding), averaged over sentences (as the factors' downstream score measures it). A neuron is
set to its mean over the sentences' tokens; a factor is removed from its layer's hidden state (its code times its atom,
word tokens only, as the dictionary was fitted), which leaves every earlier layer as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.classifiers import mean_pool
from shatterbox.corpus import sample_indices
from shatterbox.errors import InputError
from shatterbox.models import LoadedModel
from shatterbox.patching._ablate import _none, _ranks, agreement_note, site_means
from shatterbox.patching._patch import rank_agreement
from shatterbox.patching._hooks import Intervention, Site, add, collecting, intervening, replace
from shatterbox.trace import encode

UNIT_TEXTS = 100  # sentences of the store each unit is ablated over (a seeded sample)


def _embeddings(model: LoadedModel, inputs: dict[str, torch.Tensor], plans: list[list[Intervention]] | None = None) -> torch.Tensor:
    """Mean-pooled, L2-normalised last hidden states of ``inputs`` (with ``plans`` applied row by row)."""
    width = int(inputs["input_ids"].shape[1])
    with torch.inference_mode():
        if plans is None:
            hidden = model.model(**inputs).last_hidden_state
        else:
            with intervening(model, plans, width):
                hidden = model.model(**inputs).last_hidden_state
    return torch.nn.functional.normalize(mean_pool(hidden, inputs["attention_mask"]).float(), dim=-1)


def embedding_effects(model: LoadedModel, texts: Sequence[str], plans: Callable[[int, int], list[Intervention]], n_units: int, *,
                      rows_per_pass: int = 256, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """[texts, units]: 1 - cos(embedding with ``plans(text, unit)`` applied, clean embedding), one row of a batch per
    (text, unit) pair.

    Examples:
        >>> from shatterbox.models import load
        >>> m = load()
        >>> embedding_effects(m, ["a cat", "a dog"], lambda t, u: [replace(Site("hidden", 6), torch.zeros(384))], 1).round(3).tolist()
        [[1.0], [1.0]]
    """
    texts = list(texts)
    enc = encode(model, texts)
    inputs_all = enc.model_inputs(model.forward_keys)
    clean = torch.cat([_embeddings(model, {k: v[r] for k, v in inputs_all.items()}) for r in chunks(len(texts), 64)])
    rows = [(t, u) for t in range(len(texts)) for u in range(n_units)]
    out = np.zeros((len(texts), n_units))
    for part in chunks(len(rows), rows_per_pass):
        pairs = rows[part]
        idx = torch.tensor([t for t, _ in pairs])
        width = int(inputs_all["attention_mask"][idx].sum(dim=1).max())
        emb = _embeddings(model, {k: v[idx, :width] for k, v in inputs_all.items()}, [plans(t, u) for t, u in pairs])
        cos = (emb * clean[idx]).sum(dim=-1).double().numpy()
        for (t, u), c in zip(pairs, cos):
            out[t, u] = 1.0 - c
        if progress is not None:
            progress(part.stop, len(rows))
    return out


def sentence_effects(store: Any, site: Site, texts: Sequence[str], *, model: LoadedModel | None = None, how: str = "mean",
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Per text: how far the sentence embedding moves (1 - cos) when ``site`` is ablated in it (``mean``: its mean over
    ``texts``' tokens, or ``zero``), with the model ``store`` was harvested by. What the projector colours points by.

    Examples:
        >>> sentence_effects.__name__
        'sentence_effects'
    """
    from shatterbox.patching._hooks import check_site, zero
    from shatterbox.store import as_store

    store = as_store(store)
    model = _store_model(store, model)
    check_site(model, site)
    if how not in ("mean", "zero"):
        raise InputError(f"how must be mean or zero, not {how!r}", parameter="how")
    step = zero(site) if how == "zero" else replace(site, site_means(model, list(texts), [site])[site])
    return embedding_effects(model, texts, lambda t, u: [step], 1, progress=progress)[:, 0]


def factor_atom(factors: Any, factor: int, layer: int) -> torch.Tensor:
    """The raw-space direction one unit of ``factor``'s code adds to hidden state ``layer``: its atom (decoder row) times
    the layer's scale.

    Examples:
        >>> factor_atom.__name__
        'factor_atom'
    """
    if layer not in factors.mean:
        raise InputError(f"these factors were fitted on layers {factors.layers}, not {layer}", parameter="layer")
    size = factors.model.n_factors
    model = factors.model if factors.shared else factors.models[factors.layers[factor // size]]
    row = factor if factors.shared else factor % size
    return torch.from_numpy(np.asarray(model.components_[row], np.float32) * factors.scale[layer])


@dataclass
class CausalUnits:
    """A neurons run's units with their explanation score and their ablation effect, and how far the two rankings agree."""

    kind: str
    n_texts: int
    rows: list[dict]
    spearman: float
    note: str
    seconds: float

    def to_table(self):
        """One row per unit (pyarrow), by ablation effect."""
        import pyarrow as pa

        return pa.Table.from_pylist(self.rows)

    def to_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        return {"kind": self.kind, "n_texts": self.n_texts, "rows": self.rows, "spearman": _none(self.spearman), "note": self.note,
                "seconds": self.seconds}

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as strict JSON text."""
        import json

        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)


def causal_units(run: str | Path, *, model: LoadedModel | None = None, limit: int = UNIT_TEXTS, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> CausalUnits:
    """Every unit of the neurons run in folder ``run``, ablated over ``limit`` sentences of its store (a seeded sample):
    its mean embedding change beside its explanation's correlation score, ranked both ways, with their rank correlation.

    ``model``: the model the store was harvested with (default: loaded by the store's name and checked by its hash).

    Examples:
        >>> causal_units("/nonexistent")
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: '/nonexistent' is not a neurons run (no run.json): make one with `shatterbox neurons explain STORE --out /nonexistent`
    """
    from shatterbox.neurons import read_run
    from shatterbox.store import Store

    started = time.perf_counter()
    record, table = read_run(run)
    if table.num_rows == 0:
        raise InputError(f"the run {str(run)!r} has no finished units yet: let `shatterbox neurons explain` run first", parameter="run")
    store = Store.open(record["store"]["path"])
    model = _store_model(store, model)
    texts = store.sentences().column("text").to_pylist()
    texts = [texts[i] for i in sample_indices(len(texts), limit, seed)]
    units = table.select(["layer", "unit", "explanation", "correlation", "flagged"]).to_pylist()
    plans = _unit_plans(record, model, texts, units)
    effects = embedding_effects(model, texts, plans, len(units), progress=progress).mean(axis=0)
    return _joined(record["kind"], len(texts), units, effects, time.perf_counter() - started)


def _store_model(store, model: LoadedModel | None) -> LoadedModel:
    from shatterbox.store import harvested_model

    return harvested_model(store, model)


def _unit_plans(record: dict, model: LoadedModel, texts: list[str], units: list[dict]) -> Callable[[int, int], list[Intervention]]:
    if record["kind"] == "neuron":
        sites = [Site("neuron", int(u["layer"]), int(u["unit"])) for u in units]
        means = site_means(model, texts, sites)
        return lambda t, i: [replace(sites[i], means[sites[i]])]
    from shatterbox.factors import Factors

    factors = Factors.load(record["source"])
    if factors.store.get("key") != record["store"].get("key"):
        raise InputError(f"the factors file {record['source']!r} was fitted on another store than the run's (or the store was harvested "
                         "again): explain the factors of a file fitted on the run's store", parameter="run")
    enc = encode(model, texts)
    words = torch.tensor([[w is not None for w in enc.batch.word_ids(i)] for i in range(len(texts))])
    layers = sorted({int(u["layer"]) for u in units})
    with torch.inference_mode(), collecting(model, [Site("hidden", layer) for layer in layers]) as found:
        model.model(**enc.model_inputs(model.forward_keys))
    deltas = {}
    for layer in layers:
        hidden = found[Site("hidden", layer)]
        chosen = [int(u["unit"]) for u in units if int(u["layer"]) == layer]
        codes = factors.codes(hidden.reshape(-1, hidden.shape[-1]).numpy(), layer, units=chosen).reshape(*hidden.shape[:2], -1)
        for k in chosen:
            code = torch.from_numpy(np.ascontiguousarray(codes[..., k])) * words  # [texts, tokens]; word tokens only
            deltas[(layer, k)] = -code[..., None] * factor_atom(factors, k, layer)
    return lambda t, i: [add(Site("hidden", int(units[i]["layer"])), deltas[(int(units[i]["layer"]), int(units[i]["unit"]))][t])]


def _joined(kind: str, n_texts: int, units: list[dict], effects: np.ndarray, seconds: float) -> CausalUnits:
    score = np.array([np.nan if u["correlation"] is None else u["correlation"] for u in units], float)
    rank_s, rank_e = _ranks(score), _ranks(effects)
    rows = [{"layer": int(u["layer"]), "unit": int(u["unit"]), "explanation": u["explanation"], "correlation": _none(score[i]),
             "explanation rank": int(rank_s[i]), "ablation effect": float(effects[i]), "causal rank": int(rank_e[i]),
             "flagged": bool(u["flagged"])} for i, u in enumerate(units)]
    rows.sort(key=lambda r: r["causal rank"])
    rho = rank_agreement(score, effects)
    what = "neurons" if kind == "neuron" else "factors"
    note = agreement_note(rho, f"the explanation scores and the ablation effects of these {what}",
                          "a unit whose activations are easy to describe is not necessarily one the output depends on")
    return CausalUnits(kind, n_texts, rows, rho, note, seconds)


@dataclass
class DirectionEffects:
    """Per layer: how far the sentence embedding moves when the directions a linear probe reads are projected out of the
    layer's hidden state, against as many random directions (the control); the probe's accuracy beside it."""

    property: str
    n_texts: int
    rows: list[dict]
    seconds: float

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"property": self.property, "n_texts": self.n_texts, "rows": self.rows, "seconds": self.seconds}


def probe_direction_effects(store: Any, property: str, *, layers: Sequence[int] | None = None, model: LoadedModel | None = None,
                            limit: int = UNIT_TEXTS, examples: int = 4000, seed: int = 0,
                            progress: Callable[[int, int], None] | None = None) -> DirectionEffects:
    """Does the model *use* what a probe reads? For each layer: fit a linear probe for ``property`` on the store (at most
    ``examples``, a seeded sample), project the span of its class directions out of that layer's hidden state in
    ``limit`` sentences of the store, and measure the embedding change (1 - cos), next to removing as many random
    directions (seeded) — amnesic probing with its control. A property the model uses moves the output more than random
    directions do; one it merely carries does not.

    Examples:
        >>> probe_direction_effects.__name__
        'probe_direction_effects'
    """
    from shatterbox.probes import examples as probe_examples, features, make_probe
    from shatterbox.store import as_store

    started = time.perf_counter()
    store = as_store(store)
    model = _store_model(store, model)
    found = probe_examples(store, property, limit=examples, seed=seed)
    chosen = [int(x) for x in (layers if layers is not None else store.layers("hidden"))]
    texts = store.sentences().column("text").to_pylist()
    texts = [texts[i] for i in sample_indices(len(texts), limit, seed)]
    rng = np.random.default_rng(seed)
    rows, plans = [], []
    for layer in chosen:
        x = features(store, found, layer)
        probe = make_probe("linear", seed=seed).fit(x, found.labels)
        scaler, head = probe[0], probe[-1]
        directions = head.coef_ / scaler.scale_  # [classes (1 when binary), d] in the raw hidden space
        basis = torch.from_numpy(np.linalg.qr(directions.T)[0].astype(np.float32))  # [d, r], orthonormal
        random = torch.from_numpy(np.linalg.qr(rng.standard_normal(directions.T.shape))[0].astype(np.float32))
        accuracy = float((probe.predict(x) == found.labels).mean())
        rows.append({"layer": layer, "directions": int(basis.shape[1]), "probe accuracy (training)": accuracy})
        plans += [_off(Site("hidden", layer), basis), _off(Site("hidden", layer), random)]
    effects = embedding_effects(model, texts, lambda t, u: [plans[u]], len(plans), progress=progress).mean(axis=0)
    for i, row in enumerate(rows):
        probe_e, random_e = float(effects[2 * i]), float(effects[2 * i + 1])
        row |= {"removing the probe's directions": probe_e, "removing random directions": random_e,
                "ratio": probe_e / random_e if random_e > 0 else None,
                "flag": "" if probe_e > 2 * random_e else "no more than twice the random directions' effect: the model may carry "
                                                           "the property here without using it"}
    return DirectionEffects(property, len(texts), rows, time.perf_counter() - started)


def _off(site: Site, basis: torch.Tensor) -> Intervention:
    """Project the span of ``basis`` [d, r] (orthonormal columns) out of ``site``'s activation."""
    return Intervention(site, "fn", lambda x: x - (x @ basis.to(x.dtype)) @ basis.T.to(x.dtype))
