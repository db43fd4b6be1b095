"""Sparse probing: a planted latent equal to the label reads it at k = 1; the control, the dense probe and the flags."""

import numpy as np
import pytest

from shatterbox.corpus import Corpus, load_corpus
from shatterbox.errors import InputError
from shatterbox.factors import fit_factors
from shatterbox.sae import pooled_codes, sparse_probe_arrays, sparse_probing
from shatterbox.store import harvest


def test_a_planted_latent_equal_to_the_label_gives_accuracy_one_at_k_one():
    rng = np.random.default_rng(0)
    labels = rng.choice(["noun", "verb", "adj"], 900, p=[0.5, 0.3, 0.2])
    codes = np.abs(rng.normal(size=(900, 40))) * (rng.random((900, 40)) < 0.2)
    codes[:, 11] = labels == "verb"  # the planted latent: 1 on verbs, 0 elsewhere
    result = sparse_probe_arrays(codes, rng.normal(size=(900, 16)), labels, ks=(1, 5), seeds=3)
    verb = [r for r in result.rows if r["class"] == "verb"]
    assert {r["latents"][0] for r in verb} == {11}
    assert all(r["accuracy"] == 1.0 for r in verb if r["k"] == 1)
    controls = [r["control"] for r in verb if r["k"] == 1]
    assert np.mean(controls) < 0.75  # one random live latent mostly misses the planted one
    assert result.classes == ["noun", "verb", "adj"] and result.seeds == 3 and len(result.rows) == 3 * 3 * 2
    assert np.mean([r["dense"] for r in result.rows]) < 0.65  # the dense features are noise here


def test_latents_that_do_not_beat_random_latents_are_flagged():
    rng = np.random.default_rng(1)
    labels = rng.choice(["a", "b"], 400)
    codes = np.abs(rng.normal(size=(400, 30)))  # nothing in the latents about the label
    summary = sparse_probe_arrays(codes, rng.normal(size=(400, 4)), labels, ks=(2,), seeds=2).summary()[0]
    assert summary["flag"] != "" and abs(summary["accuracy"] - 0.5) < 0.15 and summary["majority"] == 0.5
    assert summary["accuracy_sd"] > 0  # two seeds drew two different samples and splits


def test_sentence_level_pools_codes_over_word_tokens(default_model, tmp_path):
    texts = ["a lovely warm film", "a cold dull film", "lovely and warm", "dull and cold"] * 8
    corpus = Corpus.from_texts(texts, label=["pos", "neg"] * 16)
    store = harvest(corpus, tmp_path / "s", layers="2")
    factors = fit_factors(store, kind="sae", n_factors=32, k=4, n_epochs=2)
    ids = np.array([0, 3])
    pooled = pooled_codes(store, factors, 2, ids)
    for row, sid in zip(pooled, ids):
        hidden = store.activations("hidden_2", f"sentence_id = {sid} and not special")
        np.testing.assert_allclose(row, factors.codes(hidden, 2).mean(0), rtol=1e-5, atol=1e-6)
    result = sparse_probing(factors, "label", level="sentence", ks=(1, 2), seeds=2)
    assert result.classes == ["neg"] and result.summary()[0]["dense"] == 1.0  # one binary task; the residual stream reads it


@pytest.mark.slow
def test_sparse_probing_bad_input_is_one_message(default_model, tmp_path):
    store = harvest(load_corpus("wordnet", limit=120), tmp_path / "w", layers="2")
    factors = fit_factors(store, kind="sae", n_factors=32, k=4, n_epochs=1)
    with pytest.raises(InputError, match="fitted on layers \\[2\\], not 5"):
        sparse_probing(factors, "pos", layer=5)
    with pytest.raises(InputError, match="ks must be between 1 and the 32 latents"):
        sparse_probing(factors, "pos", ks=(0, 64))
    assert sparse_probing(factors, "pos", ks=(1,), seeds=1).summary()[0]["dense"] > 0.6


def test_a_k_that_does_not_beat_the_random_weight_sae_is_flagged():
    rng = np.random.default_rng(2)
    labels = rng.choice(["a", "b"], 400)
    informative = np.abs(rng.normal(size=(400, 20)))
    informative[:, 3] = labels == "a"
    trained = sparse_probe_arrays(informative, rng.normal(size=(400, 4)), labels, ks=(1,), seeds=2)
    assert trained.summary()[0]["flag"] == "" and "random_weights" not in trained.summary()[0]
    trained.random_weights = sparse_probe_arrays(informative, rng.normal(size=(400, 4)), labels, ks=(1,), seeds=2)  # as good
    row = trained.summary()[0]
    assert row["random_weights"] == row["accuracy"] == 1.0 and "random-weight model" in row["flag"]
    assert trained.to_dict()["random_weights"]["summary"][0]["accuracy"] == 1.0
    trained.random_weights = sparse_probe_arrays(np.abs(rng.normal(size=(400, 20))), rng.normal(size=(400, 4)), labels, ks=(1,), seeds=2)
    assert trained.summary()[0]["flag"] == ""  # beats a control that reads nothing
