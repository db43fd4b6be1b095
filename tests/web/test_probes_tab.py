"""The Probes tab: the API equals the library, the plot is Python's, the tab draws it in Chromium."""

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.models import random_weights
from shatterbox.probes import probe
from shatterbox.store import Store, harvest
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("probe-stores")
    corpus = load_corpus("wordnet", limit=300, seed=4)
    harvest(corpus, root / "wn", model=default_model, layers="0,3")
    harvest(corpus, root / "wn-random", model=random_weights(default_model, 1), layers="0,3")
    return root


@pytest.fixture(scope="module")
def client(folder):
    return local_client(create_app(stores=folder))


def test_the_api_equals_the_library_and_carries_the_plot(client, folder):
    d = client.post("/api/stores/wn/probe", json={"property": "pos", "folds": 3, "random": "wn-random"}).json()
    expected = probe(Store.open(folder / "wn"), "pos", folds=3, limit=2000)
    baseline = probe(Store.open(folder / "wn-random"), "pos", folds=3, limit=2000)
    for got, want in ((d["result"], expected), (d["random_weights"], baseline)):
        assert [s["folds"] for s in got["layers"]] == [s.folds for s in want.layers]
        assert [s["selectivity"] for s in got["layers"]] == pytest.approx([s.selectivity for s in want.layers])
    assert d["svg"].startswith("<svg") and d["svg"].count("<polyline") == 6  # three curves, twice


@pytest.mark.parametrize("body,status,message", [
    ({"property": "colour"}, 400, "unknown token property"),
    ({"property": "pos", "random": "nope"}, 404, "no store named 'nope'"),
    ({"property": "pos", "limit": 5}, 422, "limit"),
    ({"property": "pos", "kind": "forest"}, 422, "kind"),
])
def test_bad_probe_requests_are_clear_errors(client, body, status, message):
    r = client.post("/api/stores/wn/probe", json=body)
    assert r.status_code == status and message in r.json()["error"]


def test_probes_tab_in_chromium(browser, folder):
    with running(create_app(stores=folder)) as url:
        page, errors, dialogs = open_app(browser, url)
        page.click('nav button[data-tab="corpus"]')
        page.wait_for_selector("#stores-table")
        page.locator("#stores-table tr[data-store='wn'] button.use-store").click()
        page.click('nav button[data-tab="probes"]')
        page.wait_for_selector("#probes-random option[value='wn-random']", state="attached")
        assert "store: wn" in page.locator("#probes-store").text_content()
        page.select_option("#probes-random", "wn-random")
        page.fill("#probes-limit", "300")
        page.click("#probes-run")
        page.wait_for_selector("#probes-table, #probes-error:not([hidden])")
        assert page.locator("#probes-error").is_hidden(), page.locator("#probes-error").text_content()
        assert page.locator("#probes-result svg polyline").count() == 6
        assert page.locator("#probes-table tr").count() == 3  # header + layers 0 and 3
        assert "pos (token, linear probe)" in page.locator("#probes-summary").text_content()
        page.fill("#probes-property", "colour")
        page.click("#probes-run")
        page.wait_for_selector("#probes-error:not([hidden])")
        assert "unknown token property" in page.locator("#probes-error").text_content()
        page.close()
        assert errors == [e for e in errors if "400" in e] and dialogs == []  # the refused request is the only console line
