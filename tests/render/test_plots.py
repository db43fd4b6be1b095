"""One drawing per picture: the attribution text plot, the comparison table and the generation heat map are drawn
by assets/plots.js, in saved pages and notebooks (render/plots.py) and in the web app's tabs; Chromium draws
Python results here and every number and colour shown is compared with the library's."""

import re
from pathlib import Path

import numpy as np
import pytest

import shatterbox as sb
from shatterbox.attribution import MASKING_BIAS, ValueGame, compare, explain
from shatterbox.generation import GenerationExplanation
from shatterbox.render.generation import cell_colour, map_scale
from shatterbox.render.palette import diverging
from tests.conftest import watch

SRC = Path(__file__).resolve().parents[2] / "src" / "shatterbox"
WEIGHTS = np.array([[0.5, -0.5], [-0.2, 0.2], [0.1, -0.1], [0.0, 0.0]])


def _game() -> ValueGame:
    return ValueGame(["good", "<b>bad</b>", "plot", "&"], lambda m: 0.2 + m @ WEIGHTS * 0.5, labels=["positive", "negative"])


def _open(browser, tmp_path, html: str):
    page_file = tmp_path / "plot.html"
    page_file.write_text(html, encoding="utf-8")
    page = browser.new_page()
    errors, _ = watch(page)
    page.goto(page_file.as_uri())
    return page, errors


def _rgba(css: str) -> tuple:
    parts = [float(x) for x in css[css.index("(") + 1:-1].split(",")]
    return (*map(int, parts[:3]), parts[3] if len(parts) == 4 else 1.0)


def _check_words(page, a, label: int) -> None:
    spans = page.eval_on_selector_all(f".ex-attr[data-label='{label}'] .ex-word", "ws => ws.map(w => [w.textContent, w.title, getComputedStyle(w).backgroundColor])")
    scale = np.abs(a.values).max()
    assert [s[0] for s in spans] == a.words  # the words as text: "<b>bad</b>" is not markup
    for (word, title, background), v in zip(spans, a.values[:, label]):
        assert title == f"{word}: {v:+.4f}"
        want = diverging(v / scale)
        got = _rgba(background) if v != 0 else want  # a zero weight is fully transparent: nothing to compare
        assert got[:3] == want[:3] and abs(got[3] - want[3]) <= 1 / 255 + 1e-6  # the browser keeps alpha in 8 bits


@pytest.mark.slow
def test_the_attribution_page_draws_pythons_values_and_colours_for_each_label(browser, tmp_path):
    a = explain(_game(), method="exact")
    page, errors = _open(browser, tmp_path, sb.to_html(a))
    _check_words(page, a, a.label)
    assert page.locator("b").count() == 0
    assert page.locator(".ex-prediction").text_content().startswith(f"{a.label_name}: {a.prediction[a.label]:.3f} for the text, {a.base[a.label]:.3f}")
    cells = page.eval_on_selector_all(".ex-faith td", "ts => ts.slice(0, 4).map(t => t.textContent)")
    f = a.faithfulness
    assert cells == [f"{x:.3f}" for x in (f.comprehensiveness, f.sufficiency, f.aopc_deletion, f.aopc_insertion)]
    points = page.locator(".ex-faith polyline").first.get_attribute("points").split()
    assert len(points) == len(a.words) + 1 and float(points[0].split(",")[1]) == pytest.approx(30 - 28 * min(max(f.deletion[0], 0), 1), abs=0.06)
    other = 1 - a.label
    page.locator(f"button[data-label='{other}']").click()
    _check_words(page, a, other)
    assert page.locator(".ex-attr").count() == 1
    page.close()
    assert errors == []


@pytest.mark.slow
def test_the_comparison_page_shows_the_rows_of_the_library(browser, tmp_path):
    c = compare(_game(), samples=64)
    page, errors = _open(browser, tmp_path, sb.to_html(c))
    rows = page.eval_on_selector_all(".ex-compare tr", "rs => rs.slice(1).map(r => Array.from(r.children).map(c => c.textContent))")
    assert [r[0] for r in rows] == [r["method"] for r in c.rows()]
    for shown, row in zip(rows, c.rows()):
        assert shown[1] == ", ".join(row["top"]) and shown[2] == f"{row['comprehensiveness']:.3f}" and shown[6] == f"{row['evaluations']:,}"
    assert page.locator(".ex-compare caption").text_content() == MASKING_BIAS
    assert page.locator(".ex-attr").count() == len(c.attributions) >= 4
    page.close()
    assert errors == []


