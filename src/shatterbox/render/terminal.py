"""Rich renderables for the terminal: shaded attention tables, rankings, step-by-step computation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from shatterbox.attention import AttentionSteps, AttentionTable, Ranking
    from shatterbox.heads import HeadStats

_LOW = (255, 255, 255)
_HIGH = (8, 69, 148)


def shade(weight: float) -> str:
    """A rich style whose background darkens with ``weight`` in [0, 1] (square-root scale).

    Example:
        >>> shade(0.0)
        'black on rgb(255,255,255)'
    """
    t = min(max(float(weight), 0.0), 1.0) ** 0.5
    r, g, b = (round(lo + (hi - lo) * t) for lo, hi in zip(_LOW, _HIGH))
    return f"{'white' if t > 0.55 else 'black'} on rgb({r},{g},{b})"


def _title(kind: str, obj) -> str:
    return f"{kind} - model {obj.model}, layer {obj.layer}, head {obj.head} (numbered from 1)"


def table_renderable(table: "AttentionTable") -> Group:
    """The probability table with every cell shaded by its weight."""
    grid = Table(title=Text(_title("attention", table)), box=box.SIMPLE_HEAD, caption=Text(table.note), pad_edge=False)
    grid.add_column("attending \\ attended", style="bold", no_wrap=True)
    for label in table.columns:
        grid.add_column(Text(label), justify="right", no_wrap=True)
    for label, row in zip(table.rows, table.values):
        grid.add_row(Text(label), *(Text(f"{x:.3f}", style=shade(x)) for x in row))
    return Group(grid)


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
    grid = Table(title=Text(f"heads worth inspecting - model {stats.model}, {stats.n_texts} text(s)"))
    for col in ("#", "layer", "head", "kind", "score", "why"):
        grid.add_column(col)
    for i, r in enumerate(stats.ranking(top), 1):
        grid.add_row(str(i), str(r.layer), str(r.head), r.kind, f"{r.score:.3f}", Text(r.reason))
    summary = stats.summary()
    total = sum(summary.values())
    counts = Text("; ".join(f"{count} of {total} heads {kind}" for kind, count in sorted(summary.items())))
    return Group(grid, counts)
