"""Regenerate the README's screenshots of each view in headless Chromium (Debian's chromium).

    python docs/screenshots.py
"""

from __future__ import annotations

import os
import shutil
import tempfile

from playwright.sync_api import sync_playwright

import shatterbox as sb

OUT = os.path.join(os.path.dirname(__file__), "img")


def main() -> None:
    trace = sb.load().capture("A lot of people like animals so they adopt cats", "A lot of people like animals so they adopt dogs")
    page_file = os.path.join(tempfile.mkdtemp(), "view.html")
    with open(page_file, "w", encoding="utf-8") as fh:
        fh.write(trace.to_html())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1300, "height": 900})
        pg.goto("file://" + page_file)
        pg.locator("canvas[data-layer='0'][data-head='2']").click()
        pg.locator("#sb-heads input").nth(5).check()
        pg.locator("#sb-headview").screenshot(path=os.path.join(OUT, "head-view.png"))
        pg.locator("#sb-modelview").screenshot(path=os.path.join(OUT, "model-view.png"))
        pg.locator("#sb-heads input").nth(5).uncheck()
        pg.select_option("#sb-query", "5")
        pg.locator("#sb-neuronview").screenshot(path=os.path.join(OUT, "neuron-view.png"))
        pg.locator("#sb-tableview").screenshot(path=os.path.join(OUT, "table-view.png"))
        browser.close()


if __name__ == "__main__":
    main()
