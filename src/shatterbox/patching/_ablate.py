"""Ablation over a corpus: what removing each component does to a classifier's predictions, text by text.

Each text's own clean prediction is the label measured; a component's effect is the mean drop of that label's
probability when the component is ablated (zeroed, or set to its mean over a corpus's tokens), with a 95 % interval over
texts and the share of predictions it flips. Rows of one batch are (text, component) pairs, so a sweep of every head
over hundreds of texts is a few hundred batched passes, not tens of thousands.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.corpus import sample_indices
from shatterbox.errors import InputError
from shatterbox.models import LoadedModel
from shatterbox.options import ABLATE
from shatterbox.patching._hooks import Site, check_site, collecting, intervening, replace, zero
from shatterbox.patching._patch import _rows_per_pass, rank_agreement
from shatterbox.patching._targets import ClassifierTarget, make_target
from shatterbox.trace import encode

ABLATIONS = ("mean", "zero", "resample")
RESAMPLE_BYTES = 1 << 30  # the other texts' activations resampling keeps in memory
MEAN_TEXTS = 2000  # sentences of a store read for the mean activations (a seeded sample)


def component_sites(model: LoadedModel, component: str, layers: Sequence[int] | None = None,
                    units: Sequence[int] | None = None) -> list[Site]:
    """Every site of ``component`` at ``layers`` (default: all): heads (every head, or ``units``), ``attn``/``mlp``
    (one per layer), ``neuron`` (``units`` needed), ``hidden`` (0..n).

    Examples:
        >>> from shatterbox.models import load
        >>> len(component_sites(load(), "head")), component_sites(load(), "mlp", [2])[0].label
        (72, 'L2 mlp')
    """
    first = 0 if component == "hidden" else 1
    layers = list(range(first, model.n_layers + 1)) if layers is None else [int(x) for x in layers]
    if component == "head":
        units = list(range(1, model.n_heads + 1)) if units is None else list(units)
    elif component == "neuron":
        if units is None:
            raise InputError("neuron ablation needs the units to ablate (e.g. units=[5, 17])", parameter="units")
    else:
        units = [None]
    return [check_site(model, Site(component, layer, unit)) for layer in layers for unit in units]


def _batches(model: LoadedModel, texts: Sequence[str], size: int):
    for rows in chunks(len(texts), size):
        enc = encode(model, list(texts[rows]))
        yield rows, enc.model_inputs(model.forward_keys)


def site_means(model: LoadedModel | ClassifierTarget, source: Any, sites: Sequence[Site], *, limit: int = MEAN_TEXTS, seed: int = 0,
               progress: Callable[[int, int], None] | None = None) -> dict[Site, torch.Tensor]:
    """The mean activation of every site over the tokens (special tokens included, padding not) of ``source``: a list of
    texts or a :class:`~shatterbox.store.Store` harvested with this model (its sentences, a seeded sample of ``limit``).

    Examples:
        >>> from shatterbox.models import load
        >>> m = load()
        >>> tuple(site_means(m, ["a cat", "a dog"], [Site("head", 1, 1)])[Site("head", 1, 1)].shape)
        (32,)
    """
    model = model.model if isinstance(model, ClassifierTarget) else model
    texts = _texts_of(model, source, limit, seed)
    sums = {s: torch.zeros(s.width(_widths(model)), dtype=torch.float64) for s in sites}
    count = 0
    for rows, inputs in _batches(model, texts, 32):
        keep = inputs["attention_mask"].bool()
        with torch.inference_mode(), collecting(model, list(sites)) as found:
            model.model(**inputs)
        for s in sites:
            sums[s] += found[s][keep].double().sum(dim=0)
        count += int(keep.sum())
        if progress is not None:
            progress(rows.stop, len(texts))
    return {s: (v / max(count, 1)).float() for s, v in sums.items()}


def _widths(model: LoadedModel) -> dict[str, int]:
    from shatterbox.models import site_widths

    return site_widths(model.model)


def _texts_of(model: LoadedModel, source: Any, limit: int, seed: int) -> list[str]:
    from shatterbox.store import Store, model_hash

    if isinstance(source, (str, bytes)) and not isinstance(source, Store):
        raise InputError("the mean comes from a corpus: give a list of texts or a store, not one string", parameter="means")
    if isinstance(source, Store):
        if source.manifest["model"]["hash"] != model_hash(model):
            raise InputError(f"the store {source.root} was harvested with {source.manifest['model']['name']!r}, not with this model "
                             f"({model.name!r}): take the mean from a store of the model you ablate", parameter="means")
        texts = source.sentences().column("text").to_pylist()
    else:
        texts = [str(t) for t in source]
    if not texts:
        raise InputError("no texts to take the mean over", parameter="means")
    return [texts[i] for i in sample_indices(len(texts), limit, seed)]


@dataclass
class AblationResult:
    """Per site: the mean drop of each text's predicted-label probability when the site is ablated (``drop``, with a 95 %
    half-interval ``drop_ci``), the share of texts whose prediction it flips, and the mean change of the logit difference."""

    how: str
    model: str
    n_texts: int
    sites: list[Site]
    drop: np.ndarray
    drop_ci: np.ndarray
    flips: np.ndarray
    logit_diff_change: np.ndarray
    seconds: float
    forward_passes: int
    notes: list[str] = field(default_factory=list)

    def grid(self, values: np.ndarray | None = None) -> np.ndarray:
        """``values`` (default: ``drop``) as [layer, head] for a head sweep (NaN where a head was not ablated)."""
        values = self.drop if values is None else values
        layers = sorted({s.layer for s in self.sites})
        heads = max(s.unit or 1 for s in self.sites)
        out = np.full((max(layers), heads), np.nan)
        for s, v in zip(self.sites, values):
            out[s.layer - 1, (s.unit or 1) - 1] = v
        return out

    def ranking(self, top: int | None = 10) -> list[dict]:
        """Sites by the largest drop first."""
        order = np.argsort(-self.drop, kind="stable")[:top]
        return [self.row(int(i)) for i in order]

    def row(self, i: int) -> dict:
        """One site's numbers."""
        s = self.sites[i]
        return {"site": s.label, "component": s.component, "layer": s.layer, "unit": s.unit, "drop": _none(self.drop[i]),
                "drop ±": _none(self.drop_ci[i]), "flips": _none(self.flips[i]), "logit diff change": _none(self.logit_diff_change[i])}

    def to_table(self):
        """One row per site (pyarrow)."""
        import pyarrow as pa

        return pa.Table.from_pylist([self.row(i) for i in range(len(self.sites))])

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as strict JSON text (no NaN)."""
        import json

        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"how": self.how, "model": self.model, "n_texts": self.n_texts, "rows": [self.row(i) for i in range(len(self.sites))],
                "seconds": self.seconds, "forward_passes": self.forward_passes, "notes": self.notes}


def ablate(texts: Sequence[str], target: Any = None, *, component: str = ABLATE.component, how: str = ABLATE.how, layers: Sequence[int] | None = None,
           units: Sequence[int] | None = None, means: Any = None, positions: Sequence[int] | None = None,
           progress: Callable[[int, int], None] | None = None) -> AblationResult:
    """Ablate every ``component`` site, one at a time, in every text; measure how the classifier's prediction of each text
    moves. ``how``: ``mean`` (the site's mean over ``means``: a store of this model or a list of texts; default the texts
    themselves), ``zero``, or ``resample`` (the site's activations in another of the texts, a seeded choice, position by
    position).

    Examples:
        >>> r = ablate(["A wonderful film.", "A dull film."], component="mlp", how="zero")
        >>> len(r.sites), r.n_texts
        (6, 2)
    """
    started = time.perf_counter()
    target = make_target(target)
    if not isinstance(target, ClassifierTarget):
        raise InputError("ablation over texts measures a classifier's predictions: give a classifier (or nothing, for the shipped "
                         "sentiment classifier); for a language model use patch()", parameter="target")
    if how not in ABLATIONS:
        raise InputError(f"how must be one of {', '.join(ABLATIONS)}, not {how!r}", parameter="how")
    texts = [t for t in texts]
    if not texts:
        raise InputError("no texts to ablate over", parameter="texts")
    model = target.model
    sites = component_sites(model, component, layers, units)
    order = np.argsort([len(t) for t in texts], kind="stable")
    enc = encode(model, [texts[i] for i in order])
    inputs_all = enc.model_inputs(model.forward_keys)
    clean_logits = _logits(target, inputs_all)  # one pass over the texts: the predictions and their logit differences
    clean = np.empty(tuple(clean_logits.shape))
    clean[order] = (torch.sigmoid(clean_logits) if target.classifier.multi_label else torch.softmax(clean_logits, dim=-1)).double().numpy()
    labels = torch.tensor(clean.argmax(axis=1))
    rows = [(int(t), s) for t in range(len(texts)) for s in range(len(sites))]  # t indexes the length-sorted texts
    size = _rows_per_pass(target, int(inputs_all["input_ids"].shape[1]))
    drop = np.zeros((len(texts), len(sites)))
    logit_change = np.zeros_like(drop)
    flipped = np.zeros_like(drop)
    passes = 0
    base_logits = _diff(clean_logits, labels[order]).double().numpy()
    plan = _ablation_plans(model, how, sites, texts if means is None else means, inputs_all, positions)
    for chunk in chunks(len(rows), size):
        part = rows[chunk]
        idx = torch.tensor([t for t, _ in part])
        width = int(inputs_all["attention_mask"][idx].sum(dim=1).max())
        inputs = {k: v[idx, :width] for k, v in inputs_all.items()}
        plans = [plan(t, s) for t, s in part]
        with torch.inference_mode(), intervening(model, plans, width):
            logits = target.classifier.logits(inputs).float()
        passes += 1
        lab = labels[order][idx]
        probs = torch.softmax(logits, dim=-1)
        p = probs[torch.arange(len(part)), lab].double().numpy()
        diff = _diff(logits, lab).double().numpy()
        for j, (t, s) in enumerate(part):
            text = int(order[t])
            drop[text, s] = clean[text, int(lab[j])] - p[j]
            logit_change[text, s] = diff[j] - float(base_logits[t])
            flipped[text, s] = float(int(probs[j].argmax()) != int(lab[j]))
        if progress is not None:
            progress(chunk.stop, len(rows))
    n = len(texts)
    ci = 1.96 * drop.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(len(sites), np.nan)
    notes = [] if n >= 20 else [f"only {n} texts: the intervals are wide; give at least 20 texts for a ranking to rely on"]
    return AblationResult(how, model.name, n, sites, drop.mean(axis=0), ci, flipped.mean(axis=0), logit_change.mean(axis=0),
                          time.perf_counter() - started, passes + 2, notes)


def _ablation_plans(model: LoadedModel, how: str, sites: list[Site], means: Any, inputs: dict[str, torch.Tensor],
                    positions: Sequence[int] | None, seed: int = 0) -> Callable[[int, int], list]:
    """``plan(text, site)``: the interventions of one row (texts indexed as in ``inputs``)."""
    if how == "zero":
        return lambda t, s: [zero(sites[s], positions)]
    if how == "mean":
        mean = site_means(model, means, sites)
        return lambda t, s: [replace(sites[s], mean[sites[s]], positions)]
    n, lengths = int(inputs["input_ids"].shape[0]), inputs["attention_mask"].sum(dim=1)
    if n < 2:
        raise InputError("resampling takes each site from another text: give at least 2 texts", parameter="texts")
    size = n * int(inputs["input_ids"].shape[1]) * sum(s.width(_widths(model)) for s in sites) * 4
    if size > RESAMPLE_BYTES:
        raise InputError(f"resampling would keep {size / 2**30:.1f} GiB of activations: give fewer texts or sites, or use how='mean'",
                         parameter="how")
    partner = (np.arange(n) + np.random.default_rng(seed).integers(1, n)) % n  # a seeded other text for each, never itself
    acts = {site: [] for site in sites}
    for rows in chunks(n, 64):
        with torch.inference_mode(), collecting(model, sites) as found:
            model.model(**{k: v[rows] for k, v in inputs.items()})
        for site in sites:
            acts[site].append(found[site])
    acts = {site: torch.cat(parts) for site, parts in acts.items()}

    def plan(t: int, s: int) -> list:
        other = int(partner[t])
        shared = range(int(min(lengths[t], lengths[other])))
        kept = shared if positions is None else [p for p in positions if p in shared]
        return [replace(sites[s], acts[sites[s]][other], kept)]
    return plan


def _diff(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each row's label logit minus the largest other."""
    others = logits.clone()
    others[torch.arange(len(labels)), labels] = float("-inf")
    return logits[torch.arange(len(labels)), labels] - others.max(dim=1).values


