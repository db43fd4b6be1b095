"""The projector's data and its self-contained page (assets/projector.js draws it on a canvas).

Example:
    >>> import numpy as np
    >>> from shatterbox.projector import Points, project_layers
    >>> pts = Points("sentence", np.arange(6), np.full(6, -1), [f"s{i}" for i in range(6)], np.full((6, 2), -1), {"kind": list("aabbab")})
    >>> maps = project_layers({1: np.random.default_rng(0).normal(size=(6, 3))})
    >>> d = projector_payload(pts, maps)
    >>> d["colourings"]["kind"]["names"], len(d["layers"][0]["x"])
    (['a', 'b'], 6)
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Sequence

import numpy as np

from shatterbox.render.html import asset, script_json

if TYPE_CHECKING:
    from shatterbox.projector import Map, Points

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:1rem}
.sbp-bar{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;margin:.3rem 0}
.sbp-quality{font-size:.85rem;color:#444;margin:.2rem 0}
.sbp-stage canvas{border:1px solid #ddd;cursor:crosshair}
.sbp-tip{position:absolute;max-width:250px;background:#fff;border:1px solid #999;padding:.3rem .4rem;font-size:.8rem;pointer-events:none;box-shadow:0 1px 4px #0003}
.sbp-legend{display:flex;flex-wrap:wrap;gap:.3rem .9rem;font-size:.8rem;margin:.4rem 0;max-width:820px}
.sbp-legend span{padding-left:.3rem}
.sbp-picked{font-size:.9rem;margin:.4rem 0;max-width:820px} .sbp-label{color:#555;font-size:.8rem}
mark{background:#ffe08a}
"""


def _codes(values: Sequence[str]) -> dict:
    names, codes = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    return {"names": names.tolist(), "codes": codes.astype(int).tolist()}


def projector_payload(points: "Points", maps: Sequence["Map"], *, colour: str | None = None) -> dict:
    """What projector.js reads: per layer the coordinates (6 significant digits) and the map's faithfulness;
    per point its text (shared texts stored once), token span and every colouring."""
    texts, index = np.unique(np.asarray(points.texts, dtype=object).astype(str), return_inverse=True)
    colourings = {name: _codes(values) for name, values in points.labels.items()}
    colourings |= {name: {"name": name, "values": np.round(np.asarray(v, dtype=float), 4).tolist()} for name, v in points.values.items()}
    for name in colourings:
        colourings[name].setdefault("name", name)
    default = colour if colour in colourings else next(iter(colourings), None)
    if default is None:
        colourings, default = {"none": {"name": "none", "names": ["point"], "codes": [0] * len(texts[index])}}, "none"
    return {
        "level": points.level,
        "method": maps[0].method if maps else "",
        "layers": [{"layer": m.layer, "x": np.round(m.coords[:, 0], 5).tolist(), "y": np.round(m.coords[:, 1], 5).tolist(),
                    "trust": m.trustworthiness, "recall": m.recall, "k": m.k} for m in maps],
        "texts": texts.tolist(),
        "text": index.astype(int).tolist(),
        "spans": None if points.level == "sentence" else points.spans.astype(int).tolist(),
        "sentenceIds": points.sentence_ids.astype(int).tolist(),
        "colourings": colourings,
        "defaultColour": default,
    }


def projector_page(points: "Points", maps: Sequence["Map"], *, colour: str | None = None, title: str = "shatterbox projector") -> str:
    """One self-contained HTML page: the scatter with its layer slider, colouring, hover text and PNG export.

    Example:
        >>> import numpy as np
        >>> from shatterbox.projector import Points, project_layers
        >>> pts = Points("sentence", np.arange(6), np.full(6, -1), ["<b>x</b>"] * 6, np.full((6, 2), -1), {})
        >>> page = projector_page(pts, project_layers({1: np.random.default_rng(0).normal(size=(6, 3))}))
        >>> "<b>x" in page, page.startswith("<!doctype html>")
        (False, True)
    """
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>'
            f'<body><h1 style="font-size:1.1rem">{html.escape(title)}</h1><div id="sbp-root"></div>'
            f'<script type="application/json" id="sbp-data">{script_json(projector_payload(points, maps, colour=colour))}</script>'
            f"<script>{asset('projector.js')}</script></body></html>")
