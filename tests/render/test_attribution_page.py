"""The attribution page in Chromium: switching the label switches the words and the figures above them."""

import shatterbox as sb
import numpy as np
import pytest

from shatterbox.attribution import ValueGame, explain
from tests.conftest import watch


def test_switching_the_label_switches_its_header_line(tmp_path, browser):
    weights = np.array([[0.5, -0.5], [-0.2, 0.2], [0.1, -0.1]])
    a = explain(ValueGame(["good", "bad", "plot"], lambda m: 0.2 + m @ weights * 0.5, labels=["positive", "negative"]), method="exact")
    page_file = tmp_path / "a.html"
    page_file.write_text(sb.to_html(a), encoding="utf-8")
    pg = browser.new_page()
    errors, _ = watch(pg)
    pg.goto(page_file.as_uri())
    meta = pg.locator(".ex-attr .ex-prediction")
    assert meta.count() == 1 and meta.text_content().startswith(f"{a.labels[a.label]}: {a.prediction[a.label]:.3f}")
    other = 1 - a.label
    pg.locator(f"button[data-label='{other}']").click()
    assert meta.count() == 1 and meta.text_content().startswith(f"{a.labels[other]}: {a.prediction[other]:.3f}")
    assert f"{a.base[other]:.3f} with every word masked" in meta.text_content()
    scale = float(pg.locator(".ex-legend").first.get_attribute("data-scale"))
    assert scale == pytest.approx(np.abs(a.values).max(), rel=1e-5) and f"+{scale:.3f}" in pg.locator(".ex-legend").first.text_content()
    pg.close()
    assert errors == []
