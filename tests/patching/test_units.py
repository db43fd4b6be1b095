"""The causal column of a neurons run: each neuron's ablation effect equals a hand computation with plain torch hooks
and the store's own mean, a factor's removal moves the embedding by what removing its code x atom by hand does, and the
rank correlation with the explanation scores is scipy's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.classifiers import mean_pool
from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.models import mlp_modules
from shatterbox.patching import causal_units
from shatterbox.store import harvest


pytestmark = pytest.mark.slow  # a neurons run and a factor fit: the full suite


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    corpus = load_corpus("wordnet", where={"kind": "example"}, limit=40, seed=2)
    return harvest(corpus, tmp_path_factory.mktemp("units") / "s", layers="2", what="hidden,mlp")


@pytest.fixture(scope="module")
def run(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    r = CliRunner().invoke(app, ["neurons", "explain", str(store.root), "--layers", "2", "--units", "3,40,77,500", "--out", str(out),
                                 "--n-explain", "4", "--n-top", "4", "--n-random", "4"])
    assert r.exit_code == 0, r.stderr
    return out


def _by_hand(model, texts, layer, unit, value):
    """1 - cos of the mean-pooled embedding with neuron ``unit`` of ``layer`` set to ``value`` by a plain pre-hook."""
    inputs = model.tokenizer(texts, return_tensors="pt", padding=True)

    def hook(module, args):
        x = args[0].clone()
        x[..., unit] = value
        return (x,)
    with torch.inference_mode():
        clean = mean_pool(model.model(**inputs).last_hidden_state, inputs["attention_mask"])
        handle = mlp_modules(model.model)[layer - 1].register_forward_pre_hook(hook)
        try:
            ablated = mean_pool(model.model(**inputs).last_hidden_state, inputs["attention_mask"])
        finally:
            handle.remove()
    return float((1 - torch.nn.functional.cosine_similarity(ablated, clean, dim=1)).double().mean())


def test_each_neurons_effect_is_the_hand_computed_mean_ablation(store, run, default_model):
    joined = causal_units(run, limit=40)  # every sentence of the store: the mean is the store's own column mean
    assert joined.n_texts == 40 and len(joined.rows) == 4
    texts = store.sentences().column("text").to_pylist()
    column = store.activations("mlp_2").astype(np.float64)
    for row in joined.rows:
        expected = _by_hand(default_model, texts, 2, row["unit"], float(column[:, row["unit"]].mean()))
        assert row["ablation effect"] == pytest.approx(expected, rel=1e-3, abs=1e-7)
    effects = [r["ablation effect"] for r in joined.rows]
    assert effects == sorted(effects, reverse=True) and [r["causal rank"] for r in joined.rows] == [1, 2, 3, 4]
    scores = [r["correlation"] for r in joined.rows]
    assert joined.spearman == pytest.approx(spearmanr(scores, effects).statistic)
    assert ("disagree" in joined.note) == (joined.spearman < 0.5)


def test_a_factor_is_removed_by_its_code_times_its_atom(store, tmp_path, default_model):
    from shatterbox.factors import Factors, fit_factors

    factors = fit_factors(store, kind="fista", n_factors=16, alpha=1.0, max_tokens=400, layers=[2])
    path = factors.save(tmp_path / "f.factors")
    out = tmp_path / "frun"
    r = CliRunner().invoke(app, ["neurons", "explain", str(store.root), "--factors", str(path), "--layers", "2", "--units", "0-3",
                                 "--out", str(out), "--n-explain", "4", "--n-top", "4", "--n-random", "4"])
    assert r.exit_code == 0, r.stderr
    joined = causal_units(out, limit=40)
    texts = store.sentences().column("text").to_pylist()
    loaded = Factors.load(path)
    inputs = default_model.tokenizer(texts, return_tensors="pt", padding=True)
    words = torch.tensor([[w is not None for w in inputs.word_ids(i)] for i in range(len(texts))])
    row = joined.rows[0]
    with torch.inference_mode():
        out_all = default_model.model(**inputs, output_hidden_states=True)
        hidden = out_all.hidden_states[2]
        codes = loaded.codes(hidden.reshape(-1, hidden.shape[-1]).numpy(), 2)[:, row["unit"]].reshape(hidden.shape[:2])
        atom = loaded.models[2].components_[row["unit"]] * loaded.scale[2]
        delta = -torch.from_numpy(codes)[..., None] * words[..., None] * torch.from_numpy(np.asarray(atom, np.float32))
        block = default_model.model.encoder.layer[1]
        handle = block.register_forward_hook(lambda m, a, o: o + delta if not isinstance(o, tuple) else (o[0] + delta, *o[1:]))
        try:
            ablated = mean_pool(default_model.model(**inputs).last_hidden_state, inputs["attention_mask"])
        finally:
            handle.remove()
        clean = mean_pool(out_all.last_hidden_state, inputs["attention_mask"])
    expected = float((1 - torch.nn.functional.cosine_similarity(ablated, clean, dim=1)).double().mean())
    assert row["ablation effect"] == pytest.approx(expected, rel=1e-3) and expected > 0


def test_the_command_prints_the_join_and_json(run):
    r = CliRunner().invoke(app, ["neurons", "causal", str(run), "--limit", "20", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["rows"]) == 4 and d["n_texts"] == 20 and "Spearman" in d["note"]
    t = CliRunner().invoke(app, ["neurons", "causal", str(run), "--limit", "20"])
    assert t.exit_code == 0 and "ablation effect" in t.stdout and "Spearman" in t.stdout


def test_not_a_run_is_one_message(tmp_path):
    with pytest.raises(InputError, match="is not a neurons run"):
        causal_units(tmp_path)


def test_a_factors_file_of_another_store_is_refused(store, run, tmp_path):
    import shutil

    from shatterbox.factors import fit_factors

    other = harvest(load_corpus("wordnet", where={"kind": "example"}, limit=20, seed=5), tmp_path / "other", layers="2")
    path = fit_factors(other, kind="fista", n_factors=8, alpha=1.0, max_tokens=200, layers=[2]).save(tmp_path / "o.factors")
    copied = tmp_path / "run"
    shutil.copytree(run, copied)
    record = json.loads((copied / "run.json").read_text())
    (copied / "run.json").write_text(json.dumps(record | {"kind": "factor", "source": str(path)}))
    with pytest.raises(InputError, match="was fitted on another store than the run's"):
        causal_units(copied, limit=5)


def test_removing_a_probes_directions_is_measured_against_random_directions(tmp_path, default_model):
    """Amnesic probing: the library's effect equals a plain hook that projects the probe's span out of layer 3's output."""
    from shatterbox.patching import probe_direction_effects
    from shatterbox.probes import examples, features, make_probe

    s = harvest(load_corpus("wordnet", where={"kind": "example"}, limit=300, seed=4), tmp_path / "s", layers="3")
    r = probe_direction_effects(s, "pos", layers=[3], limit=30)
    row = r.rows[0]
    assert row["directions"] == 4 and r.n_texts == 30 and row["removing random directions"] > 0
    found = examples(s, "pos", limit=4000)
    probe = make_probe("linear").fit(features(s, found, 3), found.labels)
    basis = torch.from_numpy(np.linalg.qr((probe[-1].coef_ / probe[0].scale_).T)[0].astype(np.float32))
    texts = s.sentences().column("text").to_pylist()
    from shatterbox.corpus import sample_indices

    texts = [texts[i] for i in sample_indices(len(texts), 30)]
    inputs = default_model.tokenizer(texts, return_tensors="pt", padding=True)
    block = default_model.model.encoder.layer[2]
    with torch.inference_mode():
        clean = mean_pool(default_model.model(**inputs).last_hidden_state, inputs["attention_mask"])
        handle = block.register_forward_hook(lambda m, a, o: o - (o @ basis) @ basis.T)
        try:
            ablated = mean_pool(default_model.model(**inputs).last_hidden_state, inputs["attention_mask"])
        finally:
            handle.remove()
    expected = float((1 - torch.nn.functional.cosine_similarity(ablated, clean, dim=1)).double().mean())
    assert row["removing the probe's directions"] == pytest.approx(expected, rel=1e-3)
    assert (row["flag"] == "") == (row["removing the probe's directions"] > 2 * row["removing random directions"])


