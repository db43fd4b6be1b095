"""The projector's data and its self-contained page (assets/projector.js draws it on a canvas).

Examples:
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

_CSS = 'body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:1rem}'


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

    Examples:
        >>> import numpy as np
        >>> from shatterbox.projector import Points, project_layers
        >>> pts = Points("sentence", np.arange(6), np.full(6, -1), ["<b>x</b>"] * 6, np.full((6, 2), -1), {})
        >>> page = projector_page(pts, project_layers({1: np.random.default_rng(0).normal(size=(6, 3))}))
        >>> "<b>x" in page, page.startswith("<!doctype html>")
        (False, True)
    """
    style = _CSS + asset("projector.css")
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{style}</style></head>'
            f'<body><h1 style="font-size:1.1rem">{html.escape(title)}</h1><div id="sbp-root"></div>'
            f'<script type="application/json" id="sbp-data">{script_json(projector_payload(points, maps, colour=colour))}</script>'
            f"<script>{asset('projector.js')}</script></body></html>")
