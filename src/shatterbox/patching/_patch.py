"""Activation patching between a clean and a corrupted text: exact (one patched run per component, batched) and
attribution patching (gradient x activation difference: one forward and backward pass for every component at once).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.errors import InputError
from shatterbox.models import site_widths
from shatterbox.options import PATCH
from shatterbox.patching._hooks import Intervention, Site, collecting, intervening, replace, widening
from shatterbox.patching._targets import Prepared, Scores, Target, make_target

PATCH_COMPONENTS = ("hidden", "head", "attn", "mlp")
DIRECTIONS = ("denoise", "noise")
MOVES = 1e-4  # an effect below this (0.01 % of the behaviour) is rounding, not a component's share
PASS_BYTES = 256 << 20  # activations one batched forward pass may hold (rows are added until this is reached)


@dataclass
class Pair:
    """A clean and a corrupted text made ready, and which token of one stands for which of the other."""

    clean: Prepared
    corrupt: Prepared
    positions: list[tuple[int, int]]  # (clean token, corrupted token) per aligned position
    labels: list[str]
    by_word: bool
    clean_text: str = ""
    corrupt_text: str = ""


def _groups(p: Prepared) -> list[list[int]]:
    """Tokens grouped by word (each special token on its own), over the tokens an intervention may touch."""
    groups: list[list[int]] = []
    last = object()
    for i, w in enumerate(p.words[: p.scored]):
        if w is None or w != last:
            groups.append([i])
        else:
            groups[-1].append(i)
        last = w if w is not None else object()
    return groups


def pair_texts(target: Target, clean: str, corrupt: str) -> Pair:
    """Pair the tokens of ``clean`` and ``corrupt``: one by one when they have as many tokens, else word by word (the
    last token of each word), else an :class:`InputError` saying how to fix the texts.

    Examples:
        >>> from shatterbox.patching import make_target
        >>> p = pair_texts(make_target(), "not bad", "very bad")
        >>> p.labels, p.by_word
        (['[CLS]', 'not→very', 'bad', '[SEP]'], False)
    """
    a, b = target.prepare(clean), target.prepare(corrupt)
    tok_a, tok_b = a.tokens[: a.scored], b.tokens[: b.scored]
    if a.scored == b.scored:
        labels = [x if x == y else f"{x}→{y}" for x, y in zip(tok_a, tok_b)]
        return Pair(a, b, [(i, i) for i in range(a.scored)], labels, False, clean, corrupt)
    ga, gb = _groups(a), _groups(b)
    if len(ga) != len(gb):
        raise InputError(
            f"the clean and corrupted texts differ in length ({a.scored} and {b.scored} tokens) and in words ({len(ga)} and "
            f"{len(gb)} words and special tokens), so their positions cannot be paired: give texts with the same number "
            "of words (one word replaced by another, e.g. 'The capital of France is' and 'The capital of Poland is')",
            parameter="corrupt")
    positions = [(x[-1], y[-1]) for x, y in zip(ga, gb)]
    labels = []
    for x, y in zip(ga, gb):
        wa, wb = _text(target, a, x), _text(target, b, y)
        labels.append(wa if wa == wb else f"{wa}→{wb}")
    return Pair(a, b, positions, labels, True, clean, corrupt)


def _text(target: Target, p: Prepared, tokens: list[int]) -> str:
    ids = p.inputs["input_ids"][0, tokens].tolist()
    text = target.model.tokenizer.decode(ids).strip()
    return text or p.tokens[tokens[0]]


def rank_agreement(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two scores of the same components (finite cells only; NaN below 3 cells).

    Examples:
        >>> rank_agreement(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
        0.5
    """
    from scipy.stats import spearmanr

    x, y = np.asarray(first, float).ravel(), np.asarray(second, float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return float("nan")
    return float(spearmanr(x[keep], y[keep]).statistic)


@dataclass
class PatchResult:
    """A patching sweep: ``values`` (the metric of each patched run, shaped by ``dims``), the ``clean`` and ``corrupt``
    runs' metric, and each patched run's top prediction.

    ``normalised`` puts each value on the scale 0 = corrupted run, 1 = clean run. ``effect`` is how much the component
    carries: for ``denoise`` (clean activations patched into the corrupted run) the share of the clean behaviour it
    restores, for ``noise`` (corrupted activations patched into the clean run) the share it destroys.
    """

    method: str
    component: str
    direction: str
    measure: str
    model: str
    clean_text: str
    corrupt_text: str
    dims: list[str]
    layers: list[int]
    units: list[int]
    positions: list[str]
    values: np.ndarray
    clean: float
    corrupt: float
    top: list[str] = field(default_factory=list)
    top_prob: np.ndarray | None = None
    clean_top: str = ""
    corrupt_top: str = ""
    forward_passes: int = 0
    rows: int = 0  # texts the model read, over all passes (each patched run is one row)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def normalised(self) -> np.ndarray:
        """(value - corrupt) / (clean - corrupt): 0 = corrupted run, 1 = clean run (NaN when the two runs agree)."""
        gap = self.clean - self.corrupt
        return (self.values - self.corrupt) / gap if abs(gap) > 1e-12 else np.full_like(self.values, np.nan)

    @property
    def effect(self) -> np.ndarray:
        """What the component carries: ``normalised`` when denoising, 1 - ``normalised`` when noising."""
        return self.normalised if self.direction == "denoise" else 1.0 - self.normalised

    def cell(self, *index: int) -> dict:
        """One patched run: its site, value, normalised value, effect and top prediction (index in ``dims`` order)."""
        flat = int(np.ravel_multi_index(index, self.values.shape))
        out = {"value": float(self.values[index]), "normalised": _num(self.normalised[index]), "effect": _num(self.effect[index])}
        for dim, i in zip(self.dims, index):
            out[dim] = {"layer": self.layers, "head": self.units, "position": self.positions}[dim][i]
        if self.top:
            out |= {"top": self.top[flat], "top_prob": float(self.top_prob.ravel()[flat])}
        return out

    def ranking(self, top: int | None = 10) -> list[dict]:
        """The cells with the largest effect first.

        Examples:
            >>> r = PatchResult("exact", "head", "denoise", "logit_diff", "m", "a", "b", ["layer", "head"], [1], [1, 2], [],
            ...                 np.array([[0.0, 2.0]]), clean=2.0, corrupt=0.0)
            >>> r.ranking(1)[0]["head"], r.ranking(1)[0]["effect"]
            (2, 1.0)
        """
        effect = np.nan_to_num(self.effect, nan=-np.inf)
        order = np.argsort(-effect.ravel(), kind="stable")[:top]
        return [self.cell(*np.unravel_index(i, self.values.shape)) for i in order]

    def agreement(self, other: "PatchResult") -> float:
        """Spearman rank correlation of the two results' effects (attribution against exact) over the cells where either
        moves the output by more than :data:`MOVES` (0.01 % of the behaviour): a cell whose activation is the same in both
        runs (e.g. a position before the changed word in a causal model) is 0 in both, up to rounding, and would only
        inflate the agreement.

        Examples:
            >>> a = PatchResult("exact", "mlp", "denoise", "logit", "m", "a", "b", ["layer"], [1, 2, 3, 4], [], [], np.array([0.0, 1.0, 2.0, 0.5]), 2.0, 0.0)
            >>> a.agreement(a)
            1.0
        """
        if self.values.shape != other.values.shape:
            raise InputError("the two results cover different components: run both over the same sweep", parameter="other")
        x, y = self.effect.ravel(), other.effect.ravel()
        moves = (np.abs(x) > MOVES) | (np.abs(y) > MOVES)
        return rank_agreement(x[moves], y[moves])

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as strict JSON text (no NaN)."""
        import json

        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_dict(self) -> dict:
        """Everything, JSON-ready (no NaN: undefined values are ``None``)."""
        return {"method": self.method, "component": self.component, "direction": self.direction, "measure": self.measure,
                "model": self.model, "clean_text": self.clean_text, "corrupt_text": self.corrupt_text, "dims": self.dims,
                "layers": self.layers, "units": self.units, "positions": self.positions, "values": _list(self.values),
                "normalised": _list(self.normalised), "effect": _list(self.effect), "clean": self.clean, "corrupt": self.corrupt,
                "clean_top": self.clean_top, "corrupt_top": self.corrupt_top, "top": self.top,
                "top_prob": None if self.top_prob is None else _list(self.top_prob), "forward_passes": self.forward_passes,
                "rows": self.rows, "seconds": self.seconds, "notes": self.notes}

    def to_table(self):
        """One row per patched run (pyarrow): its site, value, normalised value, effect and top prediction."""
        import pyarrow as pa

        rows = [self.cell(*np.unravel_index(i, self.values.shape)) for i in range(self.values.size)]
        return pa.Table.from_pylist(rows)


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _list(a: np.ndarray) -> list:
    """Nested lists of ``a`` with every non-finite value as ``None`` (strict JSON)."""
    return [_list(x) if isinstance(x, np.ndarray) else _num(x) for x in a]


@dataclass
class _Plan:
    """The sites of a sweep, in result order, and the shape of its result."""

    sites: list[Site]
    groups: list[list[int]]  # indices into pair.positions patched together (one per position, or all at once)
    dims: list[str]
    layers: list[int]
    units: list[int]
    shape: tuple[int, ...]


def _plan(target: Target, pair: Pair, component: str, positions: str, layers: Sequence[int] | None) -> _Plan:
    model = target.model
    if component not in PATCH_COMPONENTS:
        raise InputError(f"unknown component {component!r}: choose one of {', '.join(PATCH_COMPONENTS)}", parameter="component")
    if positions not in ("each", "all"):
        raise InputError(f"positions must be 'each' (one patch per position) or 'all' (every position at once), not {positions!r}",
                         parameter="positions")
    first = 0 if component == "hidden" else 1
    chosen = list(range(first, model.n_layers + 1)) if layers is None else [int(x) for x in layers]
    bad = [x for x in chosen if not first <= x <= model.n_layers]
    if bad or not chosen:
        raise InputError(f"layer {bad[0] if bad else '(none)'} is out of range for {component}: {model.name!r} has "
                         + (f"hidden states 0-{model.n_layers}" if component == "hidden" else f"layers 1-{model.n_layers}"), parameter="layers")
    units = list(range(1, model.n_heads + 1)) if component == "head" else []
    groups = [[j] for j in range(len(pair.positions))] if positions == "each" else [list(range(len(pair.positions)))]
    sites = [Site(component, layer, unit) for layer in chosen for unit in (units or [None])]
    dims = ["layer"] + (["head"] if units else []) + (["position"] if positions == "each" else [])
    shape = (len(chosen),) + ((len(units),) if units else ()) + ((len(groups),) if positions == "each" else ())
    return _Plan(sites, groups, dims, chosen, units, shape)


def _positions(positions: str | None, component: str) -> str:
    """``auto`` (or ``None``): every position at once for heads (a layer x head map), one at a time otherwise."""
    return ("all" if component == "head" else "each") if positions in (None, "auto") else positions


def _rows_per_pass(target: Target, tokens: int) -> int:
    widths = site_widths(target.model.model)
    per_row = tokens * 4 * (widths["hidden"] * 12 + widths["neuron"] * 2) + tokens * tokens * target.model.n_heads * 4 * 3
    return max(1, min(512, PASS_BYTES // max(1, per_row)))


def _repeat(inputs: dict[str, torch.Tensor], m: int) -> dict[str, torch.Tensor]:
    return {k: v.expand(m, *v.shape[1:]) for k, v in inputs.items()}


def _run_rows(target: Target, inputs: dict[str, torch.Tensor], plans: list[list[Intervention]],
              progress: Callable[[int, int], None] | None) -> tuple[Scores, int]:
    """Every plan as one row of a batch of copies of ``inputs``, a few rows per forward pass. When the target allows it,
    a pass holds the rows that start at the same hidden state and runs the layers below it once for all of them."""
    tokens = int(inputs["input_ids"].shape[1])
    size = _rows_per_pass(target, tokens)
    parts, passes = [], 0
    for rows in _passes(plans, size, target.expandable):
        chunk = plans[rows]
        with torch.inference_mode():
            if target.expandable:
                with widening(target.model, _first_touched(chunk), len(chunk)), intervening(target.model, chunk, tokens):
                    parts.append(target.score(inputs))
            else:
                with intervening(target.model, chunk, tokens):
                    parts.append(target.score(_repeat(inputs, len(chunk))))
        passes += 1
        if progress is not None:
            progress(rows.stop, len(plans))
    return Scores.join(parts), passes


def _passes(plans: list[list[Intervention]], size: int, by_start: bool) -> list[slice]:
    """Consecutive slices of at most ``size`` rows; with ``by_start`` a slice also ends where the first touched hidden
    state changes (so no row runs layers it did not need to).

    Examples:
        >>> p = [[replace(Site("hidden", h), torch.zeros(1))] for h in (1, 1, 1, 2, 2)]
        >>> [(s.start, s.stop) for s in _passes(p, 2, True)], [(s.start, s.stop) for s in _passes(p, 2, False)]
        ([(0, 2), (2, 3), (3, 5)], [(0, 2), (2, 4), (4, 5)])
    """
    if not by_start:
        return list(chunks(len(plans), size))
    out, start = [], 0
    for i in range(1, len(plans) + 1):
        if i == len(plans) or i - start == size or _first_touched([plans[i]]) != _first_touched([plans[start]]):
            out.append(slice(start, i))
            start = i
    return out


def _first_touched(plans: list[list[Intervention]]) -> int:
    """The earliest hidden state a chunk's interventions read or change (the residual stream entering their block)."""
    return min(i.site.layer if i.site.component == "hidden" else i.site.layer - 1 for plan in plans for i in plan)


def _endpoints(target: Target, pair: Pair, source: Prepared, sites: list[Site]) -> tuple[Scores, Scores, dict[Site, torch.Tensor]]:
    """The clean and corrupted runs' scores, and the activations of ``sites`` in the one of them that is ``source``: the
    clean run's distribution is read first (the reference of ``kl``); scoring the clean run fixes the label."""
    with torch.inference_mode():
        target.reference = target.log_probs(pair.clean.inputs)
        scores, acts = {}, {}
        for name, run in (("clean", pair.clean), ("corrupt", pair.corrupt)):
            with collecting(target.model, sites if run is source else []) as found:
                scores[name] = target.score(run.inputs)
            acts |= {s: found[s][0] for s in sites if run is source}
    return scores["clean"], scores["corrupt"], acts


def _base_source(pair: Pair, direction: str) -> tuple[Prepared, Prepared, list[tuple[int, int]]]:
    """(run patched, run read, (patched position, read position) pairs)."""
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be 'denoise' (clean into corrupted) or 'noise' (corrupted into clean), not {direction!r}",
                         parameter="direction")
    if direction == "denoise":
        return pair.corrupt, pair.clean, [(b, a) for a, b in pair.positions]
    return pair.clean, pair.corrupt, list(pair.positions)


