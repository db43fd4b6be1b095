"""The web app in real headless Chromium, against the server on a free loopback port."""

import numpy as np
import pytest

import shatterbox as sb
from shatterbox.web import create_app, running
from tests.conftest import CHAPTER, open_app


@pytest.fixture(scope="module")
def url():
    with running(create_app()) as address:
        assert address.startswith("http://127.0.0.1:")
        yield address


@pytest.fixture
def expect_400():
    """Set ``expect_400["ok"] = True`` in a test that sends bad input on purpose: Chromium logs the 400 response."""
    return {"ok": False}


@pytest.fixture
def page(browser, url, expect_400):
    pg, errors, dialogs = open_app(browser, url, height=1000)
    yield pg
    pg.close()
    if expect_400["ok"]:
        errors = [e for e in errors if "the server responded with a status of 400" not in e]
    assert errors == [] and dialogs == []


@pytest.mark.slow
def test_attention_tab_layer_6_head_6_and_word_ranking(page, default_model, tmp_path):
    trace = sb.capture(default_model, CHAPTER)
    page.fill("#att-text", CHAPTER)
    page.select_option("#att-layer", "6")
    page.select_option("#att-head", "6")
    page.click("#att-run")
    page.wait_for_selector("#sb-table")
    assert "layer 6, head 6" in page.locator("#sb-tableview h3").text_content()
    header = page.locator("#sb-table tr").first.locator("th").all_text_contents()[1:]
    assert header == trace.labels
    cells = page.locator("#sb-table tr").nth(2).locator("td").all_text_contents()
    np.testing.assert_allclose([float(c) for c in cells], trace.attentions[5, 5, 1], atol=6e-4)
    page.locator("th.sb-rowhead[data-i='1']").click()  # "transformers"
    items = page.locator("#sb-ranking li").all_text_contents()
    expected = sb.attends_to(trace, 6, 6, 1, level="token")
    assert len(items) == trace.n_tokens and items[0].split()[0] == expected.items[0][0]
    assert "layer 6, head 6" in page.locator("#sb-ranking h3").text_content()
    assert page.locator("th.sb-rowhead.sb-chosen").all_text_contents() == ["transformers"]  # the clicked row stays marked
    page.locator("th.sb-rowhead[data-i='3']").click()
    assert page.locator("th.sb-rowhead.sb-chosen").all_text_contents() == [trace.labels[3]]
    page.screenshot(path=str(tmp_path / "attention-tab.png"), full_page=True)


@pytest.mark.slow
def test_explain_tab_colours_words_and_compares_an_edit(page, tmp_path):
    page.click("nav button[data-tab='explain']")
    page.fill("#ex-text", "I love playing chess with my friends.")
    page.click("#ex-run")
    page.wait_for_selector("#ex-result .ex-word")
    words = page.locator("#ex-result .ex-word")
    assert words.all_text_contents() == ["I", "love", "playing", "chess", "with", "my", "friends", "."]
    colours = words.evaluate_all("ws => ws.map(w => getComputedStyle(w).backgroundColor)")
    assert len(set(colours)) > 3 and any(c.startswith("rgba(255, 0, 81") for c in colours)
    from shatterbox.classifiers.sentiment import sentiment

    positive = sentiment().predict(["I love playing chess with my friends."])[0, 1]
    assert f"positive: {positive:.3f}" in page.locator("#ex-result .ex-prediction").text_content()
    legend = page.locator("#ex-result .ex-legend")
    titles = page.locator("#ex-result .ex-word").evaluate_all("ws => ws.map(w => Math.abs(parseFloat(w.title.split(': ')[1])))")
    assert float(legend.get_attribute("data-scale")) == pytest.approx(max(titles), abs=1e-4)  # the darkest word is the scale's end
    assert f"+{float(legend.get_attribute('data-scale')):.3f}" in legend.text_content()
    assert page.locator("#ex-result .ex-faith td").count() == 6 and page.locator("#ex-result .ex-faith polyline").count() == 2
    page.select_option("#ex-method", "quick")
    page.click("#ex-run")
    page.wait_for_selector("#ex-result .ex-attr[data-method='sampled']")
    assert "2 antithetic permutation pairs" in page.locator("#ex-result .ex-note").first.text_content()
    page.fill("#cf-text", "I hate playing chess with my friends.")
    page.click("#cf-run")
    page.wait_for_selector("#cf-delta")
    assert page.locator("#cf-result .cf-col").count() == 2
    assert "changed by -" in page.locator("#cf-delta").text_content()
    page.screenshot(path=str(tmp_path / "explain-tab.png"), full_page=True)


@pytest.mark.slow
def test_the_header_names_the_model(page):
    page.wait_for_function("document.getElementById('model-name').textContent.length > 0")
    assert page.locator("#model-name").text_content().startswith("all-MiniLM-L6-v2 (default) · 6 layers")


@pytest.mark.slow
def test_a_running_explanation_says_what_it_costs(page):
    page.click("nav button[data-tab='explain']")
    page.evaluate("""() => { window.seen = []; const p = document.getElementById('ex-progress');
        new MutationObserver(() => { if (!p.hidden) window.seen.push(p.textContent); }).observe(p, {childList: true, attributes: true, characterData: true, subtree: true}); }""")
    page.fill("#ex-text", "I love playing chess with my friends.")
    page.click("#ex-run")
    page.wait_for_selector("#ex-result .ex-word")
    seen = page.evaluate("window.seen")
    assert seen and seen[0] == "explaining: 8 words · exact 256 model evaluations at most (+18 per method for faithfulness) · 0 s elapsedCancel"
    assert page.locator("#ex-progress").is_hidden()


