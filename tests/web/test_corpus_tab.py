"""The Corpus tab: stores of the served folder listed, one chosen for the corpus tabs, word occurrences found."""

import pytest

from shatterbox.corpus import Corpus
from shatterbox.store import harvest
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app

TEXTS = ["The bank raised its rates.", "We sat on the river bank and watched the banks.", "<img src=x onerror=alert(1)> bank"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model, tiny_models):
    root = tmp_path_factory.mktemp("stores")
    harvest(Corpus.from_texts(TEXTS), root / "banks", model=default_model, layers="1")
    harvest(Corpus.from_texts(["tiny text"]), root / "tiny", model=tiny_models["bert"], layers="1")
    (root / "not-a-store").mkdir()
    return root


@pytest.fixture(scope="module")
def client(folder):
    return local_client(create_app(stores=folder))


def test_stores_are_listed_with_their_model(client, default_model):
    from shatterbox.store import model_hash

    d = client.get("/api/stores").json()
    assert [s["name"] for s in d["stores"]] == ["banks", "tiny"]
    banks, tiny = d["stores"]
    assert banks["model"]["hash"] == d["model_hash"] == model_hash(default_model) != tiny["model"]["hash"]
    assert banks["corpus"]["sentences"] == 3 and banks["complete"] and "path" not in banks


def test_occurrences_merge_word_pieces_and_give_character_spans(client):
    d = client.post("/api/stores/banks/occurrences", json={"word": "BANK"}).json()
    assert d["total"] == 3
    assert [(r["sentence_id"], r["text"][r["char_start"]:r["char_end"]]) for r in d["rows"]] == [(0, "bank"), (1, "bank"), (2, "bank")]
    assert client.post("/api/stores/banks/occurrences", json={"word": "banks"}).json()["total"] == 1


@pytest.mark.parametrize("name", ["../banks", "..", "nope", "not-a-store", "%2e%2e"])
def test_only_stores_of_the_folder_can_be_read(client, name):
    r = client.post(f"/api/stores/{name}/occurrences", json={"word": "bank"})
    assert r.status_code == 404 and "error" in r.json()


def test_without_a_folder_the_tab_says_how_to_serve_one():
    from shatterbox.web import create_app as make

    c = local_client(make())
    assert c.get("/api/stores").json()["stores"] == []
    r = c.post("/api/stores/banks/occurrences", json={"word": "bank"})
    assert r.status_code == 404 and "--stores DIR" in r.json()["error"]


@pytest.mark.slow
def test_corpus_tab_in_chromium(browser, folder):
    with running(create_app(stores=folder)) as url:
        page, errors, dialogs = open_app(browser, url)
        page.click('nav button[data-tab="corpus"]')
        page.wait_for_selector("#stores-table")
        rows = page.locator("#stores-table tr[data-store]")
        assert rows.count() == 2
        assert "(served model)" in rows.nth(0).text_content() and "(another model)" in rows.nth(1).text_content()
        rows.nth(0).locator("button.use-store").click()
        assert page.evaluate("window.shatterboxStore") == "banks"
        assert "hidden_1[384]" in page.locator("#corpus-selected").text_content()
        page.fill("#corpus-word", "bank")
        page.click("#corpus-run")
        page.wait_for_selector("#occurrences li")
        assert page.locator("#occurrences mark").all_text_contents() == ["bank", "bank", "bank"]
        assert page.locator("#occurrences li").nth(2).text_content().startswith("<img src=x onerror=alert(1)> bank")
        assert page.locator("#occurrences img").count() == 0
        page.reload()
        page.wait_for_selector("#att-layer option", state="attached")
        page.click('nav button[data-tab="corpus"]')
        page.wait_for_selector("#stores-table tr.chosen")  # the choice survives a reload
        assert page.evaluate("window.shatterboxStore") == "banks"
        page.close()
        assert errors == [] and dialogs == []