def _sweep_setup(clean: str, corrupt: str, target: Any, component: str, direction: str, positions: str,
                 layers: Sequence[int] | None, measured: dict) -> tuple:
    """What both sweeps start from: the target, the paired texts, the cells, the run patched, the position map, the clean
    and corrupted runs' scores and the source run's activations at every site."""
    target = make_target(target, **measured)
    pair = pair_texts(target, clean, corrupt)
    plan = _plan(target, pair, component, _positions(positions, component), layers)
    base, source, mapped = _base_source(pair, direction)
    clean_s, corrupt_s, acts = _endpoints(target, pair, source, plan.sites)
    return target, pair, plan, base, mapped, clean_s, corrupt_s, acts


def patch(clean: str, corrupt: str, target: Any = None, *, component: str = PATCH.component, direction: str = PATCH.direction,
          positions: str = PATCH.positions, layers: Sequence[int] | None = None, label: str | int | None = None, answer: str | None = None,
          wrong: str | None = None, measure: str | None = None, progress: Callable[[int, int], None] | None = None) -> PatchResult:
    """Exact activation patching: every ``component`` (``hidden``, ``head``, ``attn``, ``mlp``) at every layer (and
    position, with ``positions="each"``) patched from one run into the other, one patched run per row of a few batched
    forward passes.

    ``target``: ``None`` (the shipped sentiment classifier), a classifier, or a model (a language model is measured by
    ``answer``/``wrong``/``measure``). ``positions``: ``"each"``, ``"all"`` or ``"auto"`` (all for heads, each otherwise).

    Examples:
        >>> r = patch("The film was not bad.", "The film was very bad.", component="mlp")
        >>> r.dims, r.values.shape
        (['layer', 'position'], (6, 8))
    """
    started = time.perf_counter()
    target, pair, plan, base, mapped, clean_s, corrupt_s, acts = _sweep_setup(clean, corrupt, target, component, direction, positions, layers,
                                                                             dict(label=label, answer=answer, wrong=wrong, measure=measure))
    plans = []
    for site in plan.sites:
        for group in plan.groups:
            at = [mapped[j] for j in group]
            value = torch.zeros(base.inputs["input_ids"].shape[1], acts[site].shape[-1])
            value[[b for b, _ in at]] = acts[site][[s for _, s in at]].float()
            plans.append([replace(site, value, [b for b, _ in at])])
    scores, passes = _run_rows(target, base.inputs, plans, progress)
    return _result("exact", target, pair, plan, component, direction, scores.metric.reshape(plan.shape), clean_s, corrupt_s,
                   scores, (passes + 3, len(plans) + 3), time.perf_counter() - started)