@pytest.mark.slow
def test_the_generation_page_draws_pythons_values_and_colours(browser, tmp_path):
    values = np.array([[0.4, -0.1, np.nan], [-0.8, 0.05, 0.3]])
    e = GenerationExplanation("m", "a <b>", " c d", ["a", "<b>", "c (generated)"], ["c", "d"], values, np.array([-1.5, -2.25]),
                              np.zeros(2), "exact", 8, 0.1, 2, notes=["a note & more"])
    page, errors = _open(browser, tmp_path, sb.to_html(e))
    heads = page.eval_on_selector_all(".gen-map tr:first-child th", "hs => hs.map(h => [h.textContent, h.className])")
    assert heads[1:4] == [["a", ""], ["<b>", ""], ["c", "gen-earlier"]] and page.locator("b").count() == 0
    cells = page.eval_on_selector_all(".gen-map tr", "rs => rs.slice(1).map(r => Array.from(r.querySelectorAll('td')).map(c => [c.textContent, getComputedStyle(c).backgroundColor]))")
    scale = map_scale(values)
    for t, row in enumerate(cells):
        for j, (text, background) in enumerate(row[:3]):
            v = values[t, j]
            assert text == ("" if np.isnan(v) else f"{v:+.2f}")
            want = cell_colour(v, scale)
            if want == "#eee":
                assert background == "rgb(238, 238, 238)"
            else:
                got, expect = _rgba(background), [float(x) for x in want[5:-1].split(",")]
                assert list(got[:3]) == expect[:3] and abs(got[3] - expect[3]) <= 1 / 255 + 1e-6
        assert row[3][0] == f"{e.full[t]:.2f}"
    assert f"±{scale:.2f}" in page.locator(".gen-legend").text_content()
    assert float(page.get_attribute(".gen-plot .ex-legend", "data-scale")) == pytest.approx(scale)  # the heat map's colour legend
    assert heads[4][0] == "log p"  # no contrast: the column is the token's log-probability
    assert page.locator(".gen-notes li").all_text_contents() == ["a note & more"]
    page.close()
    assert errors == []


def test_the_web_app_draws_with_the_same_asset():
    app_js = (SRC / "web" / "static" / "app.js").read_text(encoding="utf-8")
    index = (SRC / "web" / "static" / "index.html").read_text(encoding="utf-8")
    assert '<script src="/static/plots.js"></script>' in index and 'href="/static/plots.css"' in index
    assert all(f"plots.{name}(" in app_js for name in ("attribution", "comparison", "generation", "words"))
    # no second drawing: the page makes no word span, heat-map cell or curve of its own
    assert re.search(r'"ex-word|"gen-map|"ex-faith|diverging\(', app_js) is None


@pytest.mark.browser
def test_sae_tables_mark_the_rows_that_do_not_beat_their_control(browser, tmp_path):
    from shatterbox.render.plots import page, plot_fragment
    from shatterbox.sae import SaeScores

    rows = [{"layer": 3, "variance_explained": 0.9, "pca_variance_explained": 0.5, "pca_components": 8, "mean_l0": 8.0, "dead_fraction": 0.01,
             "dense_fraction": 0.0, "recovered": 0.95, "increase": 0.1, "downstream_flag": ""},
            {"layer": 6, "variance_explained": 0.4, "pca_variance_explained": 0.5, "pca_components": 8, "mean_l0": 8.0, "dead_fraction": 0.2,
             "dense_fraction": 0.0, "recovered": float("nan"), "increase": 0.3, "downstream_flag": ""}]
    scores = SaeScores(rows, [{"layer": 3, "variance_explained": 0.5, "recovered": 0.2}, {"layer": 6, "variance_explained": 0.45, "recovered": 0.3}])
    d = scores.to_dict() | {"factors": "sae.factors", "control_file": "control.factors", "note": ""}
    shown, errors = _open(browser, tmp_path, page("SAE", plot_fragment([("saeScores", d)])))
    cells = shown.eval_on_selector_all(".sae-scores tr[data-layer]", "rs => rs.map(r => [r.className, Array.from(r.children).map(c => c.textContent)])")
    table = scores.table()
    assert [c[0] for c in cells] == ["", "flagged"] and table[0]["flag"] == "" and "does not beat PCA" in table[1]["flag"]
    assert cells[1][1][-1] == table[1]["flag"] and cells[1][1][6] == "–"  # NaN is sent as null and shown as missing
    assert cells[0][1][1] == "0.900" and cells[0][1][8] == "0.500"  # variance explained, and the control's beside it
    shown.close()
    assert errors == []


@pytest.mark.browser
def test_sparse_probing_and_absorption_tables_show_the_librarys_numbers(browser, tmp_path):
    from shatterbox.render.plots import page, plot_fragment
    from shatterbox.sae import Absorption, absorption_summary, sparse_probe_arrays

    rng = np.random.default_rng(0)
    labels = np.array(["a", "b"] * 60)
    codes = rng.random((120, 16)) * (rng.random((120, 16)) < 0.3)
    codes[:, 3] = labels == "a"  # a planted latent: k = 1 reads the label
    probing = sparse_probe_arrays(codes, rng.normal(size=(120, 4)), labels, ks=[1, 2], seeds=2, name="pos")
    rows = [{"letter": "s", "words": 5, "main": [0], "absorption_fraction": 0.4, "full_absorption": 0.2, "probe_accuracy": 0.9}]
    found = Absorption(9, rows, 0.9, 100, 20)
    found.random_weights = Absorption(9, [dict(rows[0], absorption_fraction=0.3)], 0.05, 100, 20)
    absorbed = {"layer": 9, "summary": absorption_summary([found]), "letters": rows}
    shown, errors = _open(browser, tmp_path, page("SAE", plot_fragment([("sparseProbing", probing.to_dict()), ("absorption", absorbed)])))
    accuracies = shown.eval_on_selector_all(".sae-probing tr[data-k]", "rs => rs.map(r => +r.dataset.accuracy)")
    assert accuracies == pytest.approx([r["accuracy"] for r in probing.summary()]) and accuracies[0] == 1.0
    saes = shown.eval_on_selector_all(".sae-absorption tr[data-sae]", "rs => rs.map(r => [r.dataset.sae, r.className, +r.dataset.fraction])")
    assert saes == [["SAE", "", 0.4], ["random-weight SAE", "flagged", 0.3]]  # the control does not know the letters: no bar for the SAE
    shown.close()
    assert errors == []
