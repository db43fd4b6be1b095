"""Core SAE scores per layer: the held-out fit report and the downstream score, next to the random-weight control."""

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.factors import ce_loss_recovered, embedding_recovered, fit_factors
from shatterbox.models import random_weights
from shatterbox.sae import SaeScores, sae_scores
from shatterbox.factors import heldout_texts
from shatterbox.store import harvest


@pytest.fixture(scope="module")
def fitted(default_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("core")
    corpus = load_corpus("wordnet", limit=120)
    store = harvest(corpus, root / "trained", layers="2")
    control_model = random_weights(default_model, 0)
    control_store = harvest(corpus, root / "random", model=control_model, layers="2")
    settings = dict(kind="sae", n_factors=64, k=8, n_epochs=2)
    return fit_factors(store, **settings), fit_factors(control_store, **settings), control_store, control_model


@pytest.mark.slow
def test_scores_are_the_fit_report_and_the_downstream_score_beside_the_control(fitted, default_model):
    factors, c_factors, c_store, c_model = fitted
    scores = sae_scores(factors, default_model, texts=12, control=(c_factors, c_store, c_model))
    row = scores.table()[0]
    report = factors.reports[2]
    assert scores.downstream == "embedding" and row["variance_explained"] == report.variance_explained and row["dense_fraction"] == report.dense_fraction
    texts = heldout_texts(factors.open_store(), limit=12)
    assert 0 < len(texts) <= 12
    assert row["recovered"] == pytest.approx(embedding_recovered(factors, default_model, texts, 2)["recovered"])
    assert row["control variance_explained"] == c_factors.reports[2].variance_explained
    assert row["control recovered"] == pytest.approx(embedding_recovered(c_factors, c_model, texts, 2)["recovered"])


def test_a_score_that_does_not_beat_its_control_is_flagged():
    row = {"layer": 3, "variance_explained": 0.6, "pca_variance_explained": 0.4, "pca_components": 8, "recovered": 0.9, "downstream_flag": ""}
    assert SaeScores([row]).table()[0]["flag"] == ""
    flagged = SaeScores([row], [{"layer": 3, "variance_explained": 0.7, "recovered": 0.95}]).table()[0]["flag"]
    assert "does not beat the random-weight control" in flagged and "loss recovered does not beat" in flagged


@pytest.mark.slow
def test_a_control_that_is_not_one_is_refused(fitted, default_model):
    factors, c_factors, c_store, c_model = fitted
    with pytest.raises(InputError, match="cannot be the random-weight control"):
        sae_scores(factors, default_model, texts=4, control=(factors, factors.open_store(), default_model))
    with pytest.raises(InputError, match="not with 'default"):
        sae_scores(factors, c_model, texts=4)


def test_decoder_scores_are_the_ce_loss_recovered(tiny_models, tmp_path):
    model = tiny_models["llama-gqa"]
    store = harvest(load_corpus("wordnet", limit=80), tmp_path / "s", model=model, layers="1")
    factors = fit_factors(store, kind="sae", n_factors=32, k=4, n_epochs=1)
    row = sae_scores(factors, model, texts=6).table()[0]
    texts = heldout_texts(store, limit=6)
    ce = ce_loss_recovered(factors, model, texts, 1)
    assert row["increase"] == pytest.approx(ce["increase"]) and row["clean_loss"] == pytest.approx(ce["clean_loss"])
