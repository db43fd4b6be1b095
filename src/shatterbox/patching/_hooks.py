"""Interventions on an unmodified Hugging Face model: one per row of a batch, applied by forward hooks.

A :class:`Site` names a component (``hidden``, ``head``, ``attn``, ``mlp``, ``neuron``) at a layer; an
:class:`Intervention` says what happens there (``set`` the activation to a value, ``add`` a value, or replace it by
a function of itself) at which positions. :func:`intervening` applies a list of interventions per batch row, so a
sweep of many interventions is answered by a few batched forward passes. :func:`collecting` reads the same sites
(with their gradient graph when asked). Hooks act only for the thread and context that installed them, so concurrent
requests on one shared model (the web app) never see each other's interventions.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from shatterbox.errors import InputError
from shatterbox.models import LoadedModel, site_module, site_widths

_active: contextvars.ContextVar[frozenset] = contextvars.ContextVar("shatterbox_interventions", default=frozenset())  # hooks live here


@dataclass(frozen=True)
class Site:
    """A component at a layer: ``hidden`` *h* (0 = embeddings .. n), ``head`` *l*/*k* and ``attn``/``mlp`` *l* (layers
    and heads from 1), ``neuron`` *l*/*u* (units from 0, as in the store's ``mlp_l`` columns).

    Examples:
        >>> Site("head", 3, 5).label
        'L3 H5'
    """

    component: str
    layer: int
    unit: int | None = None

    @property
    def label(self) -> str:
        """A short name: ``L3 H5``, ``L2 N17``, ``hidden 4``, ``L1 mlp``."""
        if self.component == "hidden":
            return f"hidden {self.layer}"
        if self.component == "head":
            return f"L{self.layer} H{self.unit}"
        if self.component == "neuron":
            return f"L{self.layer} N{self.unit}"
        return f"L{self.layer} {self.component}"

    def columns(self, widths: dict[str, int]) -> slice:
        """The columns of the hooked tensor this site owns."""
        if self.component == "head":
            w = widths["head"]
            return slice((self.unit - 1) * w, self.unit * w)
        if self.component == "neuron":
            return slice(self.unit, self.unit + 1)
        return slice(None)

    def width(self, widths: dict[str, int]) -> int:
        """How many numbers the site holds per token."""
        return 1 if self.component == "neuron" else widths[self.component]


def check_site(model: LoadedModel, site: Site) -> Site:
    """``site`` if ``model`` has it, else one :class:`InputError` naming the valid range.

    Examples:
        >>> from shatterbox.models import load
        >>> check_site(load(), Site("head", 7, 1))
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: layer 7 is out of range: 'default' has layers 1-6 (hidden states 0-6)
    """
    from shatterbox.models import COMPONENTS

    n, widths = model.n_layers, site_widths(model.model)
    if site.component not in COMPONENTS:
        raise InputError(f"unknown component {site.component!r}: choose one of {', '.join(COMPONENTS)}", parameter="component")
    low = 0 if site.component == "hidden" else 1
    if not low <= site.layer <= n:
        raise InputError(f"layer {site.layer} is out of range: {model.name!r} has layers 1-{n} (hidden states 0-{n})", parameter="layer")
    if site.component == "head" and not (site.unit is not None and 1 <= site.unit <= model.n_heads):
        raise InputError(f"head {site.unit} is out of range: {model.name!r} has heads 1-{model.n_heads} per layer", parameter="head")
    if site.component == "neuron" and not (site.unit is not None and 0 <= site.unit < widths["neuron"]):
        raise InputError(f"neuron {site.unit} is out of range: {model.name!r} has neurons 0-{widths['neuron'] - 1} per layer", parameter="unit")
    return site


@dataclass
class Intervention:
    """What happens at ``site``: ``op`` is ``set`` (the activation becomes ``value``), ``add`` (``value`` is added) or
    ``fn`` (``value(x)`` replaces ``x``, [positions, width] -> [positions, width]); ``value`` is [width] (every position) or
    [tokens, width] (position by position, in the row's own token order). ``positions``: token indices, or ``None`` for all.

    Examples:
        >>> zero(Site("mlp", 2), positions=[3]).op
        'set'
    """

    site: Site
    op: str
    value: torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
    positions: Sequence[int] | None = None


def zero(site: Site, positions: Sequence[int] | None = None) -> Intervention:
    """Zero ablation: the component's activation becomes 0.

    Examples:
        >>> zero(Site("head", 1, 2)).value.tolist()
        [0.0]
    """
    return Intervention(site, "set", torch.zeros(1), positions)


def replace(site: Site, value: torch.Tensor, positions: Sequence[int] | None = None) -> Intervention:
    """Set the activation to ``value`` (a mean from the corpus [width], or a source run's activations [tokens, width]).

    Examples:
        >>> replace(Site("mlp", 1), torch.ones(4)).op
        'set'
    """
    return Intervention(site, "set", value, positions)


def add(site: Site, value: torch.Tensor, positions: Sequence[int] | None = None) -> Intervention:
    """Add ``value`` ([width] or [tokens, width]) to the activation (steering).

    Examples:
        >>> add(Site("hidden", 2), torch.ones(4)).op
        'add'
    """
    return Intervention(site, "add", value, positions)


def remove_direction(site: Site, direction: torch.Tensor, positions: Sequence[int] | None = None) -> Intervention:
    """Project the activation off ``direction``: x - (x . u) u with u = direction / |direction|.

    Examples:
        >>> i = remove_direction(Site("hidden", 1), torch.tensor([1.0, 0.0]))
        >>> i.value(torch.tensor([[3.0, 4.0]])).tolist()
        [[0.0, 4.0]]
    """
    u = direction.float() / direction.float().norm().clamp(min=1e-12)
    return Intervention(site, "fn", lambda x: x - (x @ u.to(x.dtype))[..., None] * u.to(x.dtype), positions)


@dataclass
class _Edit:
    rows: torch.Tensor  # [m] batch rows
    where: torch.Tensor  # [m, T] positions touched
    cols: slice
    op: str
    value: torch.Tensor | list[Callable]  # set/add: [m, T, w]; fn: one callable per row


def _edits(plans: Sequence[Sequence[Intervention]], tokens: int, widths: dict[str, int]) -> dict[Site, list[_Edit]]:
    """Group the interventions of every row by site (so one hook applies each group as one tensor operation)."""
    grouped: dict[tuple[Site, str], list[tuple[int, Intervention]]] = defaultdict(list)
    for row, plan in enumerate(plans):
        for step in plan:
            grouped[(step.site, step.op)].append((row, step))
    edits: dict[Site, list[_Edit]] = defaultdict(list)
    for (site, op), items in grouped.items():
        rows = torch.tensor([r for r, _ in items])
        where = torch.zeros(len(items), tokens, dtype=torch.bool)
        for i, (_, step) in enumerate(items):
            if step.positions is None:
                where[i] = True
            else:
                where[i, [p for p in step.positions if p < tokens]] = True
        if op == "fn":
            value: torch.Tensor | list[Callable] = [step.value for _, step in items]
        else:
            value = torch.stack([_per_token(step.value, tokens, site.width(widths)) for _, step in items])
        edits[site].append(_Edit(rows, where, site.columns(widths), op, value))
    return edits


def _per_token(value: torch.Tensor, tokens: int, width: int) -> torch.Tensor:
    value = value.detach().float()
    if value.dim() == 1:
        return value.expand(tokens, width) if value.numel() in (1, width) else _bad_width(value.shape[-1], width)
    if value.shape[-1] != width:
        _bad_width(value.shape[-1], width)
    out = torch.zeros(tokens, width)
    n = min(tokens, value.shape[0])
    out[:n] = value[:n]
    return out


def _bad_width(got: int, width: int) -> torch.Tensor:
    raise InputError(f"the intervention's vector has {got} numbers but the component holds {width} per token: "
                     "give a vector of the component's width", parameter="value")


def _apply(x: torch.Tensor, edits: list[_Edit]) -> torch.Tensor:
    """``x`` [batch, tokens, width] with every edit applied (a new tensor; the gradient flows through)."""
    y = x.clone()
    for e in edits:
        rows = e.rows.to(x.device)
        if int(rows.max()) >= y.shape[0]:
            raise InputError("an intervention names a batch row the forward pass does not have", parameter="plans")
        current = y[rows, :, e.cols]  # [m, T, w]
        t = current.shape[1]
        where = e.where[:, :t, None].to(x.device)
        if e.op == "set":
            new = torch.where(where, e.value[:, :t].to(device=x.device, dtype=x.dtype), current)
        elif e.op == "add":
            new = current + where * e.value[:, :t].to(device=x.device, dtype=x.dtype)
        else:
            new = torch.where(where, torch.stack([fn(current[i]) for i, fn in enumerate(e.value)]), current)
        y[rows, :, e.cols] = new
    return y


def _first(value):
    return value[0] if isinstance(value, tuple) else value


def _hook(token: object, act: Callable[[torch.Tensor], torch.Tensor | None], pre: bool):
    """A hook that calls ``act`` on its site's tensor only inside the context that installed it; a tensor
    ``act`` returns replaces the module's input (pre) or output."""

    def on_input(module, args, kwargs):
        if token not in _active.get():
            return None
        if args:
            new = act(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        new = act(kwargs["hidden_states"])
        return None if new is None else (args, {**kwargs, "hidden_states": new})

    def on_output(module, args, output):
        if token not in _active.get():
            return None
        new = act(_first(output))
        if new is None:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    return on_input if pre else on_output


@contextmanager
def _installed(model: nn.Module, acts: dict[Site, Callable[[torch.Tensor], torch.Tensor | None]]) -> Iterator[None]:
    token = object()
    handles = []
    for site, act in acts.items():
        module, pre = site_module(model, site.component, site.layer)
        hook = _hook(token, act, pre)
        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True) if pre else module.register_forward_hook(hook))
    ctx = _active.set(_active.get() | {token})  # nested blocks (widening, then intervening) all act
    try:
        yield
    finally:
        _active.reset(ctx)
        for h in handles:
            h.remove()


@contextmanager
def intervening(model: LoadedModel, plans: Sequence[Sequence[Intervention]], tokens: int) -> Iterator[None]:
    """Apply ``plans[i]`` to row ``i`` of every forward pass of ``model`` inside the block (``tokens``: the batch's width).

    Examples:
        >>> from shatterbox.models import load
        >>> m = load()
        >>> inputs = m.tokenizer(["a cat", "a cat"], return_tensors="pt")
        >>> with torch.inference_mode(), intervening(m, [[], [zero(Site("hidden", 6))]], tokens=4):
        ...     out = m.model(**inputs).last_hidden_state
        >>> float(out[0].abs().sum()) > 0, float(out[1].abs().sum())
        (True, 0.0)
    """
    edits = _edits(plans, tokens, site_widths(model.model))
    for site in edits:
        check_site(model, site)
    acts = {site: (lambda x, e=site_edits: _apply(x, e)) for site, site_edits in edits.items()}
    with _installed(model.model, acts):
        yield


@contextmanager
def widening(model: LoadedModel, hidden: int, rows: int) -> Iterator[None]:
    """Run a one-row input as ``rows`` rows from hidden state ``hidden`` on: every layer before it is computed once, then
    its output is repeated (rows are independent, so each row's later interventions see the same start). Install it
    before :func:`intervening` so that the rows exist when an intervention at the same hidden state runs.

    Examples:
        >>> from shatterbox.models import load
        >>> m = load()
        >>> with torch.inference_mode(), widening(m, 3, 4):
        ...     out = m.model(**m.tokenizer("a cat", return_tensors="pt")).last_hidden_state
        >>> tuple(out.shape)
        (4, 4, 384)
    """
    def widen(x: torch.Tensor) -> torch.Tensor | None:
        return x.repeat(rows, *([1] * (x.dim() - 1))) if x.shape[0] == 1 and rows > 1 else None

    with _installed(model.model, {Site("hidden", hidden): widen}):
        yield


@contextmanager
def collecting(model: LoadedModel, sites: Sequence[Site], *, grad: bool = False) -> Iterator[dict[Site, torch.Tensor]]:
    """Read ``sites`` [batch, tokens, width] during the forward passes inside the block (the last pass wins).

    ``grad=True`` keeps them in the autograd graph (a leaf is made of the first block's input, so gradients exist
    even where the model's weights are frozen): ``torch.autograd.grad(metric, [found[s] for s in sites])``.

    Examples:
        >>> from shatterbox.models import load
        >>> m = load()
        >>> with torch.inference_mode(), collecting(m, [Site("head", 1, 2)]) as found:
        ...     _ = m.model(**m.tokenizer("a cat", return_tensors="pt"))
        >>> tuple(found[Site("head", 1, 2)].shape)
        (1, 4, 32)
    """
    widths = site_widths(model.model)
    found: dict[Site, torch.Tensor] = {}
    for site in sites:
        check_site(model, site)

    def reader(site: Site):
        cols = site.columns(widths)

        def act(x: torch.Tensor) -> torch.Tensor | None:
            if not grad:
                found[site] = x[..., cols].detach()
                return None
            if cols == slice(None):
                found[site] = x
                return x
            piece = x[..., cols]  # the site's columns, put back so that the rest of the pass reads them (and its gradient reaches them)
            found[site] = piece
            return torch.cat([x[..., : cols.start], piece, x[..., cols.stop:]], dim=-1)
        return act

    acts: dict[Site, Callable] = {}
    if grad:
        first = Site("hidden", 0)

        def leaf(x: torch.Tensor) -> torch.Tensor:
            x = x.detach().requires_grad_(True)
            if first in wanted:
                found[first] = x
            return x
        wanted = set(sites)
        acts[first] = leaf
    for site in sites:
        if grad and site == Site("hidden", 0):
            continue
        acts[site] = _chain(acts.get(site), reader(site))
    with _installed(model.model, acts):
        yield found


def _chain(first: Callable | None, then: Callable) -> Callable:
    if first is None:
        return then

    def both(x):
        new = first(x)
        after = then(x if new is None else new)
        return new if after is None else after
    return both