@pytest.mark.slow
def test_heads_tab(page, tmp_path):
    page.click("nav button[data-tab='heads']")
    page.click("#heads-run")
    page.wait_for_selector("#heads-ranking")
    assert page.locator("#heads-grid tr").count() == 7 and page.locator("#heads-ranking tr").count() == 16
    page.screenshot(path=str(tmp_path / "heads-tab.png"), full_page=True)


@pytest.mark.slow
def test_empty_sentence_shows_the_error_next_to_the_input(page, expect_400):
    expect_400["ok"] = True
    page.fill("#att-text", "")
    page.click("#att-run")
    page.wait_for_selector("#att-error:not([hidden])")
    assert "empty" in page.locator("#att-error").text_content()
    page.click("nav button[data-tab='explain']")
    page.fill("#ex-text", "   ")
    page.click("#ex-run")
    page.wait_for_selector("#ex-error:not([hidden])")
    assert "empty" in page.locator("#ex-error").text_content()


@pytest.mark.slow
def test_markup_typed_into_the_box_is_text(page):
    hostile = "<img src=x onerror=alert(1)> loves <b>chess</b>"
    page.fill("#att-text", hostile)
    page.click("#att-run")
    page.wait_for_selector("#sb-table")
    assert page.locator("img").count() == 0 and page.locator("#sb-table b").count() == 0
    assert "<" in page.locator("#sb-table tr").first.text_content()
    page.click("nav button[data-tab='explain']")
    page.fill("#ex-text", hostile)
    page.click("#ex-run")
    page.wait_for_selector("#ex-result .ex-word")
    assert page.locator("img").count() == 0 and "<" in page.locator("#ex-result .ex-words").text_content()


@pytest.mark.slow
def test_nothing_stale_stays_and_the_counterfactual_compares_like_with_like(page, expect_400):
    expect_400["ok"] = True
    page.fill("#att-text", CHAPTER)
    page.locator("#att-text").press("Control+Enter")  # Ctrl+Enter submits
    page.wait_for_selector("#sb-table")
    page.fill("#att-text", "word " * 1100)  # over the server's 5,000 characters: an error, and the old views go
    page.click("#att-run")
    page.wait_for_selector("#att-error:not([hidden])")
    assert page.locator("#sb-table").count() == 0 and page.locator("#att-views").inner_html() == ""
    page.fill("#att-text", "word " * 600)  # under the character limit, over 512 tokens: a warning, not an error
    page.click("#att-run")
    page.wait_for_selector("#sb-table")
    assert page.locator("#att-error").is_hidden() and "cut off" in page.locator("#att-warning").text_content()
    page.click("nav button[data-tab='explain']")
    page.fill("#ex-text", "I love playing chess with my friends.")
    page.click("#ex-run")
    page.wait_for_selector("#ex-result .ex-word")
    # the main box now holds another sentence (9 words: sampled); the edit has 8 (exact by default)
    current = "The film was not good at all, sadly."
    page.fill("#ex-text", current)
    page.fill("#cf-text", "The film was really good at all.")
    page.click("#cf-run")
    page.wait_for_selector("#cf-delta")
    original = page.locator("#cf-result .cf-col[data-side='original']")
    assert " ".join(original.locator(".ex-word").all_text_contents()).startswith("The film was not good")
    methods = page.locator("#cf-result .ex-attr").evaluate_all("bs => bs.map(b => b.getAttribute('data-method'))")
    assert methods == ["sampled", "sampled"]
    alphas = page.locator("#cf-result .ex-word").evaluate_all(
        "ws => ws.map(w => { const m = getComputedStyle(w).backgroundColor.match(/[\\d.]+/g); return m.length > 3 ? +m[3] : 1; })")
    assert max(alphas) == pytest.approx(1.0) and sum(a == pytest.approx(1.0) for a in alphas) == 1  # one scale for both sides
    page.fill("#cf-text", "   ")
    page.click("#cf-run")
    page.wait_for_selector("#cf-error:not([hidden])")
    page.click("#ex-run")  # a new explanation clears the counterfactual's error and result
    page.wait_for_selector("#ex-result .ex-word")
    assert page.locator("#cf-error").is_hidden() and page.locator("#cf-result").inner_html() == ""


@pytest.mark.slow
def test_one_layer_and_head_state_and_heads_open_in_attention(page):
    page.fill("#att-text", CHAPTER)
    page.click("#att-run")
    page.wait_for_selector("#sb-table")
    page.locator("canvas[data-layer='3'][data-head='7']").click()  # a thumbnail of the model view
    assert (page.input_value("#att-layer"), page.input_value("#att-head")) == ("4", "8")
    page.select_option("#sb-layer", "1")  # the views' own layer select
    assert page.input_value("#att-layer") == "2" and "layer 2, head 8" in page.locator("#sb-tableview h3").text_content()
    page.select_option("#att-head", "3")  # and the form drives the views
    assert "layer 2, head 3" in page.locator("#sb-tableview h3").text_content()
    assert page.locator("#sb-heads input:checked").evaluate_all("cs => cs.map(c => c.getAttribute('data-head'))") == ["2"]
    page.click("nav button[data-tab='heads']")
    page.click("#heads-run")
    page.wait_for_selector("#heads-ranking")
    layer, head = page.locator("#heads-ranking tr").nth(1).locator("td").all_text_contents()[1:3]
    page.locator("#heads-ranking tr").nth(1).click()
    assert page.locator("#tab-attention").is_visible()
    assert f"layer {layer}, head {head}" in page.locator("#sb-tableview h3").text_content()
    page.click("nav button[data-tab='heads']")
    page.locator("#heads-grid td[data-layer='5'][data-head='2']").click()
    assert (page.input_value("#att-layer"), page.input_value("#att-head")) == ("5", "2")
    assert "layer 5, head 2" in page.locator("#sb-tableview h3").text_content()
