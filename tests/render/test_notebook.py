"""The views inside a real JupyterLab (BertViz's most reported failure is a blank view there), and in
the executed notebook exported to HTML.

JupyterLab comes from PyPI (the test extra); the test starts it on loopback with a token, runs the
cells through the UI with Playwright and Debian's chromium, saves the notebook and exports it.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from tests.conftest import CHAPTER, watch

CELLS = [
    "import shatterbox as sb\nmodel = sb.load()\ntrace = sb.capture(model, " + repr(CHAPTER) + ")\ntrace",
    "sb.explain(text='I love playing chess with my friends.', method='exact')",  # top-level, like sb.capture
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab on 127.0.0.1 serving ``tmp_path`` (its config and runtime files kept there too): (url, token, folder)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "views.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / ".cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / ".run"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / ".ws")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=",
         "--LabApp.extension_manager=readonly"],  # offline: no news, no extension index
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("JupyterLab did not start") from None
                time.sleep(0.3)
        yield url, token, tmp_path
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_views_draw_in_jupyterlab_and_in_the_exported_html(lab, browser):
    url, token, folder = lab
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, _ = watch(pg)
    pg.goto(f"{url}/lab/tree/views.ipynb?token={token}")
    pg.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
    pg.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)  # the kernel is up
    pg.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first.click()  # command mode on the first cell
    pg.keyboard.press("Shift+Enter")  # run it and move on, as a user would
    pg.keyboard.press("Shift+Enter")

    view = pg.frame_locator(".jp-OutputArea-output iframe").first
    view.locator("#sb-neuron").wait_for(timeout=120_000)  # the kernel loads the model, then the page draws
    assert view.locator("#sb-lines").evaluate("c => c.sbShown.length") > 0  # the head view's lines are drawn
    assert view.locator("#sb-modelview canvas").count() == 72 and view.locator("#sb-table tr").count() == 9
    height = pg.locator(".jp-OutputArea-output iframe").first.evaluate("f => f.getBoundingClientRect().height")
    assert height > 720  # the frame grew to its content: nothing hidden behind a scrollbar

    words = pg.locator(".jp-OutputArea-output .ex-attr .ex-words .ex-word")  # the predicted label's words
    words.first.wait_for(timeout=120_000)
    assert words.count() >= 8 and "chess" in pg.locator(".jp-OutputArea-output .ex-attr").first.inner_text()
    pg.locator(".ex-attr button[data-label='0']").click()  # the fragment's script ran: the label switch works
    assert pg.locator(".ex-attr[data-label='0'] .ex-word").first.is_visible()
    assert pg.locator(".ex-attr[data-label='1']").count() == 0

    pg.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # saved with both outputs
        saved = nbformat.read(folder / "views.ipynb", as_version=4)
        if all(cell.get("outputs") for cell in saved.cells[:2]):
            break
        time.sleep(0.3)
    assert all(cell.get("outputs") for cell in saved.cells[:2])
    pg.close()
    assert errors == []  # neither JupyterLab nor our frames (their console is the page's) logged an error

    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(folder / "views.ipynb")],
                   check=True, capture_output=True, env={**os.environ, "JUPYTER_CONFIG_DIR": str(folder / ".cfg")})
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors, _ = watch(page)
    page.goto((folder / "views.html").as_uri())
    exported = page.frame_locator("iframe").first
    exported.locator("#sb-neuron").wait_for(timeout=30_000)
    assert exported.locator("#sb-lines").evaluate("c => c.sbShown.length") > 0
    assert page.locator(".ex-attr .ex-words .ex-word").count() >= 8
    page.close()
    assert [e for e in errors if not e.startswith("Failed to load resource")] == []  # nbconvert's page asks CDNs for MathJax
