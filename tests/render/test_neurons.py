"""The neurons report and renderers: escaped, means recomputed by hand, terminal shading by level."""

import json

import numpy as np

from shatterbox.neurons import Excerpt
from shatterbox.render.neurons import excerpt_html, excerpt_text, histogram_svg, neurons_page, summary


def row(unit, corr, lookup, flagged, explanation="x"):
    excerpt = {"sentence_id": unit, "tokens": ["<script>", "##s"], "activations": [2.0, 0.0]}
    return {"layer": 1, "unit": unit, "kind": "neuron", "explanation": explanation, "flagged": flagged, "reason": "no better than token lookup" if flagged else "",
            "maximum": 2.0, "seconds": 0.01, "correlation": corr, "correlation_low": corr - 0.1, "correlation_high": corr + 0.1,
            "random_correlation": 0.0, "shuffled_correlation": 0.1, "token_lookup_correlation": lookup, "detection": 0.75, "fuzzing": None,
            "random_explanation": "r", "shuffled_explanation": "s", "token_lookup_explanation": "t", "excerpts": json.dumps([excerpt])}


def test_summary_by_hand():
    s = summary([row(0, 0.8, 0.5, False), row(1, 0.2, 0.3, True)])
    assert s["correlation"]["explanation"] == 0.5 and s["correlation"]["token_lookup"] == 0.4
    assert s["flagged"] == 0.5 and s["fuzzing"]["explanation"] is None and s["units"] == 2


def test_page_escapes_and_lists_every_unit():
    page = neurons_page({"kind": "neuron", "store": {"path": "s"}, "settings": {"n_explain": 10, "n_top": 10, "n_random": 10}},
                        [row(0, 0.8, 0.5, False, '"<b>" (9)'), row(1, 0.2, 0.3, True)])
    assert "<b>" not in page and "&lt;b&gt;" in page and "<script>" not in page and "&lt;script&gt;</span>" in page
    assert page.count("<tr><td>1</td>") == 2 and page.count("flagged: no better than token lookup") == 1
    assert ">0.500<" in page  # the mean correlation of the two units


def test_levels_shade_tokens():
    e = Excerpt(0, ["a", "b", "c"], np.array([0.0, 0.55, 1.0]))
    html = excerpt_html(e, 1.0)
    assert 'rgba(8,69,148,0.5)' in html and 'rgba(8,69,148,1);color:#fff' in html and html.count("background") == 2
    styles = [span.style for span in excerpt_text(e, 1.0).spans]
    assert len(styles) == 2 and styles[0] != styles[1]


def test_histogram_counts_match_numpy():
    values = [0.05, 0.07, 0.5, 0.95, 2.0]
    svg = histogram_svg({"explanation": values}, bins=12, low=-0.2, high=1.0)
    assert "max 2" in svg  # two values in the 0.0–0.1 bin; 2.0 is clipped into the last bin
    assert np.histogram(np.clip(values, -0.2, 1.0), np.linspace(-0.2, 1.0, 13))[0].max() == 2
