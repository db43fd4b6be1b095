"""HTML of the attribution text plot, the method comparison and the generation heat map.

The drawing itself is one JavaScript asset, ``assets/plots.js``, which the web app's Explain and Generate tabs
load too: a page here is the result's ``to_dict()`` as JSON in a ``<script type="application/json">`` element,
the palette, and that asset, which replaces the JSON by the drawing when the page (or the notebook cell) runs.
The JSON is escaped so no word can close its element; the script inserts every word with ``textContent``.

Examples:
    >>> from shatterbox.attribution import chapter_game, explain
    >>> page = attribution_page(explain(chapter_game()))
    >>> page.startswith("<!doctype html>"), 'data-sb-plot="attribution"' in page
    (True, True)
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Sequence

from shatterbox.render.html import asset, palette_script, script_json

if TYPE_CHECKING:
    from shatterbox.attribution import Attribution, Comparison
    from shatterbox.generation import GenerationExplanation

__all__ = [
    "attribution_fragment", "attribution_page", "comparison_fragment", "comparison_page", "generation_fragment",
    "generation_page", "page", "plot_fragment",
]


def plot_fragment(plots: Sequence[tuple[str, dict]]) -> str:
    """An HTML ``<div>`` that draws each ``(kind, data)`` with ``plots.js`` (kind: attribution, comparison, generation, patching).

    Examples:
        >>> "</script><b>" in plot_fragment([("attribution", {"words": ["</script><b>"]})])
        False
    """
    data = "".join(f'<script type="application/json" data-sb-plot="{html.escape(kind)}">{script_json(d)}</script>' for kind, d in plots)
    # mountAll(document) draws every plot of the page not drawn yet: this one, wherever a notebook put it
    return (f'<div class="sb-plots"><style>{asset("plots.css")}</style>{data}<script>{palette_script()}\n{asset("plots.js")}\n'
            "window.shatterboxPlots.mountAll(document);</script></div>")


def page(title: str, fragment: str) -> str:
    """A self-contained HTML page (no network) around one fragment."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>shatterbox · {html.escape(title[:80])}</title>'
            f"</head><body>{fragment}</body></html>")


def _listed(attributions) -> list:
    """One attribution or several, as a list."""
    return list(attributions) if isinstance(attributions, (list, tuple)) else [attributions]


def attribution_fragment(attributions: "Attribution | Sequence[Attribution]") -> str:
    """The text plot of one attribution (or of several, one after the other) as an HTML fragment, for notebooks.

    Examples:
        >>> from shatterbox.attribution import chapter_game, explain
        >>> attribution_fragment(explain(chapter_game())).count('data-sb-plot="attribution"')
        1
    """
    return plot_fragment([("attribution", a.to_dict()) for a in _listed(attributions)])


def attribution_page(attributions: "Attribution | Sequence[Attribution]") -> str:
    """A self-contained HTML page (no network) around :func:`attribution_fragment`."""
    listed = _listed(attributions)
    return page(next((a.text for a in listed if a.text), "attribution"), attribution_fragment(listed))


def comparison_fragment(comparison: "Comparison") -> str:
    """The comparison table, then each method's text plot, as an HTML fragment."""
    return plot_fragment([("comparison", comparison.to_dict())])


def comparison_page(comparison: "Comparison") -> str:
    """One page: the comparison table, then each method's text plot."""
    text = next((a.text for a in comparison.attributions if a.text), "comparison")
    return page(text, comparison_fragment(comparison))


def generation_fragment(e: "GenerationExplanation") -> str:
    """The heat map (rows: generated tokens; columns: sources) as an HTML fragment, for notebooks.

    Examples:
        >>> import numpy as np
        >>> from shatterbox.generation import GenerationExplanation
        >>> e = GenerationExplanation("m", "a <b>", " c", ["a", "<b>"], ["c"], np.array([[0.2, -0.1]]), np.zeros(1),
        ...                           np.zeros(1), "exact", 4, 0.0, 2)
        >>> '"\\\\u003cb\\\\u003e"' in generation_fragment(e) and "<b>" not in generation_fragment(e)
        True
    """
    return plot_fragment([("generation", e.to_dict())])


def generation_page(e: "GenerationExplanation") -> str:
    """A self-contained HTML page (no network) with the heat map."""
    return page(f"{e.model} generation", generation_fragment(e))
