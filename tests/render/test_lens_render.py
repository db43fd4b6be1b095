"""Lens and steering drawings: the page (and the notebook fragment, the same plots.js) carries the library's numbers cell by
cell, escapes every token, the strength slider picks each strength's rows, and notebooks show these results by default."""

import numpy as np
import pytest
from rich.console import Console

from shatterbox.lens import LensResult, logit_lens
from shatterbox.render import RENDERERS, renderable, to_html
from shatterbox.steering import SteeringResult

EVIL = "<img src=x onerror=alert(1)>"


def _lens() -> LensResult:
    return LensResult("logit", "m", "a b", ["a", EVIL], [0, 1], ["b", EVIL], [[[("x", 0.25), (EVIL, 0.2)], [("y", 0.5), ("z", 0.1)]]] * 2,
                      np.array([[3, 0], [0, 0]]), np.array([[0.125, 0.5], [0.875, 0.75]]), np.array([[2.0, 1.0], [0.0, 0.0]]))


def _steering() -> SteeringResult:
    rows = [{"prompt": 0, "direction": "unsteered", "kind": "none", "alpha": 0.0, "concept": 0.1, "fluency": -2.0, "text": " plain", "tokens": 1},
            {"prompt": 0, "direction": "dm", "kind": "diffmean", "alpha": 0.5, "concept": 0.6, "fluency": -2.2, "text": " good", "tokens": 1},
            {"prompt": 0, "direction": "dm", "kind": "diffmean", "alpha": 1.0, "concept": 0.9, "fluency": -2.9, "text": " " + EVIL, "tokens": 1},
            {"prompt": 0, "direction": "random (seed 0)", "kind": "random", "alpha": 0.5, "concept": 0.1, "fluency": -2.5, "text": " odd", "tokens": 1},
            {"prompt": 0, "direction": "random (seed 0)", "kind": "random", "alpha": 1.0, "concept": 0.2, "fluency": -3.5, "text": " odder", "tokens": 1},
            {"prompt": 0, "direction": "prompting", "kind": "prompting", "alpha": None, "concept": 0.8, "fluency": -2.4, "text": " asked", "tokens": 1}]
    return SteeringResult("m", 2, "all", "sentiment", "positive", [0.0, 0.5, 1.0], [], ["A prompt"], rows)


def test_the_terminal_drawings():
    console = Console(width=140, record=True)
    console.print(renderable(_lens()))
    console.print(renderable(_steering()))
    text = console.export_text()
    assert "mean KL" in text and "best: dm at strength 1: concept +0.80, fluency loss 0.90" in " ".join(text.split())


def test_notebooks_show_lens_and_steering_results_with_their_fragment():
    for name in ("shatterbox.lens._logit.LensResult", "shatterbox.lens._logit.ClassifierLensResult", "shatterbox.steering._steer.SteeringResult"):
        assert "fragment" in RENDERERS[name]


@pytest.mark.browser
def test_the_pages_draw_the_librarys_numbers_escaped(browser, tmp_path, tiny_models):
    result = logit_lens(tiny_models["llama-gqa"], "hello world, this is")
    for r, kind in ((result, "lens"), (_lens(), "lens"), (_steering(), "steering")):
        path = tmp_path / f"{kind}.html"
        path.write_text(to_html(r))
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        if kind == "lens":
            probs = page.eval_on_selector_all("td.lens-cell", "cells => cells.map(c => +c.dataset.prob)")
            assert np.allclose(probs, r.prob.ravel(), atol=1e-6)
            kls = page.eval_on_selector_all("td.lens-kl", "cells => cells.map(c => +c.textContent)")
            assert np.allclose(kls, r.mean_kl, atol=5e-4)
        else:
            texts = lambda: page.eval_on_selector_all(".steer-rows td:last-child", "cells => cells.map(c => c.textContent)")  # noqa: E731
            assert texts() == [" plain", " good", " odd", " asked"]
            page.locator("input.steer-alpha").fill("1")
            assert texts() == [" plain", " " + EVIL, " odder", " asked"]  # shown as text, never as markup
            flags = page.eval_on_selector_all(".steer-summary tr td:last-child", "cells => cells.map(c => c.textContent)")
            assert flags == [r["flag"] for r in r.summary()]
        assert page.locator("img").count() == 0 and dialogs == []
        page.close()
