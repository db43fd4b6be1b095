"""The Patching tab: the API equals the library, the maps Chromium draws carry the library's effects cell by cell (the one
drawing, plots.js, also used by pages and notebooks), a click shows the patched prediction, bad input is one message."""

import numpy as np
import pytest

from shatterbox.patching import attribution_patch, patch
from shatterbox.web import create_app, running
from tests.conftest import local_client, open_app

BODY = {"clean": "The film was not bad.", "corrupt": "The film was very bad.", "component": "head", "positions": "each", "layers": [2, 3]}


@pytest.fixture(scope="module")
def client():
    return local_client(create_app())


@pytest.mark.slow
def test_the_api_equals_the_library(client):
    d = client.post("/api/patch", json=BODY).json()
    served = create_app().state.served.classifier
    exact = patch(BODY["clean"], BODY["corrupt"], served, component="head", positions="each", layers=[2, 3])
    approx = attribution_patch(BODY["clean"], BODY["corrupt"], served, component="head", positions="each", layers=[2, 3])
    assert np.allclose(np.array(d["result"]["values"], float), exact.values, atol=1e-5)
    assert np.allclose(np.array(d["other"]["values"], float), approx.values, atol=1e-5)
    assert d["agreement"] == pytest.approx(exact.agreement(approx), abs=1e-6) and d["result"]["dims"] == ["layer", "head", "position"]


@pytest.mark.parametrize("body, status, message", [
    ({**BODY, "corrupt": "A quite different and much longer sentence than that one."}, 400, "differ in length"),
    ({**BODY, "component": "neurons"}, 422, "component"),
    ({**BODY, "layers": [9]}, 400, "layer 9 is out of range for head"),
    ({**BODY, "model": "decoder"}, 400, "needs a decoder: start the app with `shatterbox serve --decoder gemma-3-270m`"),
    ({**BODY, "answer": " Paris"}, 400, "a classifier is measured by label=NAME, not by an answer"),
])
def test_bad_patch_requests_are_clear_errors(client, body, status, message):
    r = client.post("/api/patch", json=body)
    assert r.status_code == status and message in r.json()["error"], r.json()


@pytest.mark.browser
def test_patching_tab_in_chromium(browser):
    expected = patch(BODY["clean"], BODY["corrupt"], create_app().state.served.classifier, component="hidden")
    with running(create_app()) as url:
        page, errors, dialogs = open_app(browser, url)
        page.click('nav button[data-tab="patching"]')
        page.select_option("#pt-method", "exact")
        page.click("#pt-run")
        page.wait_for_selector("#pt-result table.patch-map, #pt-error:not([hidden])")
        assert page.locator("#pt-error").is_hidden(), page.locator("#pt-error").text_content()
        drawn = page.eval_on_selector_all("#pt-result table.patch-map td.patch-cell", "cells => cells.map(c => +c.dataset.value)")
        assert np.allclose(np.array(drawn), expected.effect.ravel(), atol=1e-6)  # hidden 0..6 x 8 positions, row by row
        texts = page.eval_on_selector_all("#pt-result table.patch-map td.patch-cell", "cells => cells.map(c => c.textContent)")
        assert texts == [str(int(np.round(100 * v)) or 0) for v in expected.effect.ravel()]
        page.locator("#pt-result td.patch-cell").nth(4).click()  # hidden 0, "not→very": the whole flip
        shown = page.locator("#pt-result .patch-picked").text_content()
        assert "layer 0, position not→very: effect 1.000" in shown and "patched prediction “positive”" in shown
        page.fill("#pt-corrupt", "A much longer corrupted sentence than the clean one.")
        page.click("#pt-run")
        page.wait_for_selector("#pt-error:not([hidden])")
        assert "differ in length" in page.locator("#pt-error").text_content()
        page.close()
        assert [e for e in errors if "400" not in e] == [] and dialogs == []
