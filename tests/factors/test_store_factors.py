"""Factors fitted on a real store: same tokens at every layer, held-out by sentence, saved whole, CLI."""

import json

import numpy as np
import pytest

from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.factors import Factors, fit_factors, importance, layer_vectors, levels
from shatterbox.store import harvest


@pytest.fixture(scope="module")
def store(default_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("factors") / "s"
    return harvest(load_corpus("wordnet", limit=150, seed=0), root, model=default_model, layers="0,1,3,6", what="hidden,mlp")


@pytest.fixture(scope="module")
def factors(store):
    return fit_factors(store, n_factors=48, alpha=1.5, n_epochs=2, max_tokens=800, seed=0)


@pytest.mark.slow
def test_layer_vectors_are_the_same_tokens_normalised(store):
    v = layer_vectors(store, [1, 6], max_tokens=600, heldout=0.2, seed=1)
    assert len(v.train[1]) == len(v.train[6]) == v.train_tokens.num_rows > 300
    assert not set(v.train_tokens.column("sentence_id").to_pylist()) & set(v.heldout_tokens.column("sentence_id").to_pylist())
    assert "[CLS]" not in v.train_tokens.column("token").to_pylist()
    for layer in (1, 6):
        np.testing.assert_allclose(v.train[layer].mean(0), 0, atol=1e-3)
        assert (v.train[layer] ** 2).sum(1).mean() == pytest.approx(384, rel=1e-3)
    # oracle: one token's raw hidden state read by SQL equals the un-normalised vector
    sid, pos = v.train_tokens.column("sentence_id")[0].as_py(), v.train_tokens.column("position")[0].as_py()
    raw = store.activations("hidden_6", f"sentence_id = {sid} and position = {pos}")[0]
    np.testing.assert_allclose(v.train[6][0] * v.scale[6] + v.mean[6], raw, atol=1e-4)


@pytest.mark.slow
def test_fit_on_the_store_reports_every_layer_and_beats_pca(factors):
    assert factors.layers == [1, 3, 6] and factors.importance_.shape == (48, 3)
    for report in factors.reports.values():
        assert report.variance_explained > report.pca_variance_explained
        assert 1 <= report.mean_l0 < 48
    assert sum(factors.level_counts().values()) == 48


def test_save_and_load_keep_codes_and_curves(factors, store, tmp_path):
    path = factors.save(tmp_path / "f.safetensors")
    back = Factors.load(path)
    hidden = store.activations("hidden_3", "position between 1 and 2")
    np.testing.assert_array_equal(back.codes(hidden, 3), factors.codes(hidden, 3))
    np.testing.assert_array_equal(back.importance_, factors.importance_)
    assert back.levels_.tolist() == factors.levels_.tolist() and back.store == factors.store
    assert back.reports == factors.reports


def test_importance_is_the_mean_of_top_coefficients_by_hand():
    rng = np.random.default_rng(0)
    codes = {1: rng.random((200, 3)), 2: rng.random((200, 3))}
    got = importance(codes, top_fraction=0.05)
    np.testing.assert_allclose(got[:, 0], np.sort(codes[1], axis=0)[-10:].mean(0))
    assert levels(np.array([[1.0, 0.0], [0.0, 1.0]]), [1, 6]).tolist() == ["low", "high"]


def test_bad_requests_name_the_fix(store, factors):
    with pytest.raises(InputError, match="no hidden states of layer 2"):
        layer_vectors(store, [2])
    with pytest.raises(InputError, match="unknown factor model"):
        fit_factors(store, kind="nmf")
    with pytest.raises(InputError, match="fitted on layers"):
        factors.codes(np.zeros((1, 384)), 2)
    with pytest.raises(InputError, match="fitted on 384"):
        factors.codes(np.zeros((1, 10)), 3)


def test_top_contexts_of_a_factor_equal_a_direct_sort_of_its_codes(factors, store):
    hidden = store.activations("hidden_3", "not special")
    codes = factors.codes(hidden, 3)
    unit = int(codes.max(0).argmax())
    top = store.top_rows("hidden_3", unit, 5, transform=lambda h: factors.codes(h, 3), where="not special")
    np.testing.assert_allclose(top.column("value").to_numpy(), np.sort(codes[:, unit])[::-1][:5], rtol=1e-5)


@pytest.mark.slow
def test_fitted_factors_recover_part_of_the_sentence_embedding(factors, store, default_model):
    from shatterbox.factors import embedding_recovered

    texts = store.sentences("true").column("text").to_pylist()[:24]
    r = embedding_recovered(factors, default_model, texts, 3)
    assert 0.0 < r["recovered"] < 1.0 and r["reconstructed_loss"] < r["zero_ablated_loss"]


@pytest.mark.slow
def test_seed_spread_is_the_mean_and_sd_of_separate_fits(store):
    from shatterbox.factors import seed_spread

    params = dict(n_factors=24, alpha=1.5, n_epochs=1, max_tokens=500, layers=[3])
    spread = seed_spread(store, (0, 1, 2), **params)[3]
    values = [fit_factors(store, seed=s, **params).reports[3].variance_explained for s in (0, 1, 2)]
    assert spread["variance_explained_mean"] == pytest.approx(np.mean(values))
    assert spread["variance_explained_sd"] == pytest.approx(np.std(values, ddof=1)) and spread["variance_explained_sd"] > 0
    with pytest.raises(InputError, match="two seeds"):
        seed_spread(store, (0,))


def test_per_layer_fit_trains_each_layer_alone_and_reads_every_layer(store, tmp_path):
    from shatterbox.factors import SparseDictionary, evaluate

    params = dict(n_factors=16, alpha=1.5, n_epochs=1)
    per = fit_factors(store, layers=[1, 6], per_layer=True, max_tokens=600, seed=0, **params)
    v = layer_vectors(store, [1, 6], max_tokens=600, seed=0)
    assert not per.shared and per.n_factors == 32 and per.importance_.shape == (32, 2)
    assert per.home(3) == 1 and per.home(20) == 6 and per.companions(20) == list(range(16, 32))
    # oracle: the layer-6 model is the same fit done by hand on layer 6's tokens only
    alone = SparseDictionary(seed=0, **params).fit(v.train[6])
    np.testing.assert_allclose(per.models[6].components_, alone.components_, atol=1e-6)
    assert per.reports[6].variance_explained == pytest.approx(evaluate(alone, v.heldout[6], v.train[6]).variance_explained, abs=1e-6)
    # codes: layer 6's vectors read by both dictionaries, side by side
    raw = store.activations("hidden_6", "position between 1 and 3")
    codes = per.codes(raw, 6)
    x = (raw - per.mean[6]) / per.scale[6]
    np.testing.assert_allclose(codes[:, 16:], alone.transform(x), atol=1e-5)
    np.testing.assert_allclose(codes[:, :16], per.models[1].transform(x), atol=1e-5)
    assert not per.codes(raw, 6, units=[20])[:, :16].any()
    # reconstruction uses the layer's own dictionary only
    own = alone.inverse_transform(alone.transform(x)) * per.scale[6] + per.mean[6]
    np.testing.assert_allclose(per.reconstruct(raw, 6), own, atol=1e-4)
    # the diagonal of the importance curves: each dictionary on its own layer's tokens, by hand
    rows = np.sort(np.random.default_rng(0).permutation(len(v.train[1]))[:5000])
    np.testing.assert_allclose(per.importance_[16:, 1], importance({6: alone.transform(v.train[6][rows])})[:, 0], rtol=1e-5)
    back = Factors.load(per.save(tmp_path / "per.safetensors"))
    assert not back.shared and back.n_factors == 32
    np.testing.assert_array_equal(back.codes(raw, 6), codes)
    assert back.reports == per.reports


@pytest.mark.slow
def test_a_per_layer_report_reads_each_factor_with_its_own_dictionary(store):
    from shatterbox.factors import factors_report
    from shatterbox.render.factors import factors_page

    per = fit_factors(store, layers=[1, 6], per_layer=True, n_factors=16, alpha=1.5, n_epochs=1, max_tokens=600, seed=0)
    report = factors_report(per, store, per_level=2, k=3)
    assert report["model"].startswith("per layer (2): SparseDictionary") and report["shared"] is False
    shown = [entry for entries in report["sections"].values() for entry in entries]
    assert shown and all(entry["contexts"] for entry in shown)
    for entry in shown:  # oracle: the top value is the largest code of the factor's own dictionary at its peak layer
        factor, layer = entry["factor"], entry["peak_layer"]
        hidden = store.activations(f"hidden_{layer}", "not special")
        own = per.models[per.home(factor)].transform(per.normalise(hidden, layer))[:, factor % 16]
        assert entry["contexts"][0]["value"] == pytest.approx(float(own.max()), rel=1e-5)
    assert "per layer (2)" in factors_page(report)


def test_open_store_refuses_a_store_harvested_again(factors, store):
    import dataclasses

    assert factors.open_store().manifest["key"] == store.manifest["key"]
    stale = dataclasses.replace(factors, store={**factors.store, "key": "another harvest"})
    with pytest.raises(InputError, match="harvested again since these factors were fitted"):
        stale.open_store()
