"""Neurons and factors explained: excerpts coloured by activation (terminal and HTML), score histograms, the report.

Every token and explanation goes through ``html.escape``; the page has no script and loads nothing.

Examples:
    >>> from shatterbox.neurons import Excerpt
    >>> excerpt_html(Excerpt(0, ["a", "<b>"], np.array([0.0, 2.0])), 2.0)
    '<span class="sbn-ex"><span class="sbn-t" title="0">a</span> <span class="sbn-t" style="background:rgba(8,69,148,1);color:#fff" title="2">&lt;b&gt;</span></span>'
"""

from __future__ import annotations

import html
import json
import os
from typing import Sequence

import numpy as np
from rich.text import Text

from shatterbox.render.palette import HIGH
from shatterbox.trace import glue
from shatterbox.neurons import Excerpt, discretise
from shatterbox.render.terminal import shade

SCORES = ("correlation", "detection", "fuzzing")
WHO = ("explanation", "random", "shuffled", "token_lookup")
COLOURS = {"explanation": "#c03", "random": "#888", "shuffled": "#e69f00", "token_lookup": "#0072b2", "random weights": "#009e73"}

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}td.sbn-l,th.sbn-l{text-align:left}
.sbn-ex{display:block;margin:1px 0;font-size:13px}.sbn-t{padding:0 1px;border-radius:2px}
.sbn-note{color:#555;font-size:13px}.sbn-flag{color:#a00}.sbn-ci{color:#777;font-size:12px}
details summary{cursor:pointer;color:#0645ad}
"""


def excerpt_text(excerpt: Excerpt, maximum: float) -> Text:
    """The excerpt for the terminal, each token shaded by its 0–10 level (word pieces glued).

    Examples:
        >>> excerpt_text(Excerpt(0, ["bank", "##s"], np.array([1.0, 0.0])), 1.0).plain
        'banks'
    """
    levels = discretise(excerpt.activations, maximum)
    out = Text()
    for (space, token), level in zip(glue(excerpt.tokens), levels):
        out.append(space)
        out.append(token, style=shade(level / 10) if level else "")
    return out


def excerpt_marked(excerpt: Excerpt, maximum: float) -> str:
    """The excerpt as plain text for output without colour: every token at level 1 or more (of 0–10) followed by its
    activation in brackets (word pieces glued).

    Examples:
        >>> excerpt_marked(Excerpt(0, ["the", "bank", "##s"], np.array([0.0, 2.0, 0.5])), 2.0)
        'the bank[2.00]s[0.50]'
    """
    levels = discretise(excerpt.activations, maximum)
    return "".join(f"{space}{token}" + (f"[{value:.2f}]" if level else "")
                   for (space, token), level, value in zip(glue(excerpt.tokens), levels, excerpt.activations))


def excerpt_html(excerpt: Excerpt, maximum: float) -> str:
    """The excerpt as HTML: each token's background as dark as its level (0–10), its activation in the tooltip."""
    levels = discretise(excerpt.activations, maximum)
    parts = []
    for (space, token), level, value in zip(glue(excerpt.tokens), levels, excerpt.activations):
        style = f' style="background:rgba({HIGH[0]},{HIGH[1]},{HIGH[2]},{level / 10:.2g})"' if level else ""
        colour = ";color:#fff" if level >= 6 else ""
        style = style[:-1] + colour + '"' if style and colour else style
        parts.append(f'{space}<span class="sbn-t"{style} title="{float(value):.3g}">{html.escape(token)}</span>')
    return f'<span class="sbn-ex">{"".join(parts)}</span>'


def histogram_svg(values: dict[str, Sequence[float]], *, width: int = 520, height: int = 200, bins: int = 20,
                  low: float = -0.2, high: float = 1.0) -> str:
    """Overlaid histograms (step lines) of scores, one per entry of ``values`` (e.g. explanation vs random baseline).

    Examples:
        >>> svg = histogram_svg({"explanation": [0.5, 0.6], "random": [0.0, 0.1]})
        >>> svg.count("<polyline"), "explanation" in svg
        (2, True)
    """
    edges = np.linspace(low, high, bins + 1)
    counts = {k: np.histogram(np.clip(np.asarray(v, float)[np.isfinite(v)], low, high), edges)[0] for k, v in values.items()}
    top = max([c.max() for c in counts.values()] + [1])
    x = lambda v: 40 + (width - 50) * (v - low) / (high - low)  # noqa: E731
    y = lambda c: height - 30 - (height - 45) * c / top  # noqa: E731
    lines = []
    for i, (name, c) in enumerate(counts.items()):
        pts = []
        for j, n in enumerate(c):
            pts += [f"{x(edges[j]):.1f},{y(n):.1f}", f"{x(edges[j + 1]):.1f},{y(n):.1f}"]
        colour = COLOURS.get(name, "#333")
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(pts)}"/>'
                     f'<text x="{width - 10}" y="{16 + 14 * i}" font-size="11" text-anchor="end" fill="{colour}">{html.escape(name.replace("_", " "))}</text>')
    ticks = "".join(f'<text x="{x(t):.1f}" y="{height - 14}" font-size="10" text-anchor="middle">{t:g}</text>' for t in np.arange(0, high + 1e-9, 0.2))
    axis = (f'<line x1="40" y1="{height - 30}" x2="{width - 10}" y2="{height - 30}" stroke="#999"/>'
            f'<text x="40" y="{height - 2}" font-size="10">correlation score (units per bin; max {top})</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="score histogram">{axis}{ticks}{"".join(lines)}</svg>'


def histogram_png(values: dict[str, Sequence[float]], path: str | os.PathLike[str], *, title: str = "", bins: int = 24) -> str:
    """The same histograms as a PNG (matplotlib, headless); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=110)
    edges = np.linspace(-0.3, 1.0, bins + 1)
    for name, v in values.items():
        v = np.asarray(v, float)
        ax.hist(np.clip(v[np.isfinite(v)], edges[0], edges[-1]), edges, histtype="step", linewidth=2,
                color=COLOURS.get(name.split(":")[0], "#333"), linestyle="--" if ":" in name else "-", label=name.replace("_", " "))
    ax.set_xlabel("correlation of simulated with true activations (held-out excerpts)")
    ax.set_ylabel("units")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def summary(rows: Sequence[dict]) -> dict:
    """Mean of each score for the explanation and each baseline, the share flagged, and the time per unit, over the
    units that fire (dead ones are counted in ``dead``).

    Examples:
        >>> summary([{"correlation": 0.5, "random_correlation": 0.0, "flagged": False, "seconds": 0.1}])["correlation"]["explanation"]
        0.5
    """
    live = [r for r in rows if not r.get("dead")]  # dead units are counted beside the means, not in them

    def mean(key: str) -> float | None:
        v = np.array([r.get(key) for r in live if r.get(key) is not None], dtype=float)
        v = v[np.isfinite(v)]
        return round(float(v.mean()), 4) if len(v) else None

    return {"units": len(rows), "dead": len(rows) - len(live), "flagged": mean("flagged"), "seconds_per_unit": mean("seconds"),
            **{s: {w: mean(s if w == "explanation" else f"{w}_{s}") for w in WHO} for s in SCORES}}


def _score_cell(row: dict, key: str) -> str:
    v, lo, hi = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
    if v is None or not np.isfinite(v):
        return "<td>–</td>"
    ci = f'<br><span class="sbn-ci">[{lo:.2f}, {hi:.2f}]</span>' if lo is not None and np.isfinite(lo) else ""
    return f"<td>{v:.2f}{ci}</td>"


def neurons_page(record: dict, rows: Sequence[dict], *, title: str = "shatterbox neurons") -> str:
    """The report of a run (:func:`shatterbox.neurons.read_run`): summary against the baselines, histogram, and every unit
    sorted by correlation with its explanation, scores and intervals, baselines and top excerpts."""
    e = html.escape
    s = summary(rows)
    head = "".join(f"<th>{e(w.replace('_', ' '))}</th>" for w in WHO)
    means = "".join(f"<tr><td class='sbn-l'>{m}</td>" + "".join(f"<td>{'–' if s[m][w] is None else f'{s[m][w]:.3f}'}</td>" for w in WHO) + "</tr>" for m in SCORES)
    hist = histogram_svg({w: [r.get("correlation" if w == "explanation" else f"{w}_correlation") for r in rows] for w in WHO})
    settings = record.get("settings", {})
    timing = "" if s["seconds_per_unit"] is None else f"{s['seconds_per_unit']:.3f} s per unit."
    parts = [
        f"<h1>{e(title)}</h1>",
        f'<p class="sbn-note">{s["units"]} {e(record.get("kind", "unit"))}s of {e(str(record.get("store", {}).get("path")))}; explainer '
        f'{e(str(record.get("explainer")))}, simulator {e(str(record.get("simulator")))}, judge {e(str(record.get("judge")))}; '
        f'{settings.get("n_explain")} top (and as many random) excerpts to explain, scored on {settings.get("n_top")} held-out top + '
        f'{settings.get("n_random")} held-out random excerpts; 95 % bootstrap intervals over excerpts.</p>',
        f"<h2>Mean scores, explanation vs baselines</h2><table><tr><th class='sbn-l'>score</th>{head}</tr>{means}</table>",
        f'<p class="sbn-note">{0 if s["flagged"] is None else round(100 * s["flagged"])} % flagged: their correlation does not beat the shuffled '
        f'and the token-lookup baselines by {record.get("margin", 0.05)} with the paired bootstrap interval above 0. '
        f'{timing}</p>',
        hist,
        "<h2>Units</h2><table><tr><th>layer</th><th>unit</th><th class='sbn-l'>explanation</th><th>correlation</th><th>detection</th>"
        "<th>fuzzing</th><th>random</th><th>shuffled</th><th>token lookup</th><th class='sbn-l'>top excerpts</th></tr>",
    ]
    for r in rows:
        flag = f'<br><span class="sbn-flag">flagged: {e(r["reason"])}</span>' if r.get("flagged") else ""
        excerpts = json.loads(r.get("excerpts") or "[]")
        shown = "".join(excerpt_html(Excerpt(x["sentence_id"], x["tokens"], np.asarray(x["activations"], np.float32)), r["maximum"]) for x in excerpts)
        baselines = "".join(_score_cell(r, f"{w}_correlation") for w in WHO[1:])
        texts = "".join(f"<div>{e(w.replace('_', ' '))}: {e(str(r.get(w + '_explanation', '')))}</div>" for w in WHO[1:])
        parts.append(f"<tr><td>{r['layer']}</td><td>{r['unit']}</td><td class='sbn-l'>{e(r['explanation'])}{flag}"
                     f"<details><summary>baselines</summary>{texts}</details></td>"
                     f"{_score_cell(r, 'correlation')}{_score_cell(r, 'detection')}{_score_cell(r, 'fuzzing')}{baselines}<td class='sbn-l'>{shown}</td></tr>")
    parts.append("</table>")
    return f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><style>{_CSS}</style></head><body>{"".join(parts)}</body></html>'
