"""The corpus attribution report: per label, bar charts of the words that push it up and down (mean effect per text
with its 95 % interval), drill-down to the texts where each word mattered most (coloured like the single-text plot),
words that flip sign, the least faithful texts, and what was skipped. No script; every word escaped.

Examples:
    >>> from shatterbox.global_attribution import explain_corpus, word_table
    >>> run = explain_corpus(["I loved the film.", "I hated the film."])
    >>> page = corpus_page(run, word_table(run), min_count=1)
    >>> page.startswith("<!doctype html>") and "<script" not in page
    True
"""

from __future__ import annotations

import html
from typing import Sequence

import pyarrow as pa

from shatterbox.options import RANKING

from shatterbox.render.palette import diverging

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.note{color:#555;font-size:13px}
.sbg-w{padding:0 2px;border-radius:2px}.sbg-hit{text-decoration:underline;font-weight:600}
details{margin:2px 0}summary{cursor:pointer}.sbg-text{margin:2px 0 2px 16px;font-size:13px}
.sbg-charts{display:flex;flex-wrap:wrap;gap:24px}
"""


def bars_svg(rows: Sequence[dict], *, width: int = 460, row_height: int = 18) -> str:
    """Horizontal bars of ``mean`` with ``low``–``high`` whiskers, one per row, on a shared zero line.

    Examples:
        >>> svg = bars_svg([{"word": "good", "mean": 0.2, "low": 0.1, "high": 0.3}, {"word": "<b>", "mean": -0.1, "low": -0.2, "high": 0.0}])
        >>> svg.count("<rect"), "&lt;b&gt;" in svg
        (2, True)
        >>> "nan" in bars_svg([{"word": "once", "mean": -0.3, "low": float("nan"), "high": float("nan")}])
        False
    """
    if not rows:
        return '<p class="note">no word in enough texts</p>'
    finite = [abs(v) for r in rows for v in (r["low"], r["high"], r["mean"]) if v == v]  # an interval of one text is NaN
    span = max(finite, default=0.0) or 1.0
    label_w, height = 120, row_height * len(rows) + 22
    zero = label_w + (width - label_w - 10) / 2
    scale = (width - label_w - 10) / 2 / span
    parts = [f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height - 18}" stroke="#999"/>']
    for i, r in enumerate(rows):
        y = i * row_height + 2
        x0, x1 = sorted((zero, zero + r["mean"] * scale))
        red, green, blue, _ = diverging(1.0 if r["mean"] >= 0 else -1.0)
        parts.append(f'<text x="{label_w - 4}" y="{y + 12}" font-size="11" text-anchor="end">{html.escape(str(r["word"]))}</text>'
                     f'<rect x="{x0:.1f}" y="{y + 2}" width="{max(x1 - x0, 0.5):.1f}" height="{row_height - 6}" fill="rgb({red},{green},{blue})" opacity="0.75">'
                     f'<title>{html.escape(str(r["word"]))}: {r["mean"]:+.4f}{_interval(r)}</title></rect>')
        if r["low"] == r["low"] and r["high"] == r["high"]:
            parts.append(f'<line x1="{zero + r["low"] * scale:.1f}" y1="{y + row_height / 2}" x2="{zero + r["high"] * scale:.1f}" y2="{y + row_height / 2}" stroke="#222"/>')
    parts.append(f'<text x="{zero:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">0 (±{span:.3f} at the edges)</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="mean effect per text">{"".join(parts)}</svg>'


def _interval(r: dict) -> str:
    return f" [{r['low']:+.4f}, {r['high']:+.4f}]" if r["low"] == r["low"] and r["high"] == r["high"] else " (one text: no interval)"


def words_html(words: Sequence[str], values: Sequence[float], marked: Sequence[int] = ()) -> str:
    """A text with each word's background coloured by its value (red up, blue down), the ``marked`` words underlined."""
    scale = max((abs(v) for v in values), default=0.0) or 1.0
    spans = []
    for i, (w, v) in enumerate(zip(words, values)):
        r, g, b, alpha = diverging(v / scale)
        cls = "sbg-w sbg-hit" if i in marked else "sbg-w"
        spans.append(f'<span class="{cls}" style="background:rgba({r},{g},{b},{alpha})" title="{v:+.4f}">{html.escape(w)}</span>')
    return " ".join(spans)


def _table(rows: Sequence[dict], columns: Sequence[str], left: Sequence[str] = ("word", "text")) -> str:
    e = html.escape
    head = "".join(f'<th class="{"l" if c in left else ""}">{e(c)}</th>' for c in columns)
    body = "".join("<tr>" + "".join(f'<td class="{"l" if c in left else ""}">{e(_fmt(r.get(c)))}</td>' for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return "–" if v != v else f"{v:.4f}"
    return "" if v is None else str(v)


def corpus_page(run, table: pa.Table, *, by: str = RANKING.by, min_count: int = RANKING.min_count, top: int = RANKING.top, drill: int = 3) -> str:
    """The whole report of a :class:`~shatterbox.global_attribution.CorpusRun` and its :func:`word_table`."""
    from shatterbox.global_attribution import drill_down, flips, least_faithful, top_words

    e = html.escape
    labels = sorted(set(table.column("label").to_pylist()))
    record = run.record
    skipped = run.skipped.to_pylist() if run.skipped.num_rows else []
    parts = [f"<h1>Which words drive each label — {e(str(record.get('model')))}</h1>",
             f'<p class="note">{run.texts.num_rows:,} texts of {e(str(record.get("source")))} explained by {e(str(record.get("settings", {}).get("method")))} '
             f'(pairs: {e(str(record.get("settings", {}).get("pairs")))}), {run.seconds_per_text() * 1000:.0f} ms per text; words grouped by {e(by)}; '
             f'effect of a word on a text = the sum of its values there; mean over the texts it occurs in, 95 % t-interval; '
             f'rankings keep words in at least {min_count} texts. {len(skipped)} texts left out.</p>']
    for label in labels:
        parts.append(f"<h2>{e(label)}</h2><div class='sbg-charts'>")
        drilled = []
        for direction in ("up", "down"):
            rows = top_words(table, label, k=top, direction=direction, min_count=min_count).to_pylist()
            parts.append(f"<div><h3>push {e(label)} {direction}</h3>{bars_svg(rows)}</div>")
            drilled += rows[:drill]
        parts.append("</div><h3>Where they mattered most</h3>")
        for r in drilled:
            texts = drill_down(run, r["word"], label, by=by, k=3)
            inner = "".join(f'<div class="sbg-text">{d["effect"]:+.3f} · {words_html(d["words"], d["values"], d["positions"])}</div>' for d in texts)
            parts.append(f"<details><summary>{e(r['word'])}: {r['mean']:+.4f} in {r['texts']} texts, up in {100 * r['share_up']:.0f} % of its occurrences</summary>{inner}</details>")
        parts.append(f"<h3>Words whose effect on {e(label)} flips with context</h3>"
                     + _table(flips(table, label, k=10, min_count=min_count).to_pylist(), ["word", "texts", "mean", "sd", "share_up", "consistency"]))
    parts.append("<h2>Least faithful explanations</h2>" + _table(least_faithful(run, 10).to_pylist(),
                                                                  ["text_id", "text", "prediction", "probability", "comprehensiveness", "sufficiency"]))
    if skipped:
        parts.append("<h2>Left out</h2>" + _table(skipped[:200], ["id", "reason", "detail"], left=("reason", "detail")))
    title = e(f"shatterbox · words per label · {record.get('source')}")
    return f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head><body>{"".join(parts)}</body></html>'
