"""PNG heat maps (matplotlib, headless): any head statistic over layer x head, any attention table."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from shatterbox.errors import InputError

if TYPE_CHECKING:
    from shatterbox.attention import AttentionTable
    from shatterbox.heads import HeadStats


def heatmap_png(
    values: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    title: str,
    path: str | os.PathLike[str],
    *,
    xlabel: str = "",
    ylabel: str = "",
    annotate: bool = True,
) -> str:
    """Write ``values`` [rows, columns] as a labelled heat map PNG; returns the path.

    Examples:
        >>> import tempfile
        >>> p = heatmap_png(np.eye(2), ["a", "b"], ["a", "b"], "demo", os.path.join(tempfile.mkdtemp(), "x.png"))
        >>> open(p, "rb").read(4) == b"\\x89PNG"
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(values, dtype=float)
    size = (max(4.0, 0.45 * len(columns) + 2), max(3.0, 0.4 * len(rows) + 1.5))
    fig, ax = plt.subplots(figsize=size, dpi=110)
    try:
        image = ax.imshow(values, cmap="Blues", vmin=0, vmax=max(1e-12, float(np.nanmax(values))), aspect="auto")
        ax.set_xticks(range(len(columns)), labels=list(columns), rotation=60, ha="right")
        ax.set_yticks(range(len(rows)), labels=list(rows))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if annotate and values.size <= 400:
            top = float(np.nanmax(values)) or 1.0
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v > 0.6 * top else "black")
        fig.colorbar(image, ax=ax, fraction=0.04)
        fig.tight_layout()
        fig.savefig(os.fspath(path), format="png")
    finally:
        plt.close(fig)
    return os.fspath(path)


def table_png(table: "AttentionTable", path: str | os.PathLike[str]) -> str:
    """An attention table as a PNG heat map (rows attend to columns).

    Examples:
        >>> import tempfile
        >>> from shatterbox import attention_table, capture, load
        >>> t = attention_table(capture(load(), "hello world"), 1, 1)
        >>> table_png(t, os.path.join(tempfile.mkdtemp(), "t.png")).endswith("t.png")
        True
    """
    title = f"{table.model}: layer {table.layer}, head {table.head} (from 1), {table.level} level"
    return heatmap_png(table.values, table.rows, table.columns, title, path, xlabel="attended", ylabel="attending")


def stat_png(stats: "HeadStats", name: str, path: str | os.PathLike[str]) -> str:
    """One head statistic (``entropy``, ``special``, ``prev``, ...) over layer x head as a PNG.

    Examples:
        >>> import tempfile
        >>> from shatterbox import capture, load
        >>> from shatterbox.heads import head_stats
        >>> s = head_stats([capture(load(), "hello world")])
        >>> stat_png(s, "entropy", os.path.join(tempfile.mkdtemp(), "e.png")).endswith("e.png")
        True
    """
    if name not in stats.values:
        raise InputError(f"unknown statistic {name!r}: choose one of {', '.join(sorted(stats.values))}")
    layers, heads = stats.shape
    return heatmap_png(
        stats.values[name],
        [str(i) for i in range(1, layers + 1)],
        [str(i) for i in range(1, heads + 1)],
        f"{stats.model}: {name} per head over {stats.n_texts} text(s)",
        path,
        xlabel="head (from 1)",
        ylabel="layer (from 1)",
    )
