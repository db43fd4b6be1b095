"""Long commands are never silent: plain progress lines on stderr when it is not a terminal (CliRunner's is not)."""

import io
import re

import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.cli import _progress
from shatterbox.cli._progress import PROGRESS_HELP, progress_of


def test_plain_lines_say_done_total_elapsed_and_time_left():
    err = io.StringIO()
    with progress_of("probe pos", "fits", 8, stream=err, every=0) as tick:
        tick(2)
        tick(4, note="layer 2")
    lines = err.getvalue().splitlines()
    assert re.fullmatch(r"probe pos: 2/8 fits · \d+ s elapsed, about \d+ s left", lines[0]), lines
    assert lines[1].startswith("probe pos: 4/8 fits · layer 2 · ") and re.fullmatch(r"probe pos: 4/8 fits done in [\d.]+ s", lines[2])


def test_a_quick_run_stays_quiet_and_a_failed_one_does_not_say_done():
    err = io.StringIO()
    with progress_of("fit", "batches", stream=err, every=60) as tick:
        tick(1, 3)
    assert err.getvalue() == ""
    with pytest.raises(RuntimeError), progress_of("fit", "batches", stream=err, every=0) as tick:
        tick(1, 3)
        raise RuntimeError("stop")
    assert "done" not in err.getvalue() and err.getvalue().startswith("fit: 1/3 batches")


@pytest.mark.slow
def test_the_probe_command_writes_progress_lines_when_piped(tmp_path, monkeypatch):
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest

    store = harvest(load_corpus("wordnet", limit=200, seed=5), tmp_path / "s", layers="1,2")
    monkeypatch.setattr(_progress, "PLAIN_EVERY", 0.0)
    r = CliRunner().invoke(app, ["probe", str(store.root), "--folds", "3", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    counts = [tuple(map(int, m)) for m in re.findall(r"probe pos: (\d+)/(\d+) fits", r.stderr)]
    assert counts[-1] == (12, 12) and len(counts) >= 12  # 2 layers x 3 folds x (task, control), one line per fit
    assert re.search(r"probe pos: 12/12 fits done in [\d.]+ s", r.stderr)


@pytest.mark.parametrize("command", [["harvest"], ["explain"], ["probe"], ["project"], ["heads"], ["factors", "fit"], ["factors", "show"],
                                     ["factors", "report"], ["neurons", "explain"], ["generate"]])
def test_help_says_where_progress_goes(command):
    r = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and PROGRESS_HELP in " ".join(r.stdout.split())


@pytest.mark.slow
def test_factors_show_and_report_write_progress_when_piped(tmp_path, monkeypatch):
    from shatterbox.corpus import load_corpus
    from shatterbox.factors import fit_factors
    from shatterbox.store import harvest

    store = harvest(load_corpus("wordnet", limit=200, seed=5), tmp_path / "s", layers="1,2")
    fit_factors(store, n_factors=16, n_epochs=1).save(tmp_path / "f.factors")
    monkeypatch.setattr(_progress, "PLAIN_EVERY", 0.0)
    shown = CliRunner().invoke(app, ["factors", "show", str(tmp_path / "f.factors"), "3", "--format", "csv"])
    assert shown.exit_code == 0, shown.stderr
    counts = [tuple(map(int, m)) for m in re.findall(r"factor 3: reading the store: ([\d,]+)/([\d,]+) tokens", shown.stderr.replace(",", ""))]
    words = store.sql("select count(*) from tokens where not special").fetchall()[0][0]
    assert counts and counts[-1][0] == counts[-1][1] == words  # every word token read (specials left out), said as read
    report = CliRunner().invoke(app, ["factors", "report", str(tmp_path / "f.factors"), "--out", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.stderr
    steps = re.findall(r"report: (\d+)/(\d+) steps", report.stderr)
    assert steps and steps[-1][0] == steps[-1][1]
