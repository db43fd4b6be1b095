"""Probe curves over layers: accuracy, control accuracy and selectivity, each with its 95 % interval,
and the same curves of the random-weight model dashed; a self-contained page of them with the numbers.

Examples:
    >>> from shatterbox.probes import LayerScore, ProbeResult
    >>> s = [LayerScore(l, 0.5 + 0.1 * l, 0.02, 0.4, 0.02, 0.1 * l + 0.1, 0.03, [], []) for l in range(3)]
    >>> r = ProbeResult("pos", "token", "linear", 100, 4, 0.4, 0.3, s, 1.0, "default")
    >>> svg = probe_svg(r)
    >>> svg.count("<polyline"), "selectivity" in svg
    (3, True)
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from shatterbox.probes import ProbeResult

CURVES = (("accuracy", "accuracy_ci", "#1f5fbf"), ("control", "control_ci", "#888888"), ("selectivity", "selectivity_ci", "#c0392b"))

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:1.2rem;max-width:64rem}
h2{font-size:1.1rem;margin:1.4rem 0 .3rem} p{margin:.3rem 0;color:#444;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} td,th{padding:.15rem .5rem;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left} svg text{font-size:11px;fill:#333}
tr.weak td{color:#8a5a00;background:#fff8e1} td:last-child{text-align:left}
"""


def _x(i: int, n: int, width: int) -> float:
    return 48 + (width - 64) * i / max(n - 1, 1)


def _y(v: float, height: int) -> float:
    return 12 + (height - 44) * (1 - max(-0.1, min(1.0, v)))


def probe_svg(result: "ProbeResult", control: "ProbeResult | None" = None, *, width: int = 420, height: int = 240) -> str:
    """Accuracy, control accuracy and selectivity of ``result`` by layer (solid, with 95 % bars), and of
    ``control`` (the random-weight model, dashed), on one 0–1 axis."""
    layers = [s.layer for s in result.layers]
    n = len(layers)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(result.property)} probe by layer">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick, height)
        parts.append(f'<line x1="44" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/><text x="38" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for i, layer in enumerate(layers):
        parts.append(f'<text x="{_x(i, n, width):.1f}" y="{height - 18}" text-anchor="middle">{layer}</text>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height - 3}" text-anchor="middle">layer</text>')
    for source, dash in ((control, ' stroke-dasharray="5 4"'), (result, "")):
        if source is None:
            continue
        for name, ci, colour in CURVES:
            values = [getattr(s, name) for s in source.layers]
            points = " ".join(f"{_x(i, n, width):.1f},{_y(v, height):.1f}" for i, v in enumerate(values))
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{points}" data-curve="{name}"/>')
            for i, s in enumerate(source.layers):
                half = getattr(s, ci)
                if half == half:  # not NaN
                    x = _x(i, n, width)
                    parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_y(getattr(s, name) - half, height):.1f}" '
                                 f'y2="{_y(getattr(s, name) + half, height):.1f}" stroke="{colour}" stroke-width="1"/>')
    legend = [(name, colour) for name, _, colour in CURVES]
    for k, (name, colour) in enumerate(legend):
        parts.append(f'<text x="{56 + 96 * k}" y="24" fill="{colour}" style="fill:{colour}">— {name}</text>')
    if control is not None:
        parts.append(f'<text x="{width - 14}" y="40" text-anchor="end">dashed: random weights</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(result: "ProbeResult", control: "ProbeResult | None") -> str:
    head = "<tr><th>layer</th><th>accuracy</th><th>control</th><th>selectivity</th><th>over majority or control</th>"
    head += "<th>random weights: accuracy</th><th>selectivity</th>" if control else ""
    head += "<th>flag or note</th></tr>"
    rows = []
    for i, s in enumerate(result.layers):
        cells = [f"{s.layer}", f"{s.accuracy:.3f} ± {s.accuracy_ci:.3f}", f"{s.control:.3f} ± {s.control_ci:.3f}",
                 f"{s.selectivity:.3f} ± {s.selectivity_ci:.3f}", f"{s.over_baseline:+.3f}"]
        if control is not None:
            c = control.layers[i]
            cells += [f"{c.accuracy:.3f} ± {c.accuracy_ci:.3f}", f"{c.selectivity:.3f} ± {c.selectivity_ci:.3f}"]
        cells.append(s.flag or s.note)
        weak = ' class="weak"' if s.flag else ""  # flagged: never shown as an ordinary result
        rows.append(f"<tr{weak}>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def probes_page(pairs: Sequence[tuple["ProbeResult", "ProbeResult | None"]], *, title: str = "shatterbox probes") -> str:
    """A self-contained page: per probe, what it measured, its plot and its table (± = 95 % interval over folds).

    Examples:
        >>> from shatterbox.probes import LayerScore, ProbeResult
        >>> r = ProbeResult("pos", "token", "linear", 100, 4, 0.4, 0.3, [LayerScore(1, .9, .01, .5, .02, .4, .02, [], [])], 1.0, "m<x>")
        >>> "m&lt;x&gt;" in probes_page([(r, None)])
        True
    """
    sections = []
    for result, control in pairs:
        e = html.escape
        sections.append(
            f"<h2>{e(result.property)} ({e(result.level)} level) — {e(result.kind)} probe — {e(result.model)}</h2>"
            f"<p>{result.n_examples:,} examples, {result.n_classes} classes; always answering the most frequent class: {result.majority:.3f}; "
            f"control labels agree with the task on {result.chance_control:.3f} of examples; {result.seconds:.0f} s"
            + (f"; rare classes left out: {len(result.dropped)}" if result.dropped else "") + "</p>"
            + probe_svg(result, control) + _table(result, control)
        )
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>'
            f"<body><h1>{html.escape(title)}</h1><p>Accuracy of a probe trained on each layer, accuracy on the control task (one random label "
            "per word type, Hewitt &amp; Liang 2019) and their difference, selectivity; dashed: the same architecture with random weights.</p>"
            + "".join(sections) + "</body></html>")
