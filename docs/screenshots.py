"""Regenerate the README's screenshots of each view and each web-app tab in headless Chromium (Debian's chromium).

    python docs/screenshots.py
    python docs/screenshots.py --factors-report factors.html   # the top of a `shatterbox factors report` page
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
        web_tabs(browser)
        web_generate(browser)
        browser.close()


def web_tabs(browser) -> None:
    """One screenshot per tab of `shatterbox serve`, served on a free loopback port."""
    from shatterbox.web import create_app, running

    with running(create_app()) as url:
        pg = browser.new_page(viewport={"width": 1300, "height": 1000})
        pg.goto(url)
        pg.wait_for_selector("#att-layer option", state="attached")
        pg.select_option("#att-layer", "6")
        pg.select_option("#att-head", "6")
        pg.click("#att-run")
        pg.wait_for_selector("#sb-table")
        pg.locator("th.sb-rowhead[data-i='1']").click()
        pg.locator("#tab-attention").screenshot(path=os.path.join(OUT, "web-attention.png"))
        pg.click("nav button[data-tab='heads']")
        pg.click("#heads-run")
        pg.wait_for_selector("#heads-ranking")
        pg.locator("#tab-heads").screenshot(path=os.path.join(OUT, "web-heads.png"))
        pg.click("nav button[data-tab='explain']")
        pg.click("#ex-run")
        pg.wait_for_selector("#ex-result .ex-word")
        pg.fill("#cf-text", "I hate playing chess with my friends.")
        pg.click("#cf-run")
        pg.wait_for_selector("#cf-delta")
        pg.locator("#tab-explain").screenshot(path=os.path.join(OUT, "web-explain.png"))


def web_generate(browser) -> None:
    """The Generate tab on Gemma 3 270M (the decoder extra): why each generated token."""
    from shatterbox.web import create_app, running

    with running(create_app(decoder="gemma-3-270m")) as url:
        pg = browser.new_page(viewport={"width": 1300, "height": 700})
        pg.goto(url)
        pg.click("nav button[data-tab='generate']")
        pg.fill("#gen-prompt", "My favourite fruit is the")
        pg.fill("#gen-tokens", "5")
        pg.click("#gen-run")
        pg.wait_for_selector("#gen-result .gen-map", timeout=300_000)
        pg.locator("#tab-generate").screenshot(path=os.path.join(OUT, "web-generate.png"))


def factors_report(path: str) -> None:
    """The top of a factors report (quality table, downstream table, first low-level factors)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1150, "height": 1500})
        pg.goto("file://" + os.path.abspath(path))
        pg.screenshot(path=os.path.join(OUT, "factors-report.png"))
        browser.close()


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--factors-report"]:
        factors_report(sys.argv[2])
    else:
        main()
