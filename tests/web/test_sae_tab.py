"""The SAEs tab: the API equals the library (core scores beside the control, sparse probing, absorption, a Neuronpedia
feature), Chromium draws the library's numbers with flagged rows marked, bad input is one message."""

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.factors import Factors, fit_factors
from shatterbox.models import random_weights
from shatterbox.sae import absorption, absorption_summary, neuronpedia_feature, sae_scores, sparse_probing
from shatterbox.store import Store, harvest
from shatterbox.web import create_app, running
from tests.conftest import local_client, watch

SETTINGS = dict(kind="sae", n_factors=64, k=8, n_epochs=2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("sae-served")
    corpus = load_corpus("wordnet", limit=160)
    fit_factors(harvest(corpus, root / "trained", model=default_model, layers="2"), **SETTINGS).save(root / "sae.factors")
    control = harvest(corpus, root / "random", model=random_weights(default_model, 0), layers="2")
    fit_factors(control, **SETTINGS).save(root / "control.factors")
    return root


@pytest.fixture(scope="module")
def client(folder):
    return local_client(create_app(stores=folder))


def loaded(folder, name):
    factors = Factors.load(folder / f"{name}.factors")
    return factors, Store.open(folder / ("trained" if name == "sae" else "random"))


@pytest.fixture(scope="module")
def expected_scores(folder, default_model):
    factors, _ = loaded(folder, "sae")
    c_factors, c_store = loaded(folder, "control")
    return sae_scores(factors, default_model, texts=8, control=(c_factors, c_store, random_weights(default_model, 0))).table()


@pytest.mark.slow
def test_the_score_api_equals_the_library_beside_the_control(client, expected_scores):
    d = client.post("/api/sae/score", json={"factors": "sae.factors", "control": "control.factors", "texts": 8}).json()
    expected = expected_scores
    assert d["downstream"] == "embedding" and len(d["layers"]) == len(expected) == 1
    for key in ("variance_explained", "recovered", "control variance_explained", "control recovered", "flag"):
        assert d["layers"][0][key] == pytest.approx(expected[0][key]), key


@pytest.mark.slow
def test_probing_absorption_and_neuronpedia_equal_the_library(client, folder, default_model):
    factors, _ = loaded(folder, "sae")
    d = client.post("/api/sae/probe", json={"factors": "sae.factors", "property": "pos", "ks": "1,2", "seeds": 1}).json()
    expected = sparse_probing(factors, "pos", ks="1,2", seeds=1).summary()
    assert [r["accuracy"] for r in d["summary"]] == pytest.approx([r["accuracy"] for r in expected])
    d = client.post("/api/sae/absorption", json={"factors": "sae.factors", "words": 300, "seeds": 1}).json()
    expected = absorption_summary([absorption(factors, default_model, words=300, seed=0)])
    assert d["summary"][0]["absorption_fraction"] == pytest.approx(expected[0]["absorption_fraction"]) and d["layer"] == 2
    r = client.get("/api/sae/sae.factors/neuronpedia/3")
    assert r.status_code == 200 and 'filename="sae-3.neuronpedia.json"' in r.headers["content-disposition"]
    feature, direct = r.json(), neuronpedia_feature(factors, 3)
    assert feature["frac_nonzero"] == pytest.approx(direct["frac_nonzero"]) and feature["index"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("path, body, status, message", [
    ("/api/sae/score", {"factors": "nothing.factors"}, 404, "no factors file named 'nothing.factors'"),
    ("/api/sae/score", {"factors": "../sae.factors"}, 404, "no factors file named"),
    ("/api/sae/score", {"factors": "sae.factors", "control": "sae.factors", "texts": 4}, 400, "cannot be the random-weight control"),
    ("/api/sae/probe", {"factors": "sae.factors", "ks": "1,x"}, 400, "ks must be whole numbers"),
    ("/api/sae/probe", {"factors": "sae.factors", "layer": 5}, 400, "5"),
    ("/api/sae/absorption", {"factors": "sae.factors", "words": 10}, 422, "greater than or equal to 50"),
])
def test_bad_requests_are_one_message(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status and message in r.json()["error"], r.json()


@pytest.mark.browser
@pytest.mark.slow
def test_the_sae_tab_in_chromium(browser, folder, expected_scores):
    expected = expected_scores
    with running(create_app(stores=folder)) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors, dialogs = watch(page)
        page.goto(url)
        page.click('nav button[data-tab="sae"]')
        page.wait_for_selector('#sae-factors option[value="sae.factors"]', state="attached")
        page.select_option("#sae-factors", "sae.factors")
        page.select_option("#sae-control", "control.factors")
        page.fill("#sae-texts", "8")
        page.click("#sae-run")
        page.wait_for_selector("#sae-result table.sae-scores, #sae-error:not([hidden])", timeout=120_000)
        assert page.locator("#sae-error").is_hidden(), page.locator("#sae-error").text_content()
        row = page.locator("#sae-result table.sae-scores tr[data-layer='2']")
        assert float(row.get_attribute("data-ve")) == pytest.approx(expected[0]["variance_explained"], abs=1e-9)
        assert float(row.get_attribute("data-recovered")) == pytest.approx(expected[0]["recovered"], abs=1e-9)
        assert ("flagged" in (row.get_attribute("class") or "")) == bool(expected[0]["flag"])
        assert row.locator("td").last.text_content() == expected[0]["flag"]
        page.fill("#sae-latent", "3")
        assert page.locator("#sae-np-link").get_attribute("href") == "/api/sae/sae.factors/neuronpedia/3"
        page.select_option("#sae-eval", "probe")  # the probing table's drawing: tests/render/test_plots.py
        page.fill("#sae-ks", "1,x")
        page.click("#sae-run")
        page.wait_for_selector("#sae-error:not([hidden])")
        assert "ks must be whole numbers" in page.locator("#sae-error").text_content()
        page.close()
        assert [e for e in errors if "400" not in e] == [] and dialogs == []
