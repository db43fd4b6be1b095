"""The Lens and Steering tabs: the API equals the library, Chromium draws the library's numbers (the one drawing,
plots.js, also used by pages and notebooks), the strength slider shows each strength's continuations, bad input is one
message."""

import numpy as np
import pytest

from shatterbox.classifiers.sentiment import sentiment
from shatterbox.lens import classifier_lens, logit_lens
from shatterbox.steering import sentiment_direction, steer
from shatterbox.web import create_app, running
from tests.conftest import local_client, watch

TEXT = "hello world, this is a tiny corpus"
PROMPTS = ["hello world, this is", "The output shows"]


@pytest.fixture(scope="module")
def decoder_app(tiny_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patched:
        patched.setenv("SHATTERBOX_CACHE", str(tmp_path_factory.mktemp("cache")))  # the sentiment DiffMean's store goes here
        yield create_app(tiny_dir["llama-gqa"])


def test_the_lens_api_equals_the_library(decoder_app, tiny_models):
    d = local_client(decoder_app).post("/api/lens", json={"text": TEXT, "k": 3}).json()
    expected = logit_lens(tiny_models["llama-gqa"], TEXT, k=3)
    assert np.allclose(d["kl"], expected.kl, atol=1e-6) and d["rank"] == expected.rank.tolist() and d["predicted"] == expected.predicted


def test_the_classifier_lens_api_equals_the_library():
    d = local_client(create_app()).post("/api/lens", json={"text": "The film was not bad.", "lens": "classifier"}).json()
    assert np.allclose(d["probs"], classifier_lens(sentiment(), "The film was not bad.").probs, atol=1e-6)


@pytest.mark.slow
def test_the_steering_api_equals_the_library(decoder_app, tiny_models):
    body = {"prompts": PROMPTS, "layer": 1, "alphas": "0.5,2", "max_new_tokens": 4}
    d = local_client(decoder_app).post("/api/steer", json=body).json()
    model = tiny_models["llama-gqa"]
    expected = steer(model, PROMPTS, sentiment_direction(model, 1), alphas="0.5,2", max_new_tokens=4)
    assert [r["text"] for r in d["rows"]] == [r["text"] for r in expected.rows]
    assert np.allclose([r["concept"] for r in d["rows"]], [r["concept"] for r in expected.rows], atol=1e-6)
    assert d["verdict"] == expected.verdict()


@pytest.mark.parametrize("path, body, message", [
    ("/api/lens", {"text": TEXT, "lens": "tuned"}, "the tuned lens needs a store with a fitted lens"),
    ("/api/lens", {"text": " "}, "empty"),
    ("/api/lens", {"text": TEXT, "lens": "classifier"}, "the served model has no classifier"),
    ("/api/steer", {"prompts": PROMPTS, "layer": 9}, "layer 9 is out of range"),
    ("/api/steer", {"prompts": PROMPTS, "layer": 1, "alphas": "1,nan"}, "strength 'nan' is not a finite number"),
    ("/api/steer", {"prompts": PROMPTS, "direction": "diffmean"}, "the diffmean direction needs a store"),
    ("/api/steer", {"prompts": PROMPTS, "layer": 1, "concept": " , "}, "no concept given"),
])
def test_bad_requests_are_one_message(decoder_app, path, body, message):
    r = local_client(decoder_app).post(path, json=body)
    assert r.status_code == 400 and message in r.json()["error"], r.json()


def test_a_server_without_a_decoder_says_how_to_get_one():
    r = local_client(create_app()).post("/api/lens", json={"text": TEXT})
    assert r.status_code == 400 and "shatterbox serve --decoder gemma-3-270m" in r.json()["error"]


@pytest.mark.browser
def test_lens_and_steering_tabs_in_chromium(browser, decoder_app, tiny_models):
    expected = logit_lens(tiny_models["llama-gqa"], TEXT)
    with running(decoder_app) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors, dialogs = watch(page)
        page.goto(url)
        page.click('nav button[data-tab="lens"]')
        page.fill("#ln-text", TEXT)
        page.click("#ln-run")
        page.wait_for_selector("#ln-result table.lens-map, #ln-error:not([hidden])")
        assert page.locator("#ln-error").is_hidden(), page.locator("#ln-error").text_content()
        probs = page.eval_on_selector_all("#ln-result td.lens-cell", "cells => cells.map(c => +c.dataset.prob)")
        assert np.allclose(np.array(probs), expected.prob.ravel(), atol=1e-6)
        ranks = page.eval_on_selector_all("#ln-result td.lens-cell", "cells => cells.map(c => +c.dataset.rank)")
        assert ranks == expected.rank.ravel().tolist()
        page.locator("#ln-result td.lens-cell").last.click()
        assert "final prediction" in page.locator("#ln-result .patch-picked").text_content() and "rank 0" in page.locator("#ln-result .patch-picked").text_content()
        page.click('nav button[data-tab="steering"]')
        page.fill("#st-prompts", PROMPTS[0])
        page.fill("#st-layer", "1")
        page.fill("#st-alphas", "0.5,2")
        page.fill("#st-tokens", "3")
        page.click("#st-run")
        page.wait_for_selector("#st-result .steer-summary, #st-error:not([hidden])", timeout=120_000)
        assert page.locator("#st-error").is_hidden(), page.locator("#st-error").text_content()
        strengths = lambda: page.eval_on_selector_all("#st-result .steer-rows tr td:nth-child(2)", "cells => cells.map(c => c.textContent)")  # noqa: E731
        assert sorted(set(strengths())) == ["0", "0.5", "prompted"]
        page.locator("#st-result input.steer-alpha").fill("1")
        assert sorted(set(strengths())) == ["0", "2", "prompted"] and page.locator("#st-result output").text_content() == "2"
        page.close()
        assert [e for e in errors if "400" not in e] == [] and dialogs == []
