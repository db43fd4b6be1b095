"""The Explain tab's Dataset section: the API equals the library; the page shows the rankings and colours the
drill-down texts as Python does."""

import json
import re

from shatterbox.render.global_attribution import bars_svg

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.global_attribution import CorpusRun, CorpusSettings, dataset_payload, explain_corpus
from shatterbox.render.palette import diverging
from shatterbox.store import harvest
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app
from tests.web.test_store_tabs import use_store

TEXTS = ["I loved this film.", "A dull and boring film.", "The acting was wonderful.", "The plot was dull and slow.", "I loved the music.",
         "A boring story.", "What a wonderful day.", "The food was dull.", "", "I loved this film."]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("datasets")
    explain_corpus(TEXTS, None, root / "reviews", settings=CorpusSettings(pairs=2))
    harvest(load_corpus("wordnet", where={"kind": "example"}, limit=30, seed=3), root / "wn", model=default_model, layers="6")
    return root


@pytest.fixture(scope="module")
def client(folder):
    return local_client(create_app(stores=folder))


@pytest.mark.slow
def test_the_api_equals_the_library(client, folder):
    runs = client.get("/api/datasets").json()["runs"]
    assert [(r["name"], r["texts"]) for r in runs] == [("reviews", 8)]
    d = client.post("/api/datasets/reviews", json={"min_count": 2}).json()
    want = dataset_payload(CorpusRun.read(folder / "reviews"), min_count=2)
    assert d["words"] == want["words"] and d["skipped"] == {"duplicate": 1, "empty": 1}
    assert d["svg"]["negative"]["up"].startswith("<svg") and not client.get("/api/neurons").json()["runs"]  # not mistaken for a neuron run


@pytest.mark.slow
def test_explain_the_chosen_stores_sentences(client):
    d = client.post("/api/stores/wn/explain-corpus", json={"limit": 6, "min_count": 1}).json()
    assert d["texts"] == 6 and sorted(d["labels"]) == ["negative", "positive"]
    assert client.post("/api/datasets/nope", json={}).status_code == 404
    assert client.post("/api/stores/wn/explain-corpus", json={"limit": 5000}).status_code == 422
    assert client.post("/api/stores/wn/explain-corpus", json={"method": "owen"}).status_code == 422


@pytest.mark.slow
def test_explain_the_stores_sentences_with_kernel_shap(client, folder):
    from shatterbox.store import Store

    d = client.post("/api/stores/wn/explain-corpus", json={"limit": 6, "min_count": 1, "method": "kernel"}).json()
    texts = Store.open(folder / "wn").query("select text from sentences order by id limit 6").column(0).to_pylist()
    want = dataset_payload(explain_corpus(texts, None, settings=CorpusSettings(method="kernel", pairs=None)), min_count=1)
    assert d["texts"] == 6
    for label in ("negative", "positive"):
        for direction in ("up", "down"):
            got = [(r["word"], r["texts"], r["mean"]) for r in d["words"][label][direction]]
            assert got == [(r["word"], r["texts"], pytest.approx(r["mean"], abs=1e-9)) for r in want["words"][label][direction]] and got


@pytest.mark.slow
def test_dataset_section_in_chromium(browser, folder):
    want = dataset_payload(CorpusRun.read(folder / "reviews"), min_count=2)
    with running(create_app(stores=folder)) as url:
        page, errors, dialogs = open_app(browser, url)
        page.click('nav button[data-tab="explain"]')
        page.wait_for_selector("#ds-runs option[value='reviews']", state="attached")
        page.select_option("#ds-runs", "reviews")
        page.fill("#ds-min", "2")
        page.click("#ds-open")
        page.wait_for_selector(".ds-words[data-label='negative'][data-direction='up'] tr[data-word]")
        shown = page.eval_on_selector_all(".ds-words[data-label='negative'][data-direction='up'] tr[data-word]", "rs => rs.map(r => r.dataset.word)")
        assert shown == [r["word"] for r in want["words"]["negative"]["up"]]
        for label in ("negative", "positive"):  # each list holds only the words on its side
            for direction, sign in (("up", 1), ("down", -1)):
                means = page.eval_on_selector_all(f".ds-words[data-label='{label}'][data-direction='{direction}'] tr[data-word]",
                                                  "rs => rs.map(r => parseFloat(r.children[1].textContent))")
                assert all(sign * m > 0 for m in means), (label, direction, means)
        bars = page.eval_on_selector_all("#ds-result svg rect", "rs => rs.map(r => [r.namespaceURI, r.getBBox().width, +r.getAttribute('width')])")
        svg = "".join(bars_svg(want["words"][label][d]) for label in want["labels"] for d in ("up", "down"))
        drawn = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)"', svg)]
        assert bars and all(ns == "http://www.w3.org/2000/svg" for ns, _, _ in bars)  # real SVG, not unknown elements
        assert [round(w, 1) for _, w, _ in bars] == drawn  # the widths the Python payload gives
        page.locator(".ds-words[data-label='negative'][data-direction='up'] tr[data-word]").first.click()
        page.wait_for_selector("#ds-detail .ds-text")
        first = want["words"]["negative"]["up"][0]["texts_shown"][0]
        colours = page.eval_on_selector_all("#ds-detail .ds-text:first-of-type .ex-word", "ws => ws.map(w => w.style.background)")
        scale = max(abs(v) for v in first["values"])
        for got, value in zip(colours, first["values"]):
            r, g, b, alpha = diverging(value / scale)
            numbers = [float(x) for x in re.findall(r"[\d.]+", got)]
            alpha_got = numbers[3] if len(numbers) == 4 else 1.0
            assert numbers[:3] == [r, g, b] and alpha_got == pytest.approx(alpha, abs=1 / 255 + 1e-3)  # the browser keeps alpha in 8 bits
        assert page.locator("#ds-detail .ex-hit").count() >= 1
        use_store(page, "wn")
        page.click('nav button[data-tab="explain"]')
        page.fill("#ds-limit", "4")
        page.fill("#ds-min", "1")
        page.click("#ds-run")
        page.wait_for_selector("#ds-summary")
        assert page.inner_text("#ds-summary").startswith("4 texts explained")
        page.select_option("#ds-method", "kernel")
        with page.expect_request("**/explain-corpus") as sent:
            page.click("#ds-run")
        assert json.loads(sent.value.post_data) == {"min_count": 1, "limit": 4, "method": "kernel"}
        page.wait_for_selector("#ds-summary")
        assert page.inner_text("#ds-summary").startswith("4 texts explained")
        assert not errors and not dialogs
