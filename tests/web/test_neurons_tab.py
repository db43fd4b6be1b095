"""The Neurons tab: the API equals the library, runs are listed and searched, the tab works in Chromium (tokens escaped)."""

import json

import numpy as np
import pytest

from shatterbox.trace import glue

from shatterbox.corpus import load_corpus
from shatterbox.neurons import read_run
from shatterbox.neurons import NeuronSettings, Units, discretise, explain_unit, explain_units
from shatterbox.store import Store, harvest
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app
from tests.web.test_store_tabs import use_store

SMALL = NeuronSettings(n_explain=6, n_top=6, n_random=6)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("neuron-stores")
    store = harvest(load_corpus("wordnet", where={"kind": "example"}, limit=250, seed=2), root / "wn", model=default_model, layers="1", what="mlp")
    explain_units(lambda l: Units.neurons(store, l), {1: list(range(12))}, root / "run1", settings=SMALL)
    return root


def client_rows(folder):
    return read_run(folder / "run1")[1].to_pylist()


@pytest.fixture(scope="module")
def client(folder):
    return local_client(create_app(stores=folder))


@pytest.mark.slow
def test_the_unit_api_equals_the_library(client, folder):
    d = client.post("/api/stores/wn/neuron", json={"layer": 1, "unit": 9}).json()
    want = explain_unit(Units.neurons(Store.open(folder / "wn"), 1), 9)
    assert d["explanation"] == want["explanation"] and d["scores"] == want["scores"]
    assert d["name"] == "layer 1 neuron 9" and len(d["excerpts"]) == 20 and len(d["random_excerpts"]) == 20
    top = d["excerpts"][0]
    assert top["levels"] == discretise(np.array(top["activations"]), d["maximum"]).tolist() and max(top["levels"]) == 10


def test_runs_are_listed_and_searched(client):
    runs = client.get("/api/neurons").json()["runs"]
    assert [(r["name"], r["units"], r["store"]) for r in runs] == [("run1", 12, "wn")]
    d = client.get("/api/neurons/run1").json()
    scores = [u["scores"]["explanation"]["correlation"]["value"] for u in d["units"]]
    assert d["total"] == 12 and scores == sorted(scores, reverse=True)
    word = d["units"][0]["explanation"].split('"')[1]
    found = client.get("/api/neurons/run1", params={"search": word}).json()
    assert 1 <= found["matches"] <= 12 and all(word in u["explanation"].lower() for u in found["units"])


@pytest.mark.parametrize("path,body,status,message", [
    ("/api/stores/wn/neuron", {"layer": 2, "unit": 0}, 400, "no MLP activations of layer 2"),
    ("/api/stores/wn/neuron", {"layer": 1, "unit": 5000}, 400, "neuron 5000 is out of range"),
    ("/api/stores/wn/neuron", {"layer": 1, "unit": 0, "factors": "x.factors"}, 404, "no factors file named"),
    ("/api/stores/../neuron", {"layer": 1, "unit": 0}, 404, ""),
    ("/api/neurons/..%2Fetc", None, 404, ""),
])
def test_bad_requests_are_clear_errors(client, path, body, status, message):
    r = client.post(path, json=body) if body is not None else client.get(path)
    assert r.status_code == status and message in r.json().get("error", "")


@pytest.mark.slow
def test_neurons_tab_in_chromium(browser, folder):
    with running(create_app(stores=folder)) as url:
        page, errors, dialogs = open_app(browser, url)
        use_store(page, "wn")
        page.click('nav button[data-tab="neurons"]')
        page.wait_for_selector("#neurons-layer option[value='1']", state="attached")
        page.fill("#neurons-unit", "9")
        page.click("#neurons-run")
        page.wait_for_selector(".neuron-unit .neuron-scores")
        d = explain_unit(Units.neurons(Store.open(folder / "wn"), 1), 9)
        assert page.inner_text(".neuron-explanation") == "Explanation: " + d["explanation"]
        levels = page.evaluate("Array.from(document.querySelectorAll('#neurons-result .neuron-excerpt')[0].querySelectorAll('.neuron-token')).map(n => +n.dataset.level)")
        assert levels == d["excerpts"][0]["levels"]
        row = page.inner_text(".neuron-scores tr[data-who='random']")
        assert f"{d['scores']['random']['correlation']['value']:.3f}" in row
        page.fill("#neurons-search", "")
        page.click("#neurons-search-run")
        page.wait_for_selector("#neurons-table tr[data-unit]")
        assert page.locator("#neurons-table tr[data-unit]").count() == 12
        page.locator("#neurons-table tr[data-unit]").first.click()
        page.wait_for_selector("#neurons-run-detail .neuron-unit")
        assert page.locator("#neurons-run-detail .neuron-excerpt").count() == 5
        shown = page.inner_text("#neurons-run-detail .neuron-excerpt >> nth=0")
        first = json.loads(client_rows(folder)[0]["excerpts"])[0]["tokens"]
        assert shown == "".join(space + piece for space, piece in glue(first))  # pieces glued, words spaced: as trace.glue
        page.click("#neurons-unit")
        page.fill("#neurons-unit", "99999")
        page.click("#neurons-run")
        page.wait_for_selector("#neurons-error:not([hidden])")
        assert page.inner_text("#neurons-error") == "unit: give a whole number from 0 to 1535 (not 99999)"  # MiniLM: 1,536 MLP units
        assert page.locator("#neurons-result .neuron-unit").count() == 0  # the previous unit does not stay under the error
        assert errors == [e for e in errors if "400" in e] and dialogs == []
