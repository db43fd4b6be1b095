"""`shatterbox patch` and `shatterbox ablate`: the numbers are the library's, every format is whole (strict JSON, one CSV
row per patched run, a page drawn by plots.js), and bad input is one line naming the fix, never a traceback."""

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.patching import ablate, patch

CLEAN, CORRUPT = "The film was not bad.", "The film was very bad."


def _run(*args):
    return CliRunner().invoke(app, list(args))


def test_patch_json_is_the_library_result_with_its_attribution_map_and_agreement():
    r = _run("patch", CLEAN, "--corrupt", CORRUPT, "--component", "mlp", "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    expected = patch(CLEAN, CORRUPT, component="mlp")
    assert np.allclose(np.array(d["result"]["values"], float), expected.values, atol=1e-5)
    assert d["other"]["method"] == "attribution" and -1 <= d["agreement"] <= 1
    assert "attribution patching against exact: Spearman" in r.stderr


def test_patch_csv_has_one_row_per_patched_run_and_method():
    r = _run("patch", CLEAN, "--corrupt", CORRUPT, "--component", "head", "--layers", "2-3", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 2 * 2 * 12 and {row["method"] for row in rows} == {"exact", "attribution"}
    assert {int(row["layer"]) for row in rows} == {2, 3} and {int(row["head"]) for row in rows} == set(range(1, 13))


def test_patch_page_carries_both_maps(tmp_path):
    out = tmp_path / "p.html"
    r = _run("patch", CLEAN, "--corrupt", CORRUPT, "--component", "hidden", "--format", "html", "--out", str(out))
    assert r.exit_code == 0 and out.read_text().count('data-sb-plot="patching"') == 1
    assert "window.shatterboxPlots.mountAll" in out.read_text()


def test_the_terminal_map_shows_the_flip_at_the_negation():
    r = _run("patch", CLEAN, "--corrupt", CORRUPT, "--method", "exact")
    assert r.exit_code == 0 and "not→very" in r.stdout and "hidden 0" in r.stdout
    assert "largest: layer 0 position not→very: 1.00 -> positive" in " ".join(r.stdout.split())


def test_ablate_table_is_the_library_ranking():
    texts = ["A wonderful film.", "A dull film.", "Not bad at all."]
    r = _run("ablate", *texts, "--component", "mlp", "--how", "zero", "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)["rows"]
    expected = ablate(texts, component="mlp", how="zero")
    assert [row["drop"] for row in got] == pytest.approx(expected.drop.tolist(), abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["patch", CLEAN, "--corrupt", "Quite a different, much longer text than the clean one."], "differ in length"),
    (["patch", CLEAN, "--corrupt", CORRUPT, "--layers", "9"], "layer 9 is out of range"),
    (["patch", CLEAN, "--corrupt", CORRUPT, "--layers", "x"], "cannot read --layers 'x'"),
    (["patch", CLEAN, "--corrupt", CORRUPT, "--component", "neurons"], "neurons"),
    (["patch", CLEAN, "--corrupt", CORRUPT, "--answer", " Paris"], "measured by --label NAME, not by an --answer"),
    (["ablate"], "give texts to ablate over"),
    (["ablate", "A text.", "--means", "no/such/store"], "no/such/store"),
])
def test_bad_input_is_one_line(args, message):
    r = _run(*args)
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert message in " ".join((r.stderr + r.stdout).split())


def test_heads_causal_joins_the_pattern_ranking_with_ablation(tmp_path):
    corpus = tmp_path / "reviews.txt"
    corpus.write_text("A wonderful film.\nA dull, boring film.\nNot bad at all.\nI hated every minute.\n", encoding="utf-8")
    r = _run("heads", "--corpus", str(corpus), "--causal", "--format", "json", "--png", str(tmp_path / "h.png"))
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # --causal keeps the heat map
    d = json.loads(r.stdout)
    assert len(d["rows"]) == 72 and [row["causal rank"] for row in d["rows"]] == list(range(1, 73))
    assert "Spearman" in d["note"]
    bad = _run("heads", "--corpus", str(corpus), "--causal", "--model", "path/to/model")
    assert bad.exit_code != 0 and "--causal ablates heads of the shipped sentiment classifier" in bad.stderr
