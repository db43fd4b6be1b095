"""The prompt x generated-token heat map in the terminal (rich). Colours are the single-text plot's (red raised
the token, blue lowered it), scaled to the largest |value| of the whole map. The HTML drawing of the same map is
``assets/plots.js`` (see :mod:`shatterbox.render.plots`); :func:`cell_colour` is the colour it must give each cell.
"""

from __future__ import annotations

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


def display_token(token: str) -> str:
    """A token as a reader sees it: SentencePiece's ▁ and byte-level BPE's Ġ as spaces, trimmed (the token itself when
    nothing else is left).

    Examples:
        >>> display_token("\u2581Paris"), display_token("\u2581")
        ('Paris', '▁')
    """
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
        table.add_column(display_token(source.split(" (generated")[0]) + ("*" if j >= e.n_prompt_words else ""), justify="right")
    table.add_column("log p", justify="right")
    if e.faithfulness:
        table.add_column("compr.", justify="right")
    for t, target in enumerate(e.targets):
        label = display_token(target) + (f" vs {display_token(e.contrast[t])}" if e.contrast else "")
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