def test_the_projector_colours_sentences_by_an_ablated_heads_effect(store, tmp_path, default_model):
    """Each point's value equals the hand-computed embedding change of its sentence with the head mean-ablated."""
    from shatterbox.projector import map_store

    ticks = []
    points, _ = map_store(store, limit=12, ablate=(2, 5), layers=[2], progress=lambda done, total: ticks.append((done, total)))
    assert ticks[-1] == (1, 1) and (12, 12) in ticks  # the sentences ablated, then the layer mapped
    values = points.values["ablating L2 H5"]
    assert values.shape == (12,) and (values > 0).all()
    inputs = default_model.tokenizer(points.texts, return_tensors="pt", padding=True)
    cols = slice(4 * 32, 5 * 32)
    dense = default_model.model.encoder.layer[1].attention.output.dense
    with torch.inference_mode():
        seen = []
        handle = dense.register_forward_pre_hook(lambda m, a: seen.append(a[0][..., cols].clone()))
        clean = mean_pool(default_model.model(**inputs).last_hidden_state, inputs["attention_mask"])
        handle.remove()
        mean = seen[0][inputs["attention_mask"].bool()].double().mean(dim=0).float()

        def hook(m, a):
            x = a[0].clone()
            x[..., cols] = mean
            return (x,)
        handle = dense.register_forward_pre_hook(hook)
        ablated = mean_pool(default_model.model(**inputs).last_hidden_state, inputs["attention_mask"])
        handle.remove()
    expected = (1 - torch.nn.functional.cosine_similarity(ablated, clean, dim=1)).double().numpy()
    assert np.allclose(values, expected, rtol=1e-3, atol=1e-7)
    r = CliRunner().invoke(app, ["project", str(store.root), "--out", str(tmp_path / "m.html"), "--limit", "12", "--ablate", "2,x"])
    assert r.exit_code != 0 and "cannot read --ablate '2,x': write LAYER,HEAD" in r.stderr


def test_probe_causal_is_in_the_json_and_in_the_table(tmp_path):
    s = harvest(load_corpus("wordnet", where={"kind": "example"}, limit=300, seed=4), tmp_path / "s", layers="3")
    r = CliRunner().invoke(app, ["probe", str(s.root), "--property", "pos", "--folds", "2", "--causal", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    row = d["causal"]["rows"][0]
    assert d["causal"]["property"] == "pos" and row["layer"] == 3 and row["directions"] == 4
    assert row["removing the probe's directions"] > 0 and row["removing random directions"] > 0
    t = CliRunner().invoke(app, ["probe", str(s.root), "--property", "pos", "--folds", "2", "--causal"])
    assert t.exit_code == 0 and "removing the probe's directions" in t.stdout and "projected out" in t.stderr
