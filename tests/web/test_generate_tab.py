"""The Generate tab: the API answers what explain_generation answers, the page draws the same numbers and colours
(render/generation.py's cell_colour), escapes every token, and says how to get a decoder when there is none."""

import numpy as np
import pytest

from shatterbox.generation import explain_generation
from shatterbox.render.generation import cell_colour, map_scale
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app

PROMPT = "the model <b>reads</b> every word"


@pytest.fixture(scope="module")
def decoder_app(tiny_dir):
    return create_app(tiny_dir["llama-gqa"])


def test_the_api_answers_what_explain_generation_answers(decoder_app, tiny_models):
    d = local_client(decoder_app).post("/api/generate", json={"prompt": PROMPT, "max_new_tokens": 2, "method": "exact"}).json()
    e = explain_generation(tiny_models["llama-gqa"], PROMPT, max_new_tokens=2, method="exact")
    assert d["sources"] == e.sources and d["targets"] == e.targets and d["method"] == "exact"
    got = np.array([[np.nan if v is None else v for v in row] for row in d["values"]])
    np.testing.assert_allclose(got, e.values, atol=1e-9)
    assert local_client(decoder_app).get("/api/model").json()["decoder"] == e.model


@pytest.mark.slow
def test_without_a_decoder_the_api_names_the_fix():
    r = local_client(create_app("default")).post("/api/generate", json={"prompt": "hello"})
    assert r.status_code == 400 and "shatterbox serve --decoder gemma-3-270m" in r.json()["error"]
    r = local_client(create_app("default")).post("/api/generate", json={"prompt": "hello", "max_new_tokens": 99})
    assert r.status_code == 422 and "max_new_tokens" in r.json()["error"]


@pytest.mark.slow
def test_the_page_draws_the_pythons_numbers_and_colours(decoder_app, tiny_models, browser):
    # 12 words: the tab's default "shapley" samples (the API's budget 2,000, seed 0), the same as here
    e = explain_generation(tiny_models["llama-gqa"], PROMPT, max_new_tokens=2, method="shapley", budget=2000)
    assert e.method == "sampled" and e.error is not None
    with running(decoder_app) as url:
        page, errors, dialogs = open_app(browser, url)
        page.click('nav button[data-tab="generate"]')
        page.fill("#gen-prompt", PROMPT)
        page.fill("#gen-tokens", "2")
        page.click("#gen-run")
        page.wait_for_selector("#gen-result .gen-map")
        cells = page.eval_on_selector_all("#gen-result .gen-map tr", "rows => rows.slice(1).map(r => Array.from(r.querySelectorAll('td')).map(c => [c.textContent, getComputedStyle(c).backgroundColor]))")
        heads = page.eval_on_selector_all("#gen-result .gen-map tr:first-child th", "hs => hs.map(h => h.textContent)")
        assert page.locator("#gen-result b").count() == 0 and heads[3:6] == ["<", "b", ">"]  # tokens, not markup
        page.close()
    scale = map_scale(e.values)
    for t, row in enumerate(cells):
        for j, (text, background) in enumerate(row[: len(e.sources)]):
            v = e.values[t, j]
            assert text == ("" if np.isnan(v) else f"{v:+.2f}")
            want = cell_colour(v, scale)
            if want == "#eee":
                assert background == "rgb(238, 238, 238)"
            else:
                rgba = [float(x) for x in background[background.index("(") + 1:-1].split(",")]
                expect = [float(x) for x in want[5:-1].split(",")]
                assert rgba[:3] == expect[:3] and abs((rgba[3] if len(rgba) == 4 else 1.0) - expect[3]) <= 1 / 255 + 1e-6  # the browser keeps alpha in 8 bits
    assert errors == [] and dialogs == []
