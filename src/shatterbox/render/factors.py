"""A self-contained HTML report of transformer factors: quality per layer, factors by level, polysemy.

Built on the server side from :func:`shatterbox.factors.factors_report` data; no script, no CDN;
every token and text goes through ``html.escape``.

Examples:
    >>> page = factors_page({"model": "m", "store": {"corpus": "c", "model": "default"}, "layers": [1], "levels": {},
    ...                      "reports": {}, "sections": {}, "control": None, "polysemy": None})
    >>> page.startswith("<!doctype html>")
    True
"""

from __future__ import annotations

import html
from typing import Sequence

LEVEL_RULE = ("Levels: a factor's importance at a layer is the mean of its top 1 % coefficients there; the centre of mass "
              "of that curve above its own minimum, in the first third of the fitted layers = low, last third = high, else mid.")

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.sbf-factor{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:8px 0}
.sbf-ctx{margin:2px 0;font-size:13px}.sbf-ctx mark{background:#ffd54f;padding:0 2px;border-radius:2px}
.sbf-val{display:inline-block;width:56px;color:#666;font-variant-numeric:tabular-nums}
.sbf-note{color:#555;font-size:13px}
tr.weak td{color:#8a5a00;background:#fff8e1}
"""


def curve_svg(curve: Sequence[float], layers: Sequence[int], *, width: int = 180, height: int = 48) -> str:
    """An importance curve over layers as an inline SVG polyline (x: layer, y: importance / max).

    Examples:
        >>> "polyline" in curve_svg([1.0, 3.0, 2.0], [1, 2, 3])
        True
    """
    top = max(max(curve), 1e-12)
    n = max(len(curve) - 1, 1)
    points = " ".join(f"{8 + (width - 16) * i / n:.1f},{height - 12 - (height - 20) * v / top:.1f}" for i, v in enumerate(curve))
    labels = "".join(f'<text x="{8 + (width - 16) * i / n:.1f}" y="{height - 1}" font-size="9" text-anchor="middle">{l}</text>' for i, l in enumerate(layers))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="importance by layer">'
            f'<polyline fill="none" stroke="#c03" stroke-width="1.8" points="{points}"/>{labels}</svg>')


def context_html(ctx: dict) -> str:
    """One sentence with the token highlighted (escaped), led by its value.

    Examples:
        >>> context_html({"value": 2.0, "text": "a <b> c", "start": 2, "end": 5})
        '<div class="sbf-ctx"><span class="sbf-val">2.00</span>a <mark>&lt;b&gt;</mark> c</div>'
    """
    text, start, end = ctx["text"], int(ctx["start"]), int(ctx["end"])
    e = html.escape
    return (f'<div class="sbf-ctx"><span class="sbf-val">{ctx["value"]:.2f}</span>'
            f"{e(text[:start])}<mark>{e(text[start:end])}</mark>{e(text[end:])}</div>")


def _row(cells: str, flag: str) -> str:
    """A table row; flagged rows are marked weak (never shown as ordinary results)."""
    return f'<tr class="weak">{cells}</tr>' if flag else f"<tr>{cells}</tr>"


def _quality_table(reports: dict, control: dict | None) -> str:
    head = "<tr><th>layer</th><th>variance explained</th><th>PCA, as many components</th><th>components</th><th>mean L0</th><th>dead %</th>"
    head += "<th>random-weight control: variance explained</th><th>control PCA</th>" if control else ""
    head += "<th>flag</th></tr>"
    rows = []
    for layer, r in reports.items():
        cells = (f"<td>{html.escape(layer)}</td><td>{r['variance_explained']:.3f}</td><td>{r['pca_variance_explained']:.3f}</td>"
                 f"<td>{r['pca_components']}</td><td>{r['mean_l0']:.1f}</td><td>{100 * r['dead_fraction']:.1f}</td>")
        c = (control or {}).get("reports", {}).get(layer)
        if control:
            cells += f"<td>{c['variance_explained']:.3f}</td><td>{c['pca_variance_explained']:.3f}</td>" if c else "<td>–</td><td>–</td>"
        flag = r.get("flag", "")
        cells += f"<td>{html.escape(flag)}</td>"
        rows.append(_row(cells, flag))
    return f"<table>{head}{''.join(rows)}</table>"


def _polysemy_table(rows: list[dict] | None, control_rows: list[dict] | None, why: str | None = None) -> str:
    if not rows:
        reason = why or "no word in this store has two senses with enough sense-labelled examples (harvest wordnet-senses)"
        return f'<p class="sbf-note">No polysemy table: {html.escape(reason)}.</p>'
    control = {r["word"]: r for r in control_rows or []}
    head = "<tr><th>word</th><th>senses</th><th>occurrences</th><th>factor groups ARI</th><th>k-means ARI</th><th>shuffled senses ARI</th>"
    head += "<th>random-weight control ARI</th>" if control_rows is not None else ""
    head += "<th>flag</th></tr>"
    body = []
    for r in rows:
        cells = (f"<td>{html.escape(r['word'])}</td><td>{r['senses']}</td><td>{r['occurrences']}</td><td>{r['factor_ari']:.3f}</td>"
                 f"<td>{r['kmeans_ari']:.3f}</td><td>{r['chance_ari']:.3f}</td>")
        if control_rows is not None:
            c = control.get(r["word"])
            cells += f"<td>{c['factor_ari']:.3f}</td>" if c else "<td>–</td>"
        flag = r.get("flag", "")
        cells += f"<td>{html.escape(flag)}</td>"
        body.append(_row(cells, flag))
    return f"<table>{head}{''.join(body)}</table>"


def _downstream_table(rows: list[dict] | None) -> str:
    if not rows:
        return ""
    body = "".join(_row(f"<td>{r['layer']}</td><td>{r['recovered']:.3f}</td><td>{r['reconstructed_loss']:.4f}</td>"
                        f"<td>{r['zero_ablated_loss']:.4f}</td><td>{html.escape(r.get('flag', ''))}</td>", r.get("flag", "")) for r in rows)
    return ('<p class="sbf-note">Sentence embedding recovered when a layer\'s word tokens are replaced by their reconstruction '
            "(loss = 1 − cosine to the clean mean-pooled embedding; recovered = (zero-ablated − reconstructed) / zero-ablated):</p>"
            f"<table><tr><th>layer</th><th>recovered</th><th>loss, reconstructed</th><th>loss, zero-ablated</th><th>flag</th></tr>{body}</table>")


def factors_page(report: dict) -> str:
    """The whole report as one HTML page (see :func:`shatterbox.factors.factors_report`)."""
    e = html.escape
    store = report["store"]
    parts = [
        f"<h1>Transformer factors — {e(str(store.get('model')))} on {e(str(store.get('corpus')))}</h1>",
        f'<p class="sbf-note">{e(report["model"])}; layers {e(", ".join(map(str, report["layers"])))}; '
        + e(", ".join(f"{v} {k}" for k, v in report["levels"].items())) + "</p>",
        "<h2>Held-out quality per layer</h2>", _quality_table(report["reports"], report.get("control")),
        _downstream_table(report.get("downstream")),
        f'<p class="sbf-note">{e(LEVEL_RULE)}</p>',
    ]
    for level, factors in report["sections"].items():
        parts.append(f"<h2>{e(level.capitalize())}-level factors</h2>")
        if not factors:
            parts.append('<p class="sbf-note">none</p>')
        for f in factors:
            ctx = "".join(context_html(c) for c in f["contexts"]) or '<p class="sbf-note">no context where it fires</p>'
            parts.append(f'<div class="sbf-factor"><b>factor {f["factor"]}</b> · peak at layer {f["peak_layer"]} '
                         f'{curve_svg(f["curve"], report["layers"])}{ctx}</div>')
    control = report.get("control") or {}
    parts += ["<h2>Polysemy: do the factors that fire separate a word's senses?</h2>",
              _polysemy_table(report.get("polysemy"), control.get("polysemy") if control else None,
                              report.get("skipped", {}).get("polysemy"))]
    title = e(f"shatterbox factors · {store.get('corpus')}")
    return f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{_CSS}</style></head><body>{"".join(parts)}</body></html>'
