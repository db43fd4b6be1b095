"""Every tab says how to read it, in the manual's words: the page's text is shatterbox/web/help.py's, and docs/web.md
carries each text word for word."""

from pathlib import Path

from shatterbox.web import create_app
from shatterbox.web.help import HELP
from tests.conftest import local_client

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "shatterbox" / "web" / "static"


def test_every_tab_has_its_help_and_the_manual_says_the_same():
    tabs = {line.split('id="tab-')[1].split('"')[0] for line in (STATIC / "index.html").read_text().splitlines() if 'id="tab-' in line}
    page = (STATIC / "index.html").read_text()
    assert tabs == set(HELP) and all(f'data-help="{tab}"' in page for tab in tabs)
    manual = " ".join((ROOT / "docs" / "web.md").read_text(encoding="utf-8").split())
    assert [tab for tab, text in HELP.items() if " ".join(text.split()) not in manual] == []


def test_the_api_serves_the_help():
    assert local_client(create_app()).get("/api/help").json() == HELP
