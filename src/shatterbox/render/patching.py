"""Patching and ablation results drawn: a heat map over layer x position (or layer x head) in the terminal and as a
self-contained page (exact and attribution patching side by side, each cell's patched prediction on hover and click),
and the ablation ranking with its causal-vs-pattern agreement.

Examples:
    >>> import numpy as np
    >>> from shatterbox.patching import PatchResult
    >>> r = PatchResult("exact", "mlp", "denoise", "logit", "m", "not bad", "very bad", ["layer", "position"], [1, 2], [],
    ...                 ["not→very", "bad"], np.array([[1.0, 0.0], [0.5, 0.2]]), clean=1.0, corrupt=0.0)
    >>> page = patch_page(r)
    >>> "not→very" in page, 'data-sb-plot="patching"' in page
    (True, True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from shatterbox.render.plots import page, plot_fragment
from shatterbox.render.terminal import _word_style

if TYPE_CHECKING:
    from shatterbox.patching import AblationResult, CausalHeads, CausalUnits, PatchResult


def _grid(result: "PatchResult") -> tuple[np.ndarray, list[str], list[str]]:
    """The 2-D effect grid shown (rows: layers, or layer x head for a 3-D sweep), its row and column labels."""
    effect = result.effect
    if len(result.dims) == 1:
        return effect[:, None], [_layer(result, x) for x in result.layers], ["all positions"]
    if result.dims == ["layer", "head", "position"]:
        rows = [f"L{layer} H{head}" for layer in result.layers for head in result.units]
        return effect.reshape(-1, effect.shape[-1]), rows, list(result.positions)
    columns = [f"H{h}" for h in result.units] if result.dims[1] == "head" else list(result.positions)
    return effect, [_layer(result, x) for x in result.layers], columns


def _layer(result: "PatchResult", layer: int) -> str:
    return f"hidden {layer}" if result.component == "hidden" else f"L{layer}"


def _headline(result: "PatchResult") -> str:
    way = "clean activations into the corrupted run" if result.direction == "denoise" else "corrupted activations into the clean run"
    return (f"{result.method} patching of {result.component} ({way}) on {result.model}; metric: {result.measure}; "
            f"clean {result.clean:.3f} ({result.clean_top}), corrupted {result.corrupt:.3f} ({result.corrupt_top}); "
            f"{result.rows:,} runs in {result.forward_passes} forward passes, {result.seconds:.2f} s")


def patch_renderable(result: "PatchResult", *, top: int = 8) -> Group:
    """The effect heat map (red: the component carries the behaviour, 1 = all of it), the largest cells, the notes.

    Examples:
        >>> from rich.console import Console
        >>> import numpy as np
        >>> from shatterbox.patching import PatchResult
        >>> r = PatchResult("exact", "mlp", "denoise", "logit", "m", "a", "b", ["layer"], [1, 2], [], [], np.array([1.0, 0.0]), 1.0, 0.0)
        >>> Console(file=open("/dev/null", "w")).print(patch_renderable(r))
    """
    grid, rows, columns = _grid(result)
    table = Table(title=Text(f"effect in % (0 = none, 100 = all of it): {result.clean_text!r} vs {result.corrupt_text!r}"),
                  box=None, padding=(0, 0, 0, 1), pad_edge=False)
    table.add_column("")
    for c in columns:
        table.add_column(c, justify="right", overflow="crop")
    for label, values in zip(rows, grid):
        table.add_row(label, *[Text("-" if not np.isfinite(v) else f"{100 * v:.0f}".replace("-0", "0") if abs(v) < 0.005 else f"{100 * v:.0f}", style=_word_style(v if np.isfinite(v) else 0.0, 1.0))
                               for v in values])
    best = Text("largest: " + "; ".join(_cell_text(c) for c in result.ranking(top)))
    parts = [Text(_headline(result)), table, best] + [Text(f"note: {n}") for n in result.notes]
    return Group(*parts)


def _cell_text(cell: dict) -> str:
    where = " ".join(f"{k} {cell[k]}" for k in ("layer", "head", "position") if k in cell)
    effect = "n/a" if cell["effect"] is None else f"{cell['effect']:.2f}"
    return f"{where}: {effect}" + (f" -> {cell['top']}" if "top" in cell else "")


def patch_fragment(result: "PatchResult", other: "PatchResult | None" = None) -> str:
    """The heat map (and ``other``'s beside it, e.g. attribution patching, with their rank agreement) as an HTML fragment
    drawn by ``plots.js`` (the same drawing as the web app's Patching tab); click a cell for its patched prediction."""
    from shatterbox.patching import patch_report

    return plot_fragment([("patching", patch_report(result, other))])


def patch_page(result: "PatchResult", other: "PatchResult | None" = None) -> str:
    """A self-contained page (no network) around :func:`patch_fragment`."""
    return page(f"patching: {result.clean_text} / {result.corrupt_text}", patch_fragment(result, other))


def ablation_renderable(result: "AblationResult", *, top: int = 15) -> Group:
    """The sites whose ablation moves the predictions most, with intervals and flips.

    Examples:
        >>> from rich.console import Console
        >>> import numpy as np
        >>> from shatterbox.patching import AblationResult, Site
        >>> r = AblationResult("zero", "m", 3, [Site("mlp", 1)], np.array([0.2]), np.array([0.1]), np.array([0.0]), np.array([-1.0]), 0.1, 1)
        >>> Console(file=open("/dev/null", "w")).print(ablation_renderable(r))
    """
    table = Table(title=Text(f"{result.how} ablation over {result.n_texts} texts on {result.model} ({result.seconds:.1f} s)"))
    for name in ("site", "drop of the predicted label's probability", "± 95 %", "predictions flipped", "logit diff change"):
        table.add_column(name, justify="left" if name == "site" else "right")
    for row in result.ranking(top):
        table.add_row(row["site"], f"{row['drop']:+.4f}", f"{row['drop ±']:.4f}", f"{row['flips']:.0%}", f"{row['logit diff change']:+.3f}")
    return Group(table, *[Text(f"note: {n}") for n in result.notes])


def causal_heads_renderable(joined: "CausalHeads", *, top: int = 15) -> Group:
    """Heads by causal effect beside their attention-pattern rank, and the rank correlation."""
    table = Table(title=Text("heads by ablation effect, beside the attention-pattern ranking"))
    for name in ("layer", "head", "kind", "ablation drop", "causal rank", "pattern score", "pattern rank"):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for r in joined.rows[:top]:
        drop = "-" if r["ablation drop"] is None else f"{r['ablation drop']:+.4f}"
        table.add_row(str(r["layer"]), str(r["head"]), r["kind"], drop, str(r["causal rank"]), f"{r['pattern score']:.3f}", str(r["pattern rank"]))
    return Group(table, Text(joined.note))


def causal_units_renderable(joined: "CausalUnits", *, top: int = 15) -> Group:
    """A neurons run's units by ablation effect, beside their explanation score and rank, and the rank correlation."""
    table = Table(title=Text(f"{joined.kind}s by ablation effect (embedding change over {joined.n_texts} sentences) beside their explanation"))
    for name in ("layer", "unit", "ablation effect", "causal rank", "correlation", "explanation rank", "explanation"):
        table.add_column(name, justify="left" if name == "explanation" else "right", overflow="fold")
    for r in joined.rows[:top]:
        corr = "-" if r["correlation"] is None else f"{r['correlation']:.3f}" + (" (flagged)" if r["flagged"] else "")
        table.add_row(str(r["layer"]), str(r["unit"]), f"{r['ablation effect']:.5f}", str(r["causal rank"]), corr,
                      str(r["explanation rank"]), r["explanation"][:60])
    return Group(table, Text(joined.note))