def _logits(target: ClassifierTarget, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The classifier's logits [texts, labels] of every row of ``inputs``, 64 rows per pass."""
    out = []
    for rows in chunks(int(inputs["input_ids"].shape[0]), 64):
        with torch.inference_mode():
            out.append(target.classifier.logits({k: v[rows] for k, v in inputs.items()}).float())
    return torch.cat(out)


AGREE = 0.5  # below this rank correlation, a correlational and a causal ranking are said to disagree


@dataclass
class CausalHeads:
    """The head finder's attention-pattern ranking beside each head's ablation effect, and how far the two agree."""

    rows: list[dict]
    spearman: float
    note: str

    def to_table(self):
        """One row per head (pyarrow), by causal effect."""
        import pyarrow as pa

        return pa.Table.from_pylist(self.rows)

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as strict JSON text (no NaN)."""
        import json

        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        return {"rows": self.rows, "spearman": None if not np.isfinite(self.spearman) else self.spearman, "note": self.note}


def causal_heads(stats: Any, ablation: AblationResult) -> CausalHeads:
    """Join :func:`shatterbox.heads.head_stats` (what each head attends to) with a head :func:`ablate` run (what removing it
    does): one row per head with its pattern score and rank, its ablation drop and rank, and the rank correlation.

    Examples:
        >>> import shatterbox as sb
        >>> from shatterbox.heads import head_stats
        >>> texts = ["A wonderful film.", "A dull film.", "Not bad at all."]
        >>> joined = causal_heads(head_stats([sb.capture(sb.load(), t) for t in texts]), ablate(texts, component="head"))
        >>> len(joined.rows)
        72
    """
    if any(s.component != "head" for s in ablation.sites):
        raise InputError("the causal column joins a head ablation: run ablate(..., component='head')", parameter="ablation")
    pattern = np.asarray(stats.score, float)
    causal = ablation.grid()
    if causal.shape != pattern.shape:
        raise InputError(f"the head statistics ({pattern.shape[0]} x {pattern.shape[1]}) and the ablation ({causal.shape[0]} x "
                         f"{causal.shape[1]}) are of different models: use the same model for both", parameter="ablation")
    rank_p = _ranks(pattern)
    rank_c = _ranks(causal)
    rows = []
    for li in range(pattern.shape[0]):
        for hi in range(pattern.shape[1]):
            rows.append({"layer": li + 1, "head": hi + 1, "kind": stats.kind(li + 1, hi + 1), "pattern score": float(pattern[li, hi]),
                         "pattern rank": int(rank_p[li, hi]), "ablation drop": _none(causal[li, hi]), "causal rank": int(rank_c[li, hi])})
    rows.sort(key=lambda r: r["causal rank"])
    rho = rank_agreement(pattern, causal)
    return CausalHeads(rows, rho, agreement_note(rho, "the attention-pattern ranking and the causal ranking",
                                                 "a head that looks focused is not necessarily one the prediction needs"))


def agreement_note(rho: float, what: str, why: str) -> str:
    """One sentence on whether a correlational and a causal ranking agree (Spearman ``rho``; disagree below :data:`AGREE`).

    Examples:
        >>> agreement_note(0.1, "the two rankings", "looks are not effects")
        'the two rankings disagree (Spearman 0.10): looks are not effects'
    """
    if not np.isfinite(rho):
        return "no rank correlation: one of the rankings is constant, or there are fewer than 3 items"
    if rho < AGREE:
        return f"{what} disagree (Spearman {rho:.2f}): {why}"
    return f"{what} agree (Spearman {rho:.2f})"


def _ranks(values: np.ndarray) -> np.ndarray:
    flat = np.nan_to_num(values.ravel(), nan=-np.inf)
    order = np.argsort(-flat, kind="stable")
    ranks = np.empty(len(flat), int)
    ranks[order] = np.arange(1, len(flat) + 1)
    return ranks.reshape(values.shape)


def _none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
