"""Text plots of attributions: each word coloured by its value (red pushes the label up, blue down).

Everything is escaped; the page is self-contained (inline CSS, a few lines of JS to switch label).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Sequence

import numpy as np

from shatterbox.render.palette import css_variables, diverging

if TYPE_CHECKING:
    from shatterbox.attribution import Attribution, Comparison


_CSS = """
.sbx{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:60rem}
.sbx h3{font-size:1rem;margin:1.2rem 0 .3rem}
.sbx-text{font-size:1.15rem;line-height:2.1rem;margin:.3rem 0}
.sbx-w{padding:.15rem .2rem;border-radius:.2rem;margin:0 .05rem;white-space:pre-wrap}
.sbx-meta,.sbx-note{color:#555;font-size:.85rem;margin:.2rem 0}
.sbx table{border-collapse:collapse;font-size:.85rem;margin:.4rem 0}
.sbx td,.sbx th{padding:.15rem .5rem;border-bottom:1px solid #ddd;text-align:right}
.sbx td:first-child,.sbx th:first-child,.sbx-compare td:nth-child(2),.sbx-compare th:nth-child(2){text-align:left}
.sbx button{font:inherit;font-size:.8rem;margin-right:.3rem;border:1px solid #999;background:#fff;border-radius:.2rem;cursor:pointer}
.sbx button[aria-pressed=true]{background:#333;color:#fff}
.sbx svg{vertical-align:middle}
.sbx-legend{display:flex;align-items:center;gap:.4rem;font-size:.8rem;color:#555;margin:.2rem 0}
.sbx-legend i{display:inline-block;width:12rem;height:.7rem;border:1px solid #ccc;background:linear-gradient(90deg,var(--sb-down),#fff,var(--sb-up))}
"""

_JS = """
document.querySelectorAll('.sbx-attr').forEach(function(sec){
  sec.querySelectorAll('button[data-label]').forEach(function(btn){
    btn.addEventListener('click', function(){
      var want = btn.getAttribute('data-label');
      sec.querySelectorAll('.sbx-text, .sbx-meta').forEach(function(p){ p.hidden = p.getAttribute('data-label') !== want; });
      sec.querySelectorAll('button[data-label]').forEach(function(b){ b.setAttribute('aria-pressed', String(b === btn)); });
    });
  });
});
"""


def _scale(values: np.ndarray) -> float:
    top = float(np.max(np.abs(values))) if values.size else 0.0
    return top if top > 0 else 1.0


def _words_html(a: "Attribution", label: int) -> str:
    column = a.values[:, label]
    scale = _scale(a.values)
    spans = []
    for i, (word, value) in enumerate(zip(a.words, column)):
        r, g, b, alpha = diverging(value / scale)
        err = "" if a.error is None else f" ± {a.error[i, label]:.4f}"
        tip = html.escape(f"{word}: {value:+.4f}{err}", quote=True)
        spans.append(f'<span class="sbx-w" style="background:rgba({r},{g},{b},{alpha})" title="{tip}">{html.escape(word)}</span>')
    return " ".join(spans)


def legend_html(a: "Attribution") -> str:
    """The colour scale of the word plot: full blue at −max|value|, white at 0, full red at +max|value|.

    Examples:
        >>> from shatterbox.attribution import ValueGame, explain
        >>> "+2.000" in legend_html(explain(ValueGame(["a", "b"], lambda m: m @ np.array([2.0, -1.0]))))
        True
    """
    scale = _scale(a.values)
    return (f'<p class="sbx-legend" data-scale="{scale:.6g}"><span>{-scale:+.3f}</span><i></i><span>{scale:+.3f}</span>'
            f"<span>{html.escape(a.units)}: red pushes the label up, blue down</span></p>")


def _curve_svg(curve: np.ndarray, colour: str) -> str:
    """A small polyline of a deletion/insertion curve (k words on x, probability on y)."""
    n = max(len(curve) - 1, 1)
    points = " ".join(f"{100 * k / n:.1f},{30 - 28 * float(min(max(y, 0.0), 1.0)):.1f}" for k, y in enumerate(curve))
    return (
        f'<svg width="100" height="32" viewBox="0 0 100 32" role="img"><polyline fill="none" stroke="{colour}" '
        f'stroke-width="1.5" points="{points}"/></svg>'
    )


def _faithfulness_html(a: "Attribution") -> str:
    f = a.faithfulness
    if f is None:
        return ""
    return (
        "<table><tr><th>comprehensiveness ↑</th><th>sufficiency ↓</th><th>AOPC deletion ↑</th>"
        "<th>AOPC insertion ↑</th><th>deletion curve</th><th>insertion curve</th></tr>"
        f"<tr><td>{f.comprehensiveness:.3f}</td><td>{f.sufficiency:.3f}</td><td>{f.aopc_deletion:.3f}</td>"
        f"<td>{f.aopc_insertion:.3f}</td><td>{_curve_svg(f.deletion, '#c03')}</td><td>{_curve_svg(f.insertion, '#06c')}</td></tr></table>"
    )


def _section(a: "Attribution") -> str:
    e = html.escape
    buttons = ""
    if len(a.labels) > 1:
        buttons = "<div>" + "".join(
            f'<button type="button" data-label="{c}" aria-pressed="{str(c == a.label).lower()}">{e(name)} {a.prediction[c]:.3f}</button>'
            for c, name in enumerate(a.labels)
        ) + "</div>"
    texts = "".join(
        f'<p class="sbx-text" data-label="{c}"{"" if c == a.label else " hidden"}>{_words_html(a, c)}</p>'
        for c in range(len(a.labels))
    )
    meta = "".join(  # one line per label, shown with its words
        f'<p class="sbx-meta" data-label="{c}"{"" if c == a.label else " hidden"}>'
        f"{e(a.labels[c])}: {a.prediction[c]:.3f} for the text, {a.base[c]:.3f} with every word masked · "
        f"{a.evaluations:,} model evaluations · {a.seconds:.3f} s · masking: {e(a.masking)} · units: {e(a.units)}</p>"
        for c in range(len(a.labels))
    )
    notes = "".join(f'<p class="sbx-note">{e(n)}</p>' for n in a.notes)
    return (
        f'<section class="sbx-attr" data-method="{e(a.method)}"><h3>{e(a.title)} — {e(a.model)}</h3>{buttons}{texts}'
        f'{legend_html(a)}{meta}{_faithfulness_html(a)}{notes}</section>'
    )


def _table_html(rows: Sequence[dict]) -> str:
    from shatterbox.attribution import MASKING_BIAS

    e = html.escape

    def num(x, fmt):
        return "–" if x is None else format(x, fmt)

    body = "".join(
        f"<tr><td>{e(r['method'])}</td><td>{e(', '.join(r['top']))}</td><td>{num(r['comprehensiveness'], '.3f')}</td>"
        f"<td>{num(r['sufficiency'], '.3f')}</td><td>{num(r['aopc_deletion'], '.3f')}</td><td>{num(r['aopc_insertion'], '.3f')}</td>"
        f"<td>{r['evaluations']:,}</td><td>{r['seconds']:.3f}</td></tr>"
        for r in rows
    )
    return (
        f'<table class="sbx-compare"><caption>{e(MASKING_BIAS)}</caption><tr><th>method</th><th>top words</th><th>comprehensiveness ↑</th><th>sufficiency ↓</th>'
        f"<th>AOPC deletion ↑</th><th>AOPC insertion ↑</th><th>model evaluations</th><th>seconds</th></tr>{body}</table>"
    )


def attribution_fragment(attributions: Sequence["Attribution"], *, table: Sequence[dict] | None = None) -> str:
    """An HTML fragment (for notebooks and the web app): optional comparison table, then each text plot.

    Examples:
        >>> from shatterbox.attribution import ValueGame, explain
        >>> a = explain(ValueGame(["<b>", "x"], lambda m: m @ np.array([1.0, -1.0])))
        >>> "&lt;b&gt;" in attribution_fragment([a]) and "<b>" not in attribution_fragment([a])
        True
    """
    attributions = _listed(attributions)
    parts = [_table_html(table)] if table else []
    parts.extend(_section(a) for a in attributions)
    return f'<div class="sbx"><style>{css_variables()}{_CSS}</style>{"".join(parts)}<script>{_JS}</script></div>'


def attribution_page(attributions: Sequence["Attribution"], *, table: Sequence[dict] | None = None) -> str:
    """A self-contained HTML page around :func:`attribution_fragment`.

    Examples:
        >>> from shatterbox.attribution import chapter_game, explain
        >>> attribution_page([explain(chapter_game())]).startswith("<!doctype html>")
        True
    """
    attributions = _listed(attributions)
    text = next((a.text for a in attributions if a.text), "attribution")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>shatterbox · {html.escape(text[:80])}</title>'
        f"</head><body>{attribution_fragment(attributions, table=table)}</body></html>"
    )


def _listed(attributions) -> list:
    """One attribution or several, as a list."""
    return list(attributions) if isinstance(attributions, (list, tuple)) else [attributions]


def comparison_fragment(comparison: "Comparison") -> str:
    """The comparison table, then each method's text plot, as an HTML fragment."""
    return attribution_fragment(comparison.attributions, table=comparison.rows())


def comparison_page(comparison: "Comparison") -> str:
    """One page: the comparison table, then each method's text plot."""
    return attribution_page(comparison.attributions, table=comparison.rows())
