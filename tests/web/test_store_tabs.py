"""The Probes and Projector tabs: the API equals the library, plots are Python's, the tabs work in Chromium."""

import pytest

from shatterbox.classifiers.sentiment import sentiment
from shatterbox.corpus import load_corpus
from shatterbox.models import random_weights
from shatterbox.probes import probe
from shatterbox.projector import predictions
from shatterbox.store import Store, harvest
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app


def use_store(page, name: str) -> None:
    """Choose store ``name`` in the Corpus tab, as a user does before the store tabs."""
    page.click('nav button[data-tab="corpus"]')
    page.wait_for_selector("#stores-table")
    page.locator(f"#stores-table tr[data-store='{name}'] button.use-store").click()


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_probes_tab_in_chromium(browser, folder):
    with running(create_app(stores=folder)) as url:
        page, errors, dialogs = open_app(browser, url)
        use_store(page, "wn")
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


@pytest.mark.slow
def test_project_api_equals_the_library(client, folder):
    from shatterbox.projector import point_vectors, project_layers, sentence_points

    d = client.post("/api/stores/wn/project", json={"limit": 50, "colour": "pos"}).json()
    store = Store.open(folder / "wn")
    points = sentence_points(store, limit=50)
    maps = project_layers(point_vectors(store, points, [0, 3]))
    assert [x["layer"] for x in d["layers"]] == [0, 3] and d["defaultColour"] == "pos"
    assert d["layers"][1]["x"][:5] == pytest.approx(maps[1].coords[:5, 0], abs=1e-4)
    assert d["layers"][1]["trust"] == pytest.approx(maps[1].trustworthiness)
    predicted = client.post("/api/stores/wn/project", json={"limit": 50, "predict": True}).json()  # the classifier runs: no layer 6 needed
    labels = predictions(store, points, sentiment())[0]
    names = predicted["colourings"]["prediction"]["names"]
    assert [names[c] for c in predicted["colourings"]["prediction"]["codes"]] == labels
    bad = client.post("/api/stores/wn/project", json={"method": "tsne"})
    assert bad.status_code == 422 and "method" in bad.json()["error"]


@pytest.mark.slow
def test_projector_tab_opens_a_sentence_in_the_attention_tab(browser, folder):
    with running(create_app(stores=folder)) as url:
        page, errors, dialogs = open_app(browser, url)
        use_store(page, "wn")
        page.click('nav button[data-tab="projector"]')
        page.fill("#proj-limit", "40")
        page.uncheck("#proj-predict")  # the test store holds layers 0 and 3, not the classifier's layer 6
        page.click("#proj-run")
        page.wait_for_selector("#sbp-canvas")
        assert "PCA of 40 sentences at layer 3" in page.locator("#sbp-quality").text_content()
        screen = page.evaluate("document.getElementById('proj-result').sbProjector.screen()")
        box = page.locator("#sbp-canvas").bounding_box()
        page.mouse.move(box["x"] + screen[0], box["y"] + screen[1])
        text = page.locator("#sbp-tip").text_content()
        page.mouse.click(box["x"] + screen[0], box["y"] + screen[1])
        page.wait_for_selector("#tab-attention:not([hidden])")
        assert text.startswith(page.locator("#att-text").input_value())
        page.wait_for_selector("#sb-lines")  # the sentence's attention is drawn
        page.close()
        assert errors == [] and dialogs == []


def test_project_api_colours_by_a_factor_of_the_served_folder(folder):
    from shatterbox.factors import fit_factors
    from shatterbox.projector import factor_values, token_points

    store = Store.open(folder / "wn")
    fitted = fit_factors(store, n_factors=8, n_epochs=1, max_tokens=400)
    fitted.save(folder / "wn8.factors")
    try:
        client = local_client(create_app(stores=folder))
        d = client.post("/api/stores/wn/project", json={"level": "token", "limit": 40, "factors": "wn8.factors", "factor": 5}).json()
        name, want = factor_values(fitted, 5, store, token_points(store, limit=40))
        assert d["defaultColour"] == name and d["colourings"][name]["values"] == pytest.approx(want, abs=1e-4)
        other = client.post("/api/stores/wn-random/project", json={"limit": 40, "factors": "wn8.factors"})
        assert other.status_code == 400 and "fitted on the store 'wn'" in other.json()["error"]
        assert client.post("/api/stores/wn/project", json={"factors": "nope.factors"}).status_code == 404
    finally:
        (folder / "wn8.factors").unlink()