def attribution_patch(clean: str, corrupt: str, target: Any = None, *, component: str = PATCH.component, direction: str = PATCH.direction,
                      positions: str = PATCH.positions, layers: Sequence[int] | None = None, label: str | int | None = None,
                      answer: str | None = None, wrong: str | None = None, measure: str | None = None) -> PatchResult:
    """Attribution patching: the first-order estimate of every :func:`patch` cell from one forward and backward pass of
    the patched run, value = base metric + gradient . (source activation - base activation).

    Exact where the metric is linear in the patched activation; compare with :func:`patch` through
    :meth:`PatchResult.agreement`.

    Examples:
        >>> r = attribution_patch("The film was not bad.", "The film was very bad.", component="mlp")
        >>> r.method, r.values.shape
        ('attribution', (6, 8))
    """
    started = time.perf_counter()
    target, pair, plan, base, mapped, clean_s, corrupt_s, acts = _sweep_setup(clean, corrupt, target, component, direction, positions, layers,
                                                                             dict(label=label, answer=answer, wrong=wrong, measure=measure))
    with torch.enable_grad(), collecting(target.model, plan.sites, grad=True) as found:
        metric = target.forward(base.inputs)[0].sum()
        grads = torch.autograd.grad(metric, [found[s] for s in plan.sites], allow_unused=True)
    base_value = float(metric.detach())
    estimates = np.zeros((len(plan.sites), len(plan.groups)))
    for i, (site, grad) in enumerate(zip(plan.sites, grads)):
        if grad is None:
            continue
        b_idx = torch.tensor([b for b, _ in mapped])
        s_idx = torch.tensor([s for _, s in mapped])
        per_position = (grad[0, b_idx].double() * (acts[site][s_idx].double() - found[site][0, b_idx].detach().double())).sum(dim=-1)
        estimates[i] = [float(per_position[g].sum()) for g in plan.groups]
    values = (base_value + estimates).reshape(plan.shape)
    result = _result("attribution", target, pair, plan, component, direction, values, clean_s, corrupt_s, None, (4, 4),
                     time.perf_counter() - started)
    if target.measure == "kl" and direction == "noise":
        result.notes.append("the KL divergence has zero gradient at the clean run, so attribution patching cannot estimate noising it: "
                            "use another measure or direction='denoise'")
    return result


