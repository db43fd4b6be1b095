"""The tabs as a new user meets them (issue 29): no old result under a new error, links that carry their text, empty
or out-of-range inputs answered with one clear line beside the input, lists that say "N of M", and only what the
chosen store can answer offered."""

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.factors import fit_factors
from shatterbox.store import harvest
from shatterbox.web import create_app, running
from tests.conftest import open_app
from tests.web.test_store_tabs import use_store


@pytest.fixture(scope="module")
def served(tmp_path_factory, default_model, browser):
    root = tmp_path_factory.mktemp("new-user")
    store = harvest(load_corpus("wordnet", limit=300, seed=6), root / "wn", model=default_model, layers="0,3", what="hidden,mlp")
    fit_factors(store, layers=[3], n_factors=16, n_epochs=1).save(root / "f.factors")
    with running(create_app(stores=root)) as url:
        page, errors, dialogs = open_app(browser, url)
        yield page, errors, dialogs
        page.close()


def _error(page, selector: str) -> str:
    page.wait_for_selector(f"{selector}:not([hidden])")
    return page.inner_text(selector)


@pytest.mark.slow
def test_heads_clears_its_old_result_on_error_and_opens_the_ranked_sentence(served):
    page, errors, _ = served
    errors.clear()  # one page for the module: each test answers for its own console
    page.fill("#att-text", "An older sentence about cats.")
    page.click("nav button[data-tab='heads']")
    page.fill("#heads-texts", "The striker scored twice.")
    page.click("#heads-run")
    page.wait_for_selector("#heads-grid")
    page.fill("#heads-texts", "  ")
    page.click("#heads-run")
    assert _error(page, "#heads-error") == "type one sentence or more, one per line"
    assert page.inner_text("#heads-result") == ""  # the old heat map does not stay under the error
    page.fill("#heads-texts", "The striker scored twice.\nA second line.")
    page.click("#heads-run")
    page.wait_for_selector("#heads-grid td[data-layer='2'][data-head='3']")
    page.click("#heads-grid td[data-layer='2'][data-head='3']")
    page.wait_for_selector("#att-views canvas, #att-views svg")
    assert page.input_value("#att-text") == "The striker scored twice." and page.input_value("#att-layer") == "2"
    assert errors == []


@pytest.mark.slow
def test_empty_and_out_of_range_inputs_get_one_line_beside_them(served):
    page, errors, _ = served
    errors.clear()  # one page for the module: each test answers for its own console
    use_store(page, "wn")
    page.fill("#corpus-word", "")
    page.click("#corpus-run")
    assert _error(page, "#corpus-error") == "type a word to search for, e.g. bank"
    page.click("nav button[data-tab='explain']")
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "explain-corpus" in r.url else None)
    for value, shown in (("0", "(not 0)"), ("", "")):
        page.fill("#ds-limit", value)
        page.click("#ds-run")
        assert _error(page, "#ds-error") == f"how many sentences: give a whole number from 2 to 1000{' ' + shown if shown else ''}"
    assert sent == []  # nothing ran: no silent 200 texts
    page.click("nav button[data-tab='neurons']")
    page.wait_for_selector("#neurons-layer option", state="attached")
    page.fill("#neurons-unit", "")
    page.click("#neurons-run")
    assert _error(page, "#neurons-error") == "unit: give a whole number from 0 to 1535"
    assert errors == []


@pytest.mark.slow
def test_corpus_hits_say_how_many_of_how_many_and_page(served):
    page, errors, _ = served
    errors.clear()  # one page for the module: each test answers for its own console
    use_store(page, "wn")
    page.fill("#corpus-word", "the")
    page.click("#corpus-run")
    page.wait_for_selector("#corpus-result .total")
    total = page.inner_text("#corpus-result .total")
    assert total.startswith("1–20 of ") and total.endswith(" occurrences of the") and int(total.split(" of ")[1].split()[0].replace(",", "")) > 40
    first = page.inner_text("#occurrences li >> nth=0")
    page.click("#corpus-result button.page")  # next 20
    page.wait_for_function("() => document.querySelector('#corpus-result .total').textContent.startsWith('21–40 of ')")
    assert page.inner_text("#occurrences li >> nth=0") != first and page.locator("#occurrences li").count() == 20
    assert errors == []


@pytest.mark.slow
def test_projector_says_the_true_count_and_probes_offer_what_the_store_has(served):
    page, errors, _ = served
    errors.clear()  # one page for the module: each test answers for its own console
    use_store(page, "wn")
    page.click("nav button[data-tab='projector']")
    page.fill("#proj-limit", "5000")
    page.click("#proj-run")
    page.wait_for_selector("#proj-progress:not([hidden])")
    assert page.inner_text("#proj-progress .job-text").startswith("mapping 300 sentences of wn")
    page.wait_for_selector("#proj-progress", state="hidden")
    page.click("nav button[data-tab='probes']")
    page.wait_for_selector("#probes-unavailable:not([hidden])")
    offered = page.eval_on_selector_all("#probes-properties option", "os => os.map(o => o.value)")
    assert offered == ["pos", "supersense"] and "sense (" in page.inner_text("#probes-unavailable")
    page.fill("#probes-property", "sense")
    page.click("#probes-run")
    assert _error(page, "#probes-error").startswith("sense cannot be probed on wn: 0 classes")
    assert errors == []


