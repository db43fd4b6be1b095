"""Patching and ablation results drawn: a heat map over layer x position (or layer x head) in the terminal and as a
self-contained page (exact and attribution patching side by side, each cell's patched prediction on hover and click),
and the ablation ranking with its causal-vs-pattern agreement.

Examples:
    >>> import numpy as np
    >>> from shatterbox.patching import PatchResult
    >>> r = PatchResult("exact", "mlp", "denoise", "logit", "m", "not bad", "very bad", ["layer", "position"], [1, 2], [],
    ...                 ["not→very", "bad"], np.array([[1.0, 0.0], [0.5, 0.2]]), clean=1.0, corrupt=0.0)
    >>> "not→very" in patch_page(r) and patch_page(r).count('class="cell"')
    4
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from shatterbox.render.palette import diverging
from shatterbox.render.terminal import _word_style

if TYPE_CHECKING:
    from shatterbox.patching import AblationResult, CausalHeads, PatchResult


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


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:1.2rem}
p{margin:.3rem 0;color:#444;font-size:.9rem} .maps{display:flex;gap:2rem;flex-wrap:wrap}
table.patch{border-collapse:collapse;font-size:.8rem;margin:.5rem 0} .patch th{font-weight:normal;padding:.1rem .3rem;white-space:nowrap}
.patch td.cell{width:2.6rem;height:1.4rem;text-align:center;cursor:pointer;border:1px solid #fff}
.patch td.cell:focus{outline:2px solid #222} #picked{min-height:1.4rem;font-weight:600}
"""


def _cell_colour(v: float) -> str:
    if not np.isfinite(v):
        return "background:#eee"
    r, g, b, a = diverging(v)
    return f"background:rgba({r},{g},{b},{a:.3f});color:{'#fff' if a > 0.6 else '#222'}"


def patch_table(result: "PatchResult") -> str:
    """One heat map as an HTML table; each cell carries its site, effect and patched prediction (``data-*``, escaped)."""
    grid, rows, columns = _grid(result)
    cells = [result.cell(*np.unravel_index(i, result.values.shape)) for i in range(result.values.size)]
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"
    body = []
    for r, (label, values) in enumerate(zip(rows, grid)):
        tds = []
        for c, v in enumerate(values):
            cell = cells[r * grid.shape[1] + c]
            data = html.escape(json.dumps(cell, ensure_ascii=False, allow_nan=False), quote=True)
            text = "" if not np.isfinite(v) else f"{v:.2f}"
            tip = html.escape(_cell_text(cell), quote=True)
            tds.append(f'<td class="cell" tabindex="0" style="{_cell_colour(v)}" title="{tip}" data-cell="{data}">{text}</td>')
        body.append(f"<tr><th>{html.escape(label)}</th>{''.join(tds)}</tr>")
    return f'<table class="patch" data-method="{html.escape(result.method)}">{head}{"".join(body)}</table>'


_SCRIPT = """
document.querySelectorAll("td.cell").forEach(function (td) {
  function pick() {
    var c = JSON.parse(td.dataset.cell), where = ["layer", "head", "position"].filter(function (k) { return k in c; })
      .map(function (k) { return k + " " + c[k]; }).join(", ");
    document.getElementById("picked").textContent = where + ": effect " + (c.effect === null ? "n/a" : c.effect.toFixed(3))
      + ", metric " + c.value.toFixed(3) + (c.top !== undefined ? ", patched prediction " + c.top + " (" + c.top_prob.toFixed(3) + ")" : "");
  }
  td.addEventListener("click", pick);
  td.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); } });
});
"""


def patch_fragment(result: "PatchResult", other: "PatchResult | None" = None) -> str:
    """The heat map (and ``other``'s beside it, e.g. attribution patching, with their rank agreement) as an HTML fragment."""
    maps = [result] + ([other] if other is not None else [])
    blocks = "".join(f"<div><p>{html.escape(m.method)} patching</p>{patch_table(m)}</div>" for m in maps)
    agree = ""
    if other is not None:
        rho = result.agreement(other)
        agree = f"<p>rank agreement (Spearman) of the two maps: {'n/a' if not np.isfinite(rho) else f'{rho:.3f}'}</p>"
    notes = "".join(f"<p>note: {html.escape(n)}</p>" for m in maps for n in m.notes)
    return (f'<div class="sb-patch"><p>{html.escape(_headline(result))}</p>{agree}<div class="maps">{blocks}</div>'
            f'<p id="picked" aria-live="polite">click a cell for its patched prediction</p>{notes}</div>')


def patch_page(result: "PatchResult", other: "PatchResult | None" = None, *, title: str = "shatterbox patching") -> str:
    """A self-contained page: the heat map(s), hover/click for a cell's patched prediction, no network."""
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title><style>{_CSS}</style>"
            f"</head><body>{patch_fragment(result, other)}<script>{_SCRIPT}</script></body></html>")


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
