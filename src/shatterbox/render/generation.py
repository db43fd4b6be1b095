"""The prompt x generated-token heat map: in the terminal (rich), as an HTML fragment (notebooks, the web app)
and as a self-contained page. Colours are the single-text plot's (red raised the token, blue lowered it),
scaled to the largest |value| of the whole map; every token is escaped.

Examples:
    >>> import numpy as np
    >>> from shatterbox.generation import GenerationExplanation
    >>> e = GenerationExplanation("m", "a <b>", " c", ["a", "<b>"], ["c"], np.array([[0.2, -0.1]]), np.zeros(1),
    ...                           np.zeros(1), "exact", 4, 0.0, 2)
    >>> "&lt;b&gt;" in generation_fragment(e) and "<b>" not in generation_fragment(e)
    True
"""

from __future__ import annotations

import html
import os  # noqa: F401 - the doctests print to os.devnull
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from shatterbox.render.palette import MISSING, diverging

if TYPE_CHECKING:
    from shatterbox.generation import GenerationExplanation


def map_scale(values: np.ndarray) -> float:
    """The largest |value| of the map (1 where every value is 0 or NaN): colours are value / scale.

    Examples:
        >>> map_scale(np.array([[0.5, np.nan], [-2.0, 0.1]]))
        2.0
    """
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def cell_colour(value: float, scale: float) -> str:
    """CSS background of one cell: the diverging colour of ``value / scale``; NaN (not read) is grey.

    Examples:
        >>> cell_colour(1.0, 2.0), cell_colour(float("nan"), 1.0)
        ('rgba(255,0,81,0.5)', '#eee')
    """
    if not np.isfinite(value):
        return MISSING
    r, g, b, a = diverging(value / scale)
    return f"rgba({r},{g},{b},{a})"


def _display(token: str) -> str:
    return token.replace("\u2581", " ").replace("\u0120", " ").strip() or token


def _cell_text(e: "GenerationExplanation", t: int, j: int) -> str:
    v = e.values[t, j]
    if not np.isfinite(v):
        return ""
    err = None if e.error is None else e.error[t, j]
    return f"{v:+.2f}" + (f"±{err:.2f}" if err is not None and np.isfinite(err) else "")


def generation_renderable(e: "GenerationExplanation") -> Group:
    """A rich table: one row per generated token, one column per source; faithfulness at the end of each row.

    Examples:
        >>> from rich.console import Console
        >>> import numpy as np
        >>> from shatterbox.generation import GenerationExplanation
        >>> e = GenerationExplanation("m", "a b", " c", ["a", "b"], ["c"], np.array([[0.2, -0.1]]), np.zeros(1), np.zeros(1), "exact", 4, 0.0, 2)
        >>> c = Console(record=True, width=100, file=open(os.devnull, "w"))
        >>> c.print(generation_renderable(e)); "+0.20" in c.export_text()
        True
    """
    from shatterbox.render.terminal import _word_style

    scale = map_scale(e.values)
    title = f"{e.model}: why each generated token ({e.method}, {e.units})"
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("generated", style="bold")
    for j, source in enumerate(e.sources):
        table.add_column(_display(source.split(" (generated")[0]) + ("*" if j >= e.n_prompt_words else ""), justify="right")
    table.add_column("log p", justify="right")
    if e.faithfulness:
        table.add_column("compr.", justify="right")
    for t, target in enumerate(e.targets):
        label = _display(target) + (f" vs {_display(e.contrast[t])}" if e.contrast else "")
        cells = [Text(_cell_text(e, t, j), style=_word_style(e.values[t, j], scale) if np.isfinite(e.values[t, j]) else "dim")
                 for j in range(len(e.sources))]
        row = [Text(label), *cells, Text(f"{e.full[t]:.2f}")]
        if e.faithfulness:
            row.append(Text(f"{e.faithfulness[t].comprehensiveness:.2f}"))
        table.add_row(*row)
    notes = [f"prompt: {e.prompt!r}  continuation: {e.continuation!r}",
             "* generated earlier; empty cells: the token cannot read that source (it comes later)",
             f"{e.evaluations:,} forward passes, {e.seconds:.2f} s", *e.notes]
    return Group(table, Text("\n".join(notes), style="dim"))


def generation_fragment(e: "GenerationExplanation") -> str:
    """An HTML ``<div>`` with the heat map (rows: generated tokens; columns: sources), for notebooks and the web app."""
    scale = map_scale(e.values)
    esc = html.escape
    head = "".join(
        f'<th class="sbg-src{" sbg-gen" if j >= e.n_prompt_words else ""}">{esc(_display(s.split(" (generated")[0]))}</th>'
        for j, s in enumerate(e.sources)
    )
    rows = []
    for t, target in enumerate(e.targets):
        label = esc(_display(target)) + (f' <span class="sbg-vs">vs {esc(_display(e.contrast[t]))}</span>' if e.contrast else "")
        cells = "".join(
            f'<td style="background:{cell_colour(e.values[t, j], scale)}" data-value="'
            f'{"" if not np.isfinite(e.values[t, j]) else repr(float(e.values[t, j]))}" title="{esc(_cell_text(e, t, j))}">'
            f"{esc(_cell_text(e, t, j).split('±')[0])}</td>"
            for j in range(len(e.sources))
        )
        faith = f"<td>{e.faithfulness[t].comprehensiveness:.2f}</td>" if e.faithfulness else ""
        rows.append(f'<tr><th class="sbg-target">{label}</th>{cells}<td>{e.full[t]:.2f}</td>{faith}</tr>')
    faith_head = "<th>comprehensiveness</th>" if e.faithfulness else ""
    notes = "".join(f"<li>{esc(n)}</li>" for n in e.notes)
    return (
        '<div class="sbg"><style>.sbg table{border-collapse:collapse;font:13px system-ui,sans-serif}'
        ".sbg td,.sbg th{border:1px solid #ddd;padding:3px 6px;text-align:right}.sbg .sbg-gen{font-style:italic;color:#555}"
        ".sbg .sbg-target{text-align:left}.sbg .sbg-vs{color:#777;font-weight:normal}.sbg p,.sbg ul{font:12px system-ui,sans-serif;color:#444}</style>"
        f"<p><strong>{esc(e.model)}</strong> - why each generated token ({esc(e.method)}, {esc(e.units)}). "
        f"Prompt: <q>{esc(e.prompt)}</q> continuation: <q>{esc(e.continuation)}</q></p>"
        f'<table class="sbg-map"><tr><th>generated \\ source</th>{head}<th>log p</th>{faith_head}</tr>{"".join(rows)}</table>'
        f"<p>Red raised the token's log-probability, blue lowered it (scale ±{scale:.2f}); italic sources were generated "
        f"earlier; grey cells come after the token. {e.evaluations:,} forward passes, {e.seconds:.2f} s.</p>"
        f"<ul>{notes}</ul></div>"
    )


def generation_page(e: "GenerationExplanation") -> str:
    """A self-contained HTML page (no network) with the heat map."""
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>shatterbox - '
            + html.escape(e.model) + " generation</title></head><body>" + generation_fragment(e) + "</body></html>")