@pytest.mark.slow
def test_the_factors_word_error_sits_under_its_input_in_the_pages_words(served):
    page, errors, _ = served
    errors.clear()  # one page for the module: each test answers for its own console
    page.click("nav button[data-tab='factors']")
    page.wait_for_selector("#factors-form:not([hidden])")
    page.fill("#factors-word", "heavy")
    page.click("#factors-run")
    message = _error(page, "#factors-word-error")
    assert message.startswith("no word in the store wn has two senses") and "wordnet-senses" in message
    assert "sense_corpus" not in message and "min_examples" not in message and page.locator("#factors-error").is_hidden()
    box = page.locator("#factors-word-error").bounding_box()
    assert box["y"] > page.locator("#factors-word").bounding_box()["y"]  # below its input, not at the top of the tab
    assert [e for e in errors if "400" not in e] == []


@pytest.mark.slow
def test_zero_shot_shows_every_labels_probability(served):
    from shatterbox.attribution import explain
    from shatterbox.classifiers import zero_shot
    import shatterbox as sb

    page, errors, _ = served
    errors.clear()  # one page for the module: each test answers for its own console
    page.click("nav button[data-tab='explain']")
    page.fill("#ex-text", "The striker scored twice.")
    page.fill("#ex-zero", "sports, politics, science")
    page.click("#ex-run")
    page.wait_for_selector("#ex-result .ex-labels button")
    a = explain(zero_shot(["sports", "politics", "science"], sb.load()), "The striker scored twice.")
    shown = page.locator("#ex-result .ex-labels button").all_text_contents()
    assert shown == [f"{name} {p:.3f}" for name, p in zip(a.labels, a.prediction)]
    pressed = page.get_attribute("#ex-result .ex-labels button[aria-pressed='true']", "data-label")
    assert int(pressed) == a.label
    page.fill("#ex-zero", "")
    assert errors == []


@pytest.mark.slow
def test_rows_cells_and_maps_work_from_the_keyboard(served):
    page, errors, _ = served
    errors.clear()  # one page for the module: each test answers for its own console
    page.click("nav button[data-tab='heads']")
    page.fill("#heads-texts", "The striker scored twice.")
    page.click("#heads-run")
    page.wait_for_selector("#heads-grid td[data-layer='1'][data-head='1']")
    page.focus("#heads-grid td[data-layer='1'][data-head='1']")
    page.keyboard.press("Tab")  # the next cell is reached with Tab
    assert page.evaluate("() => [document.activeElement.dataset.layer, document.activeElement.dataset.head]") == ["1", "2"]
    page.keyboard.press("Enter")
    page.wait_for_selector("#tab-attention:not([hidden])")
    assert page.input_value("#att-head") == "2"
    page.wait_for_selector("#att-views canvas[data-layer='0'][data-head='0'][tabindex='0']")
    page.focus("#att-views canvas[data-layer='2'][data-head='4']")
    page.keyboard.press("Enter")  # a model-view thumbnail chosen with the keyboard selects its head
    page.wait_for_function("() => document.getElementById('att-layer').value === '3' && document.getElementById('att-head').value === '5'")
    use_store(page, "wn")
    page.click("nav button[data-tab='projector']")
    page.fill("#proj-limit", "50")
    page.click("#proj-run")
    page.wait_for_selector("#proj-result canvas[tabindex='0']")
    page.focus("#proj-result canvas[tabindex='0']")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # the first point opens its sentence in the Attention tab
    page.wait_for_selector("#tab-attention:not([hidden])")
    assert page.input_value("#att-text")
    help_text = page.text_content("#tab-attention [data-help]")  # inside the closed "How to read this"
    assert help_text.startswith("Each line joins a token")
    assert errors == []


@pytest.mark.slow
def test_a_request_over_a_second_shows_its_time_in_the_header(served):
    page, errors, _ = served
    errors.clear()
    page.evaluate("() => { const f = window.fetch; window.fetch = (...a) => new Promise(r => setTimeout(() => r(f(...a)), 3000)); }")
    page.click("nav button[data-tab='factors']")
    page.wait_for_selector("#waiting:not([hidden])", timeout=8000)
    assert page.inner_text("#waiting").startswith("waiting for factors · 1 s")
    page.wait_for_selector("#waiting", state="hidden", timeout=10000)
    page.evaluate("() => location.reload()")
    page.wait_for_selector("#att-layer option", state="attached")
    assert errors == []
