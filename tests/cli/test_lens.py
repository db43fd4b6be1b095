"""`shatterbox lens show|fit` and `shatterbox steer`: the numbers are the library's, every format is whole (strict JSON, CSV
rows, a page drawn by plots.js), a fitted tuned lens is written beside the store, and bad input is one line naming the fix."""

import csv
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.corpus import load_corpus
from shatterbox.lens import TunedLens, classifier_lens, logit_lens
from shatterbox.store import harvest

TEXT = "hello world, this is a tiny corpus"


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_lens_show_json_and_csv_are_the_librarys_numbers(tiny_dir, tiny_models):
    path = tiny_dir["llama-gqa"]
    r = _run("lens", "show", TEXT, "--model", path, "--format", "json", "-k", "3")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    expected = logit_lens(tiny_models["llama-gqa"], TEXT, k=3)
    assert np.allclose(d["kl"], expected.kl, atol=1e-5) and d["rank"] == expected.rank.tolist() and len(d["top"][0][0]) == 3
    r = _run("lens", "show", TEXT, "--model", path, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == len(expected.layers) * len(expected.tokens) and rows[-1]["rank"] == "0"


def test_lens_show_classifier_text_and_page(tmp_path):
    r = _run("lens", "show", "The film was not bad at all.", "--lens", "classifier")
    assert r.exit_code == 0, r.stderr
    from shatterbox.classifiers.sentiment import sentiment

    expected = classifier_lens(sentiment(), "The film was not bad at all.")
    assert f"{expected.probs[-1, 1]:.3f}" in r.stdout and "p(positive)" in r.stdout
    out = tmp_path / "lens.html"
    r = _run("lens", "show", "The film was not bad at all.", "--lens", "classifier", "--format", "html", "--out", out)
    assert r.exit_code == 0 and out.read_text().count('data-sb-plot="lens"') == 1


def test_lens_fit_writes_the_tuned_lens_beside_the_store_and_show_reads_it(tmp_path, tiny_dir, tiny_models):
    store = harvest(load_corpus("wordnet", limit=60, seed=2), tmp_path / "store", model=tiny_models["llama-gqa"], layers="all", what="hidden")
    r = _run("lens", "fit", store.root, "--epochs", "1", "--batch-tokens", "64")
    assert r.exit_code == 0, r.stderr
    assert "held-out KL to the final layer" in r.stdout and (store.root / "tuned-lens.safetensors").is_file()
    lens = TunedLens.load(store.root / "tuned-lens.safetensors")
    assert f"{lens.scores_[0]['tuned_kl']:.3f}" in r.stdout
    r = _run("lens", "show", TEXT, "--model", tiny_dir["llama-gqa"], "--lens", "tuned", "--tuned", store.root / "tuned-lens.safetensors", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["lens"] == "tuned"


def test_steer_with_a_vector_gives_every_format(tmp_path, tiny_dir, tiny_models):
    model = tiny_models["llama-gqa"]
    vector = model.model.lm_head.weight[123].detach().numpy()
    np.save(tmp_path / "v.npy", vector)
    word = model.tokenizer.decode([123])
    args = ["steer", "hello world, this is", "--model", tiny_dir["llama-gqa"], "--vector", tmp_path / "v.npy", "--layer", "2", "--alphas", "0.5,2",
            "--max-new-tokens", "3", "--concept", word, "--instruction", ""]
    r = _run(*args, "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert [x["kind"] for x in d["rows"]] == ["none", "vector", "vector", "random", "random"] and d["layer"] == 2
    r = _run(*args, "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(r.stdout)))) == 5
    r = _run(*args)
    assert "strength" in r.stdout and "v.npy" in r.stdout
    out = tmp_path / "s.html"
    assert _run(*args, "--format", "html", "--out", out).exit_code == 0 and 'data-sb-plot="steering"' in out.read_text()


@pytest.mark.parametrize("args, message", [
    (["lens", "show", TEXT, "--model", "default"], "has no language-model head: the logit lens needs a decoder such as --model gemma-3-270m"),
    (["lens", "show", TEXT, "--lens", "sideways"], "unknown --lens 'sideways'"),
    (["lens", "show", TEXT, "--lens", "tuned", "--model", "default"], "the tuned lens needs a fitted lens: --tuned FILE"),
    (["lens", "fit", "/nonexistent"], "no activation store at '/nonexistent'"),
    (["steer", "hi", "--model", "default", "--vector", "x.npy"], "has no language-model head"),
    (["steer", "hi", "--model", "{llama}"], "give a direction: --diffmean sentiment"),
    (["steer", "hi", "--model", "{llama}", "--vector", "/nonexistent.npy"], "cannot read the --vector '/nonexistent.npy'"),
    (["steer", "hi", "--model", "{llama}", "--factor", "f.safetensors"], "cannot read --factor 'f.safetensors': write FILE:INDEX"),
    (["steer", "hi", "--model", "{llama}", "--diffmean", "/nonexistent"], "'/nonexistent' is not a shatterbox store"),
    (["steer", "hi", "--model", "{llama}", "--vector", "{wide}", "--layer", "1"], "has 7 numbers but the residual stream"),
    (["steer", "hi", "--model", "{llama}", "--vector", "{good}", "--layer", "1", "--alphas", "1,nan"], "strength 'nan' is not a finite number"),
    (["steer", "hi", "--model", "{llama}", "--vector", "{good}", "--layer", "5"], "layer 5 is out of range"),
    (["steer", "hi", "--model", "{llama}", "--probe", "/nonexistent", "--labels", "label"], "cannot read labels 'label': write COLUMN=FIRST,SECOND"),
])
def test_bad_input_is_one_line_naming_the_fix(args, message, tiny_dir, tmp_path):
    np.save(tmp_path / "wide.npy", np.ones(7, np.float32))
    np.save(tmp_path / "good.npy", np.ones(32, np.float32))
    filled = [a.format(llama=tiny_dir["llama-gqa"], wide=tmp_path / "wide.npy", good=tmp_path / "good.npy") for a in args]
    r = _run(*filled)
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert message in " ".join(r.stderr.split()), r.stderr
