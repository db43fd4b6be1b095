"""`shatterbox explain --corpus`: tables, formats, drill-down, and one clear line for bad input."""

import json

import pytest
from typer.testing import CliRunner

from shatterbox.cli import app

runner = CliRunner()
TEXTS = ["I loved this film.", "", "A dull and boring film.", "I loved this film.", "The acting was wonderful and moving.", "The plot was dull."]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "c.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_tables_and_drill_down(corpus, tmp_path):
    r = run("explain", "--corpus", corpus, "--min-count", 1, "--top", 3, "--word", "dull", "--results", tmp_path / "res")
    assert r.exit_code == 0, r.stderr
    assert "left out: 1 empty, 1 duplicate" in r.stderr and "4 texts explained" in r.stderr
    assert "words that push positive up" in r.stdout and "words that push negative down" in r.stdout
    assert "where 'dull' moved negative most" in r.stdout and "least faithful explanations" in r.stdout
    again = run("explain", "--corpus", corpus, "--min-count", 1, "--format", "json", "--results", tmp_path / "res", "--word", "dull")
    d = json.loads(again.stdout)  # read back from the results folder: the same words
    words = {(w["label"], w["word"]) for w in d["words"]}
    assert ("negative", "dull") in words and d["texts"] == 4 and [s["reason"] for s in d["skipped"]] == ["empty", "duplicate"]
    assert {x["text_id"] for x in d["drill_down"]["negative"]} == {3, 6}
    rows = {(w["label"], w["word"]): w for w in d["words"]}
    for label, sides in d["pushes"].items():  # the json's lists agree with the table's side column and its intervals
        assert all(rows[label, w]["side"] == "up" and rows[label, w]["mean"] > 0 for w in sides["up"])
        assert all(rows[label, w]["side"] == "down" and rows[label, w]["mean"] < 0 for w in sides["down"])
        assert not set(sides["up"]) & set(sides["down"])


@pytest.mark.slow
def test_csv_and_html(corpus, tmp_path):
    c = run("explain", "--corpus", corpus, "--format", "csv")
    assert c.stdout.splitlines()[0].startswith('"label","word","texts","occurrences","mean","low","high"')
    h = run("explain", "--corpus", corpus, "--format", "html", "--out", tmp_path / "r.html", "--min-count", 1)
    page = (tmp_path / "r.html").read_text()
    assert h.exit_code == 0 and "push positive up" in page and "<script" not in page and "Left out" in page


@pytest.mark.parametrize("args, message", [
    (["some text", "--corpus", "x.txt"], "give a TEXT or --corpus, not both"),
    (["--corpus", "/nonexistent.txt"], "no corpus at '/nonexistent.txt'"),
    (["--corpus", "CORPUS", "--by", "stem"], "--by 'stem': lemma or word"),
    (["--corpus", "CORPUS", "--method", "magic"], "unknown method 'magic'"),
    ([], "give a TEXT to explain, or --corpus FILE"),
    (["one text", "--format", "csv"], "--format csv is the word table of --corpus"),
])
def test_bad_input_is_one_line(corpus, args, message):
    r = run("explain", *[str(corpus) if a == "CORPUS" else a for a in args])
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_kernel_shap_over_a_corpus(corpus, tmp_path):
    r = run("explain", "--corpus", corpus, "--method", "kernel", "--samples", 12, "--results", tmp_path / "k", "--min-count", 1, "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "k" / "run.json").read_text())["settings"]["samples"] == 12
    assert ("negative", "dull") in {(w["label"], w["word"]) for w in json.loads(r.stdout)["words"]}
    small = run("explain", "--corpus", corpus, "--method", "kernel", "--samples", 3)
    assert small.exit_code == 2 and "no text could be explained" in small.stderr and "too small for Kernel SHAP" in small.stderr, small.stderr
    one = run("explain", "A dull and boring film that nobody enjoyed.", "--method", "kernel", "--samples", 5)
    assert one.exit_code == 2 and "--samples 20" in one.stderr and "Traceback" not in one.stderr, one.stderr


@pytest.mark.slow
def test_bf16_reaches_the_corpus_run(corpus, tmp_path):
    r = run("explain", "--corpus", corpus, "--bf16", "--results", tmp_path / "bf", "--min-count", 1)
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "bf" / "run.json").read_text())["settings"]["dtype"] == "bfloat16"