def _result(method: str, target: Target, pair: Pair, plan: _Plan, component: str, direction: str, values: np.ndarray,
            clean_s: Scores, corrupt_s: Scores, scores: Scores | None, cost: tuple[int, int], seconds: float) -> PatchResult:
    notes = []
    if pair.by_word:
        notes.append("the texts differ in tokens, so each word is patched at its last token")
    gap = float(clean_s.metric[0] - corrupt_s.metric[0])
    if abs(gap) < 1e-6:
        notes.append("the clean and corrupted runs give the same metric, so no effect can be normalised: choose a corruption "
                     "that changes the output")
    return PatchResult(
        method=method, component=component, direction=direction, measure=target.describe(), model=target.model.name,
        clean_text=pair.clean_text, corrupt_text=pair.corrupt_text, dims=plan.dims,
        layers=plan.layers, units=plan.units, positions=[pair.labels[g[0]] for g in plan.groups] if "position" in plan.dims else [],
        values=values, clean=float(clean_s.metric[0]), corrupt=float(corrupt_s.metric[0]),
        top=[] if scores is None else [target.top_name(int(t)) for t in scores.top],
        top_prob=None if scores is None else scores.top_prob.reshape(plan.shape),
        clean_top=target.top_name(int(clean_s.top[0])), corrupt_top=target.top_name(int(corrupt_s.top[0])),
        forward_passes=cost[0], rows=cost[1], seconds=seconds, notes=notes)


