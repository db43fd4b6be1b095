"""The probe plot draws the numbers it is given."""

import re

from shatterbox.probes import LayerScore, ProbeResult
from shatterbox.render.probes import probe_svg, probes_page


def result(values: list[float], name: str = "pos") -> ProbeResult:
    layers = [LayerScore(l, v, 0.01, 0.3, 0.01, v - 0.3, 0.02, [], []) for l, v in enumerate(values)]
    return ProbeResult(name, "token", "linear", 1000, 4, 0.4, 0.3, layers, 2.0, "default")


def points(svg: str, curve: str, dashed: bool = False) -> list[tuple[float, float]]:
    found = [m for m in re.finditer(r'<polyline [^>]*data-curve="' + curve + r'"[^>]*/>', svg) if ("stroke-dasharray" in m.group(0)) == dashed]
    pairs = re.search(r'points="([^"]+)"', found[0].group(0)).group(1).split()
    return [tuple(map(float, p.split(","))) for p in pairs]


def test_curves_follow_the_values_on_one_axis():
    values = [0.5, 0.9, 0.7]
    svg = probe_svg(result(values), result([0.45, 0.5, 0.48]), height=240)
    acc, sel = points(svg, "accuracy"), points(svg, "selectivity")
    ys = [y for _, y in acc]
    assert ys[1] < ys[2] < ys[0]  # higher accuracy, higher on the page
    top, bottom = 12, 240 - 32  # y of 1.0 and of 0.0
    for (_, y), v in zip(acc, values):
        assert abs(y - (bottom - (bottom - top) * v)) < 0.11
    for (_, y), v in zip(sel, values):
        assert abs(y - (bottom - (bottom - top) * (v - 0.3))) < 0.11
    assert len(points(svg, "accuracy", dashed=True)) == 3 and "random weights" in svg


def test_page_has_plot_table_and_escaped_names():
    page = probes_page([(result([0.6, 0.8], name="<pos>"), None)])
    assert "&lt;pos&gt;" in page and "<pos>" not in page
    assert page.count("<polyline") == 3 and "0.800 ± 0.010" in page and "0.500 ± 0.020" in page
