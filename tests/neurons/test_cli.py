"""`shatterbox neurons`: top, explain (resumable after SIGKILL), show, report, and one clear line for bad input."""

import json
import re
import os
import sys

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from tests.conftest import kill_mid_run

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_top_prints_coloured_excerpts_and_json(example_store):
    r = run("neurons", "top", example_store.root, "--layer", 1, "--unit", 7, "--k", 4, "--random", 2)
    assert r.exit_code == 0, r.stderr
    assert "layer 1 neuron 7: largest activation" in r.stdout and "random excerpts:" in r.stdout
    assert "top excerpts (tokens that fire followed by [their activation]):" in r.stdout  # piped: nothing is shaded
    assert re.search(r"\w\[\d+\.\d\d\]", r.stdout.split("random excerpts:")[0])
    j = run("neurons", "top", example_store.root, "--layer", 1, "--unit", 7, "--k", 4, "--random", 2, "--format", "json")
    d = json.loads(j.stdout)
    tops = [x for x in d["excerpts"] if x["kind"] == "top"]
    assert len(tops) == 4 and tops[0]["max"] == pytest.approx(d["maximum"], rel=1e-6)
    assert [x["max"] for x in tops] == sorted((x["max"] for x in tops), reverse=True)
    c = run("neurons", "top", example_store.root, "--layer", 1, "--unit", 7, "--format", "csv")
    assert c.stdout.splitlines()[0] == '"kind","rank","max","sentence_id","text"' and len(c.stdout.splitlines()) == 16


def test_explain_show_and_report(example_store, tmp_path):
    out, page = tmp_path / "run", tmp_path / "r.html"
    r = run("neurons", "explain", example_store.root, "--layers", 1, "--units", "0-11", "--out", out, "--html", page,
            "--n-explain", 6, "--n-top", 6, "--n-random", 6)
    assert r.exit_code == 0, r.stderr
    assert "12 units: mean correlation" in r.stderr and "% flagged" in r.stderr
    html = page.read_text()
    assert html.count("<tr><td>1</td>") == 12 and "<script" not in html
    s = run("neurons", "show", out, "--format", "json")
    rows = json.loads(s.stdout)
    assert len(rows) == 12 and [r["correlation"] for r in rows] == sorted((r["correlation"] for r in rows), reverse=True)
    word = rows[0]["explanation"].split('"')[1]
    found = json.loads(run("neurons", "show", out, "--search", word, "--format", "json").stdout)
    assert found and all(word in r["explanation"].lower() for r in found)
    shown = run("neurons", "show", out, "--rows", "4")
    assert shown.exit_code == 0 and "the best 2 and the worst 2 of 12 units shown" in shown.stderr
    rep = run("neurons", "report", out, "--out", tmp_path / "again.html")
    assert rep.exit_code == 0 and (tmp_path / "again.html").read_text().count("<tr><td>1</td>") == 12


@pytest.mark.parametrize("args, message", [
    (["--layers", "1"], "give --units (e.g. 0-99) or --sample N"),
    (["--layers", "3", "--units", "0"], "no MLP activations of layer 3"),
    (["--layers", "1", "--units", "0-2000"], "unit 1536 is out of range: there are units 0-1535"),
    (["--layers", "1", "--units", "a-b"], "cannot read the units 'a-b'"),
    (["--layers", "1", "--units", "0", "--llm", "ftp://x"], "is not an http(s) URL: give e.g. --llm http://127.0.0.1:8080/v1"),
    (["--layers", "1", "--units", "0", "--dry-run"], "--dry-run estimates an --llm run"),
    (["--layers", "1", "--units", "0", "--simulator", "/nonexistent"], "is not a folder"),
])
def test_bad_input_is_one_line(example_store, args, message):
    r = run("neurons", "explain", example_store.root, *args)
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_dry_run_estimates_without_calls(example_store):
    r = run("neurons", "explain", example_store.root, "--layers", 1, "--sample", 10, "--llm", "http://127.0.0.1:9/v1", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "estimated before the cache: 90 calls" in r.stderr


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_table(example_store, tmp_path):
    args = ["neurons", "explain", str(example_store.root), "--layers", "1", "--units", "0-159", "--part-units", "16", "--format", "json",
            "--n-explain", 6, "--n-top", 6, "--n-random", 6]
    args = [str(a) for a in args]
    killed = tmp_path / "killed"
    written = kill_mid_run([sys.executable, "-m", "shatterbox.cli", *args, "--out", str(killed)], killed, "*.parquet")
    assert 2 <= written < 10, "the kill must land mid-run"
    assert not [p for p in killed.iterdir() if p.name.startswith(".")] or all(p.suffix == ".tmp" for p in killed.iterdir() if p.name.startswith("."))
    resumed = run(*args, "--out", killed)
    clean = run(*args, "--out", tmp_path / "clean")
    assert resumed.exit_code == 0 and clean.exit_code == 0, resumed.stderr + clean.stderr
    strip = lambda text: [{k: v for k, v in row.items() if k != "seconds"} for row in json.loads(text)]  # noqa: E731
    assert strip(resumed.stdout) == strip(clean.stdout)
    assert len(strip(clean.stdout)) == 160
    assert os.path.exists(killed / "run.json")
    assert pq.read_table(sorted(killed.glob("*.parquet"))[0]).num_rows == 16


def test_html_without_a_results_folder(example_store, tmp_path):
    r = run("neurons", "explain", example_store.root, "--layers", 1, "--units", "0-3", "--html", tmp_path / "r.html",
            "--n-explain", 6, "--n-top", 6, "--n-random", 6)
    assert r.exit_code == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count("<tr><td>1</td>") == 4 and "judge offline" in page


@pytest.mark.slow
def test_dead_units_are_marked_never_averaged_and_nan_is_never_printed(tmp_path, default_model):
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest

    store = harvest(load_corpus("wordnet", limit=300, seed=0), tmp_path / "s", model=default_model, layers="3", what="mlp")
    r = run("neurons", "explain", str(store.root), "--layer", "3", "--units", "0-3")  # unit 0 of layer 3 never fires on these words
    assert r.exit_code == 0, r.stderr
    assert "nan" not in r.stdout.lower() + r.stderr.lower()
    assert "3 units + 1 dead (never fire; left out of the means)" in r.stderr and "dead:" in r.stdout  # the reason wraps at 80 columns


@pytest.mark.slow  # 1.6 s: waits for the dead endpoint
def test_a_dead_llm_endpoint_is_named_by_its_flag(example_store):
    r = run("neurons", "explain", example_store.root, "--layers", "1", "--units", "0", "--llm", "http://127.0.0.1:9/v1")
    lines = r.stderr.strip().splitlines()
    assert r.exit_code == 2 and lines[0].startswith("estimated before the cache:")  # the plan, then one error line
    assert lines[-1].endswith("(connection refused) after 3 attempts: start the server, or give the right --llm") and len(lines) == 2