def patch_report(result: PatchResult, other: PatchResult | None = None) -> dict:
    """One sweep, or an exact and an attribution sweep of the same cells with their rank agreement, JSON-ready: what
    the CLI's json, the pages, the notebook and the web tab show.

    Examples:
        >>> a = PatchResult("exact", "mlp", "denoise", "logit", "m", "a", "b", ["layer"], [1, 2, 3], [], [], np.array([0.5, 1.0, 2.0]), 2.0, 0.0)
        >>> patch_report(a, a)["agreement"]
        1.0
    """
    rho = None if other is None else result.agreement(other)
    return {"result": result.to_dict(), "other": None if other is None else other.to_dict(),
            "agreement": None if rho is None or not np.isfinite(rho) else rho}


def sweep(clean: str, corrupt: str, target: Any = None, *, method: str = PATCH.method, component: str = PATCH.component,
          direction: str = PATCH.direction, positions: str = PATCH.positions, layers: Sequence[int] | None = None,
          label: str | int | None = None, answer: str | None = None, wrong: str | None = None, measure: str | None = None,
          progress: Callable[[int, int], None] | None = None) -> tuple[PatchResult, PatchResult | None]:
    """:func:`patch`, :func:`attribution_patch` or both (``method``: exact, attribution, both) over the same cells: (the
    first, the attribution map beside it or ``None``). What the ``patch`` command and the Patching tab run.

    Examples:
        >>> exact, approx = sweep("The film was not bad.", "The film was very bad.", component="mlp")
        >>> exact.method, approx.method
        ('exact', 'attribution')
    """
    if method not in ("exact", "attribution", "both"):
        raise InputError(f"method must be exact, attribution or both, not {method!r}", parameter="method")
    target = make_target(target, label=label, answer=answer, wrong=wrong, measure=measure)
    args = dict(component=component, direction=direction, positions=positions, layers=layers)
    exact = patch(clean, corrupt, target, progress=progress, **args) if method != "attribution" else None
    approx = attribution_patch(clean, corrupt, target, **args) if method != "exact" else None
    return (exact, approx) if exact is not None else (approx, None)
