"""The Factors tab: factor files next to their store, levels, one factor's curve and contexts, a word's senses."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shatterbox.corpus import Corpus, wordnet_corpus
from shatterbox.factors import Factors, contexts, fit_factors, word_senses
from shatterbox.store import Store, harvest
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("served")
    wordnet = wordnet_corpus()
    lowered = pc.utf8_lower(wordnet.table.column("word").fill_null(""))
    rows = np.flatnonzero(pc.is_in(lowered, value_set=pa.array(["heavy", "hot"])).to_numpy(zero_copy_only=False))
    texts = Corpus(wordnet.select(np.concatenate([rows, np.arange(60)])).table, "senses-test")
    store = harvest(texts, root / "senses", model=default_model, layers="1,2")
    fit_factors(store, n_factors=48, alpha=1.5, n_epochs=2, max_tokens=2000).save(root / "senses.factors")
    fit_factors(store, per_layer=True, n_factors=16, alpha=1.5, n_epochs=1, max_tokens=1000).save(root / "layers.factors")
    elsewhere = harvest(Corpus.from_texts(["a store outside the served folder"] * 20), tmp_path_factory.mktemp("elsewhere") / "s",
                        model=default_model, layers="1")
    fit_factors(elsewhere, n_factors=8, alpha=1.5, n_epochs=1, heldout=0.2).save(root / "orphan.factors")
    return root


@pytest.fixture(scope="module")
def client(folder):
    return local_client(create_app(stores=folder))


@pytest.mark.slow
def test_factor_files_are_listed_with_their_store(client):
    d = client.get("/api/factors").json()["factors"]
    assert [f["name"] for f in d] == ["layers.factors", "orphan.factors", "senses.factors"]
    assert "not in the served folder" in d[1]["error"] and "/tmp" not in d[1]["error"]
    assert d[2]["store"] == "senses" and set(d[2]["reports"]) == {"1", "2"} and sum(d[2]["levels"].values()) == 48
    assert sum(d[0]["levels"].values()) == 32 and d[0]["shared"] is False


def test_one_factor_has_its_curve_and_the_contexts_a_direct_read_gives(client, folder):
    factors, store = Factors.load(folder / "senses.factors"), Store.open(folder / "senses")
    index = int(np.argmax(factors.importance_.max(1)))
    d = client.get(f"/api/factors/senses.factors/factor/{index}").json()
    layer = factors.layers[int(factors.importance_[index].argmax())]
    assert d["peak_layer"] == layer and d["curve"] == pytest.approx(factors.importance_[index].tolist(), abs=1e-4)
    direct = contexts(factors, store, [index], layer, 8)[index]
    assert [(c["sentence_id"], round(c["value"], 4)) for c in d["contexts"]] == [(c["sentence_id"], round(c["value"], 4)) for c in direct]
    level = client.get(f"/api/factors/senses.factors/level/{d['level']}").json()
    assert index in [f["factor"] for f in level["factors"]]


def test_a_word_shows_senses_as_factor_groups(client, folder):
    d = client.post("/api/factors/senses.factors/word", json={"word": "heavy"}).json()
    expected = word_senses(Factors.load(folder / "senses.factors"), Store.open(folder / "senses"), "heavy")
    assert d["factor_ari"] == pytest.approx(expected["factor_ari"]) and len(d["rows"]) == d["occurrences"] >= 15
    assert all(r["text"][r["start"]:r["end"]].lower().startswith("heav") for r in d["rows"])
    bad = client.post("/api/factors/senses.factors/word", json={"word": "the"})
    assert bad.status_code == 400 and "try one of" in bad.json()["error"]


@pytest.mark.parametrize("path", ["/api/factors/..%2fsenses.factors/factor/1", "/api/factors/nope.factors/factor/1",
                                  "/api/factors/senses/factor/1", "/api/factors/senses.factors/factor/999", "/api/factors/senses.factors/level/top"])
def test_only_factor_files_of_the_folder_are_read(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "error" in r.json()


@pytest.mark.slow
def test_factors_tab_in_chromium(browser, folder):
    with running(create_app(stores=folder)) as url:
        page, errors, dialogs = open_app(browser, url)
        page.click('nav button[data-tab="factors"]')
        page.click('button[data-factors="senses.factors"]')
        page.wait_for_selector("#factors-quality")
        assert page.locator("#factors-quality tr").count() == 3  # header + layers 1, 2
        level = next(l for l in ("low", "mid", "high") if page.locator(f'button[data-level="{l}"]').text_content() != f"{l} (0)")
        page.click(f'button[data-level="{level}"]')
        page.wait_for_selector("button.factor")
        first = page.locator("button.factor").first
        index = int(first.get_attribute("data-factor"))
        first.click()
        page.wait_for_selector("#factor-contexts li")
        api = local_client(create_app(stores=folder)).get(f"/api/factors/senses.factors/factor/{index}").json()
        assert page.locator("#factor-contexts mark").all_text_contents() == [c["text"][c["start"]:c["end"]] for c in api["contexts"]]
        page.fill("#factors-word", "heavy")
        page.click("#factors-run")
        page.wait_for_selector("#sense-groups tr td")
        assert page.locator("#sense-groups tr").count() == 1 + api_word_rows(folder)
        page.close()
        assert errors == [] and dialogs == []


def api_word_rows(folder) -> int:
    return len(local_client(create_app(stores=folder)).post("/api/factors/senses.factors/word", json={"word": "heavy"}).json()["rows"])


def test_a_per_layer_factor_reads_its_contexts_with_its_own_dictionary(client, folder):
    factors, store = Factors.load(folder / "layers.factors"), Store.open(folder / "senses")
    index = 16 + int(np.argmax(factors.importance_[16:].max(1)))  # the strongest factor of the layer-2 dictionary
    d = client.get(f"/api/factors/layers.factors/factor/{index}").json()
    layer = d["peak_layer"]
    hidden = store.activations(f"hidden_{layer}", "not special")
    own = factors.models[2].transform((hidden - factors.mean[layer]) / factors.scale[layer])[:, index - 16]
    assert [c["value"] for c in d["contexts"]] == pytest.approx(np.sort(own[own > 0])[::-1][:8].tolist(), rel=1e-5)
    assert d["home"] == 2 and client.get("/api/factors/layers.factors/factor/32").status_code == 404
