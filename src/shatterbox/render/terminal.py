"""Rich renderables for the terminal: shaded attention tables, rankings, step-by-step computation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from shatterbox.render.palette import diverging, ramp

if TYPE_CHECKING:
    from shatterbox.attention import AttentionSteps, AttentionTable, Ranking
    from shatterbox.attribution import Attribution, Comparison
    from shatterbox.heads import HeadStats



_SIXTEEN = [False]  # set by use_palette for the console that prints


def use_palette(color_system: str | None) -> None:
    """Choose cell styles for the console that prints them: on a 16-colour terminal (``TERM=xterm``)
    rich would round the shades to whatever grey is nearest, white text on light grey included, so
    there the cells use fixed pairs that stay readable.

    Examples:
        >>> use_palette("standard"); shade(0.9)
        'bold bright_white on blue'
        >>> use_palette("truecolor"); shade(0.9)
        'white on rgb(21,79,153)'
    """
    _SIXTEEN[0] = color_system in ("standard", "windows")


def shade(weight: float) -> str:
    """A rich style whose background darkens with ``weight`` in [0, 1] (square-root scale).

    Examples:
        >>> shade(0.0)
        'black on rgb(255,255,255)'
    """
    t = min(max(float(weight), 0.0), 1.0) ** 0.5
    if _SIXTEEN[0]:
        return "black on white" if t < 0.3 else "black on cyan" if t < 0.55 else "bright_white on blue" if t < 0.8 else "bold bright_white on blue"
    r, g, b, _ = ramp(weight)
    return f"{'white' if t > 0.55 else 'black'} on rgb({r},{g},{b})"


WRAP_MIN = 12  # a text column allowed to wrap keeps at least this many characters
CELL_EXTRA = 3  # characters a rich table adds per column: padding on both sides and the separator


class ColumnBlocks:
    """A table that never cuts a cell: columns keep the width of their widest cell (text columns named
    in ``wrap`` may wrap down to ``WRAP_MIN``), and when they do not fit the console the table is
    printed as several blocks of columns, the first ``keys`` columns (what a row is about) repeated in each.

    Examples:
        >>> import io
        >>> from rich.console import Console
        >>> console = Console(width=40, record=True, file=io.StringIO())
        >>> console.print(ColumnBlocks(["word", *"abcdefgh"], [["x", *(f"{i / 9:.4f}" for i in range(8))]]))
        >>> text = console.export_text()
        >>> all(f"{i / 9:.4f}" in text for i in range(8)), text.count("word") > 1
        (True, True)
    """

    def __init__(self, header: list, rows: list[list], *, title=None, caption=None, justify: list[str] | None = None,
                 wrap: tuple[int, ...] = (), first_style: str | None = None, box_style=box.SIMPLE_HEAD, keys: int = 1) -> None:
        self.header = [c if isinstance(c, Text) else Text(str(c)) for c in header]
        self.rows = [[c if isinstance(c, Text) else Text(str(c)) for c in row] for row in rows]
        self.title, self.caption, self.wrap, self.first_style, self.box = title, caption, set(wrap), first_style, box_style
        self.justify = justify or ["left"] + ["right"] * (len(header) - 1)
        self.keys = max(1, min(keys, len(self.header)))

    def _widths(self) -> list[int]:
        cells = [self.header, *self.rows]
        return [WRAP_MIN if i in self.wrap else max(row[i].cell_len for row in cells) for i in range(len(self.header))]

    def blocks(self, width: int, widths: list[int] | None = None) -> list[list[int]]:
        """Column indices of each block (the key columns are added to every block)."""
        widths, out, current = widths or self._widths(), [], []
        key_width = sum(widths[:self.keys]) + CELL_EXTRA * self.keys
        used = key_width
        for i in range(self.keys, len(widths)):
            if current and used + widths[i] + CELL_EXTRA > width:
                out.append(current)
                current, used = [], key_width
            current.append(i)
            used += widths[i] + CELL_EXTRA
        return out + ([current] if current else [])

    def __rich_console__(self, console, options):
        widths = self._widths()
        chosen = self.blocks(options.max_width, widths)
        for n, block in enumerate(chosen):
            last = n == len(chosen) - 1
            grid = Table(title=self.title if n == 0 else None, caption=self.caption if last else None, box=self.box, pad_edge=False)
            keys = list(range(self.keys))
            for i in [*keys, *block]:
                wraps = i in self.wrap
                grid.add_column(self.header[i], justify=self.justify[i], no_wrap=not wraps, min_width=widths[i],
                                overflow="fold", style=self.first_style if i == 0 else None)
            for row in self.rows:
                grid.add_row(*(row[i] for i in [*keys, *block]))
            yield grid


def _title(kind: str, obj) -> str:
    return f"{kind} - model {obj.model}, layer {obj.layer}, head {obj.head} (numbered from 1)"


def table_renderable(table: "AttentionTable") -> Group:
    """The probability table with every cell shaded by its weight (in column blocks when it is wider than the console)."""
    rows = [[Text(label), *(Text(f"{x:.3f}", style=shade(x)) for x in row)] for label, row in zip(table.rows, table.values)]
    return Group(ColumnBlocks(["attending \\ attended", *(Text(c) for c in table.columns)], rows,
                              title=Text(_title("attention", table)), caption=Text(table.note), first_style="bold"))


def ranking_renderable(ranking: "Ranking") -> Table:
    """The ranked list of what one word attends to."""
    grid = Table(title=Text(f"{ranking.word!r} attends to - " + _title("ranking", ranking)[10:]), box=box.SIMPLE_HEAD)
    grid.add_column("#", justify="right")
    grid.add_column(ranking.level)
    grid.add_column("weight", justify="right")
    for rank, (label, weight) in enumerate(ranking.items, 1):
        grid.add_row(str(rank), Text(label), Text(f"{weight:.4f}", style=shade(weight)))
    return grid


def steps_renderable(steps: "AttentionSteps") -> Group:
    """softmax(q . k / sqrt(d_k)) for one query token, each step a column, checked against the model."""
    header = Text(
        f"query token {steps.query_label!r} (index {steps.query_index}); d_k = {steps.d_k}, "
        f"scaling = {steps.scaling:.6g}" + (" = 1/sqrt(d_k)" if abs(steps.scaling * steps.d_k**0.5 - 1) < 1e-6 else "")
        + (f", then soft-capped: {steps.softcap:g} * tanh(x / {steps.softcap:g})" if steps.softcap else "")
    )
    grid = Table(title=Text(_title("attention step by step", steps)), box=box.SIMPLE_HEAD)
    for name in ("key token", "q . k", "x scaling", "softmax", "model", "|diff|"):
        grid.add_column(name, justify="left" if name == "key token" else "right")
    for label, d, s, b, p, m in zip(
        steps.key_labels, steps.dots, steps.scaled, steps.blocked, steps.probs, steps.model_probs
    ):
        grid.add_row(
            Text(label), f"{d:.4f}", "masked" if b else f"{s:.4f}", Text(f"{p:.5f}", style=shade(p)), f"{m:.5f}", f"{abs(p - m):.1e}"
        )
    verdict = "matches" if steps.max_abs_diff <= 1e-5 else "DOES NOT match"
    footer = Text(f"max |softmax - model| = {steps.max_abs_diff:.2e}: our computation {verdict} the model's attention")
    return Group(header, grid, footer)


def heads_renderable(stats: "HeadStats", top: int | None = None) -> Group:
    """The ranked heads worth inspecting, then how many heads are of each kind."""
    rows = [[str(i), str(r.layer), str(r.head), r.kind, f"{r.score:.3f}", Text(r.reason)] for i, r in enumerate(stats.ranking(top), 1)]
    grid = ColumnBlocks(["#", "layer", "head", "kind", "score", "why"], rows, wrap=(3, 5), box_style=box.HEAVY_HEAD,
                        title=Text(f"heads worth inspecting - model {stats.model}, {stats.n_texts} text(s)"),
                        justify=["right", "right", "right", "left", "right", "left"])
    summary = stats.summary()
    total = sum(summary.values())
    counts = Text("; ".join(f"{count} of {total} heads {kind}" for kind, count in sorted(summary.items())))
    return Group(grid, counts)


def _word_style(value: float, scale: float) -> str:
    r, g, b, alpha = diverging(value / scale)
    if _SIXTEEN[0]:
        if alpha < 0.15:
            return "default"
        warm = value > 0
        return ("bright_white on red" if warm else "bright_white on blue") if alpha > 0.6 else ("black on bright_red" if warm else "black on cyan")
    mix = [round(255 + (c - 255) * alpha) for c in (r, g, b)]
    return f"{'white' if alpha > 0.6 else 'black'} on rgb({mix[0]},{mix[1]},{mix[2]})"


def word_values_text(words: list[str], values: list[float], marked: list[int] = ()) -> Text:
    """Words coloured by their values like the single-text plot (red up, blue down, scaled to the largest |value|);
    the words at ``marked`` positions underlined.

    Examples:
        >>> word_values_text(["a", "good", "film"], [0.0, 0.5, -0.1], [1]).plain
        'a good film'
    """
    scale = max((abs(v) for v in values), default=0.0) or 1.0
    out = Text()
    for i, (word, value) in enumerate(zip(words, values)):
        if i:
            out.append(" ")
        out.append(word, style=_word_style(value, scale) + (" underline" if i in marked else ""))
    return out


def attribution_renderable(a: "Attribution", *, max_rows: int = 25) -> Group:
    """Coloured words (red up, blue down for the explained label), the largest values, faithfulness.

    Examples:
        >>> from rich.console import Console
        >>> from shatterbox.attribution import chapter_game, explain
        >>> import io
        >>> console = Console(width=100, record=True, file=io.StringIO())
        >>> console.print(attribution_renderable(explain(chapter_game())))
        >>> "love      +0.8750" in console.export_text()
        True
    """
    column = a.values[:, a.label]
    scale = float(np.max(np.abs(a.values))) or 1.0
    words = Text()
    for i, word in enumerate(a.words):
        words.append(word, style=_word_style(column[i], scale))
        words.append(" ")
    head = Text(
        f"{a.title} - {a.model}: {a.label_name} {a.prediction[a.label]:.3f} "
        f"(every word masked: {a.base[a.label]:.3f}); {a.evaluations:,} model evaluations, {a.seconds:.3f} s, "
        f"masking: {a.masking}",
        style="bold",
    )
    grid = Table(box=box.SIMPLE_HEAD, pad_edge=False, caption=f"values for {a.label_name!r} in {a.units}")
    grid.add_column("word", no_wrap=True)
    grid.add_column("value", justify="right")
    if a.error is not None:
        grid.add_column("± 95%", justify="right")
    order = np.argsort(-np.abs(column), kind="stable")[:max_rows]
    for i in order:
        cells = [Text(a.words[i], style=_word_style(column[i], scale)), f"{column[i]:+.4f}"]
        if a.error is not None:
            cells.append(f"{a.error[i, a.label]:.4f}")
        grid.add_row(*cells)
    parts: list = [head, words, grid]
    f = a.faithfulness
    if f is not None:
        parts.append(Text(
            f"faithfulness: comprehensiveness {f.comprehensiveness:.3f} (higher is better), sufficiency "
            f"{f.sufficiency:.3f} (lower is better), AOPC deletion {f.aopc_deletion:.3f}, insertion {f.aopc_insertion:.3f}"
        ))
    parts.extend(Text(note, style="dim") for note in a.notes)
    return Group(*parts)


def comparison_renderable(comparison: "Comparison") -> "ColumnBlocks":
    """One row per method: top words, faithfulness scores, model evaluations, seconds.

    Examples:
        >>> from rich.console import Console
        >>> from shatterbox.attribution import chapter_game, explain
        >>> import io
        >>> console = Console(width=120, record=True, file=io.StringIO())
        >>> console.print(comparison_renderable(explain(chapter_game(), method="all")))
        >>> "owen" in console.export_text()
        True
    """
    from shatterbox.attribution import MASKING_BIAS

    first = comparison.attributions[0]
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    rows = [[row["method"], ", ".join(row["top"]), fmt(row["comprehensiveness"]), fmt(row["sufficiency"]), fmt(row["aopc_deletion"]),
             fmt(row["aopc_insertion"]), f"{row['evaluations']:,}", f"{row['seconds']:.3f}"] for row in comparison.rows()]
    return ColumnBlocks(
        ["method", "top words", "compr.", "suff.", "AOPC del", "AOPC ins", "model evals", "seconds"], rows, wrap=(1,),
        justify=["left", "left", *["right"] * 6],
        title=f"{first.model}: {first.label_name} {first.prediction[first.label]:.3f} - every method on the same text",
        caption="comprehensiveness and AOPC: higher is better; sufficiency: lower is better; " + MASKING_BIAS,
    )
