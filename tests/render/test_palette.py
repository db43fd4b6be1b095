"""One palette: the page's JavaScript colours a value exactly as Python does (in Chromium), and nothing else
writes the palette's colours out again."""

import re
from pathlib import Path

import numpy as np
import pytest

from shatterbox.render.html import palette_script
from shatterbox.render.palette import DOWN, HIGH, UP, diverging, ramp

SRC = Path(__file__).resolve().parents[2] / "src" / "shatterbox"
VALUES = [-2.0, -1.0, -0.6667, -0.5, -0.1234, -0.0005, 0.0, 0.0005, 0.1, 0.25, 0.3333, 0.5, 0.75, 0.9, 1.0, 1.5]


@pytest.mark.slow
def test_the_page_colours_like_python(browser, tmp_path):
    page_file = tmp_path / "palette.html"
    page_file.write_text(f"<!DOCTYPE html><html><body><script>{palette_script()}</script></body></html>", encoding="utf-8")
    page = browser.new_page()
    page.goto(page_file.as_uri())
    got = page.evaluate("vs => vs.map(v => [window.shatterboxColours.diverging(v), window.shatterboxColours.ramp(v)])", VALUES)
    css = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--sb-up').trim()")
    page.close()
    for v, (js_div, js_ramp) in zip(VALUES, got):
        assert tuple(js_div) == diverging(v), v
        assert tuple(js_ramp[:3]) == ramp(v)[:3] and abs(js_ramp[3] - ramp(v)[3]) < 1e-12, v
    assert css == f"rgb({UP[0]},{UP[1]},{UP[2]})"  # custom properties keep the text palette.js set


def test_no_other_file_writes_the_palette_out_again():
    written = re.compile("|".join(rf"{c[0]}\s*,\s*{c[1]}\s*,\s*{c[2]}" for c in (UP, DOWN, HIGH)))
    def code(path: Path) -> str:  # docstrings (their examples print colours) left out
        text = path.read_text(encoding="utf-8")
        return re.sub(r'"""(.|\n)*?"""', "", text) if path.suffix == ".py" else text

    found = [str(p.relative_to(SRC)) for p in SRC.rglob("*") if p.suffix in (".py", ".js", ".css", ".html")
             and p.name != "palette.py" and written.search(code(p))]
    assert found == []


def test_the_diverging_scale_is_symmetric_and_clipped():
    assert diverging(-0.25)[:3] == DOWN and diverging(0.25)[:3] == UP
    assert diverging(0.25)[3] == diverging(-0.25)[3] == 0.25 and diverging(7.0)[3] == 1.0
    assert np.diff([ramp(w)[0] for w in np.linspace(0, 1, 11)]).max() < 0  # darker with the weight
