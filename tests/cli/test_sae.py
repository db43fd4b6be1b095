"""`shatterbox sae ...`: the numbers are the library's, files round-trip through the CLI, the control is checked, and bad
input is one line naming the fix."""

import json

import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.corpus import load_corpus
from shatterbox.factors import Factors, fit_factors
from shatterbox.models import random_weights
from shatterbox.sae import read_sae, sae_scores, sparse_probing
from shatterbox.store import harvest

SAE = dict(kind="sae", per_layer=True, n_factors=48, k=6, n_epochs=2)
pytestmark = pytest.mark.slow  # two harvests and two fits: the full suite runs them, the fast tier does not


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def fitted(default_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("sae-cli")
    corpus = load_corpus("wordnet", limit=160)
    store = harvest(corpus, root / "store", layers="2")
    fit_factors(store, **SAE).save(root / "sae.safetensors")
    control = harvest(corpus, root / "random", model=random_weights(default_model, 0), layers="2")
    fit_factors(control, **SAE).save(root / "control.safetensors")
    return root


def test_score_and_probe_print_the_librarys_numbers_beside_the_control(fitted, default_model):
    r = _run("sae", "score", fitted / "sae.safetensors", "--texts", 8, "--control", fitted / "control.safetensors", "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    factors = Factors.load(fitted / "sae.safetensors")
    expected = sae_scores(factors, default_model, texts=8).table()[0]
    assert got["downstream"] == "embedding" and got["layers"][0]["recovered"] == pytest.approx(expected["recovered"])
    assert got["layers"][0]["control variance_explained"] == Factors.load(fitted / "control.safetensors").reports[2].variance_explained
    r = _run("sae", "probe", fitted / "sae.safetensors", "pos", "--ks", "1,5", "--seeds", 2, "--format", "json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)["result"]["summary"]
    assert [s["k"] for s in summary] == [1, 5]
    assert summary[1]["accuracy"] == pytest.approx(sparse_probing(factors, "pos", ks="1,5", seeds=2).summary()[1]["accuracy"])
    r = _run("sae", "probe", fitted / "sae.safetensors", "pos", "--ks", "1", "--seeds", 1, "--control", fitted / "control.safetensors")
    assert r.exit_code == 0 and "random-weight SAE" in r.stdout and "dense probe" in r.stdout


def test_export_then_import_is_the_same_sae(fitted, tmp_path):
    r = _run("sae", "export", fitted / "sae.safetensors", "--out", tmp_path / "saelens")
    assert r.exit_code == 0, r.stderr
    assert read_sae(tmp_path / "saelens").layer == 2
    r = _run("sae", "import", tmp_path / "saelens", fitted / "store", "--out", tmp_path / "back.safetensors", "--format", "json")
    assert r.exit_code == 0, r.stderr
    original, back = Factors.load(fitted / "sae.safetensors"), Factors.load(tmp_path / "back.safetensors")
    assert back.reports[2].mean_l0 == pytest.approx(original.reports[2].mean_l0, abs=1e-6)
    assert back.reports[2].variance_explained == pytest.approx(original.reports[2].variance_explained, abs=1e-4)


def test_neuronpedia_and_absorption_write_and_print(fitted, tmp_path):
    r = _run("sae", "neuronpedia", fitted / "sae.safetensors", 3, "--out", tmp_path / "f.json")
    assert r.exit_code == 0, r.stderr
    feature = json.loads((tmp_path / "f.json").read_text())
    assert feature["index"] == 3 and feature["activations"]
    r = _run("sae", "absorption", fitted / "sae.safetensors", "--words", 300, "--seeds", 1, "--format", "json", "--control", fitted / "control.safetensors")
    assert r.exit_code == 0, r.stderr
    found = json.loads(r.stdout)["SAE"][0]
    assert 0 <= found["absorption_fraction"] <= 1 and "does not know them" in found["random_weights"]["flag"]  # random weights know no letters


def test_bad_input_is_one_line_naming_the_fix(fitted, tmp_path):
    r = _run("sae", "import", tmp_path / "nothing", fitted / "store", "--out", tmp_path / "x.safetensors")
    assert r.exit_code == 2 and "no SAE at" in r.stderr and "Traceback" not in r.stderr
    r = _run("sae", "score", fitted / "sae.safetensors", "--control", fitted / "sae.safetensors")
    assert r.exit_code == 2 and "cannot be the random-weight" in r.stderr and "harvest the control with --random-weights" in r.stderr
    r = _run("sae", "probe", fitted / "sae.safetensors", "pos", "--ks", "one,two")
    assert r.exit_code == 2 and "--ks must be whole numbers" in r.stderr
    r = _run("sae", "export", fitted / "sae.safetensors", "--out", tmp_path / "e", "--layer", 4)
    assert r.exit_code == 2 and "not 4" in r.stderr
