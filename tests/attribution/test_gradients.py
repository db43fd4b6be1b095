"""Integrated gradients: completeness and agreement with captum; gradient x input; attention rollout."""

import numpy as np
import pytest
import torch

import shatterbox as sb
from shatterbox.attribution import TokenGame, attention_rollout, grad_times_input, integrated_gradients
from shatterbox.attribution.parts import rollout_relevance
from shatterbox.attribution._gradients import _embeddings, _probabilities
from shatterbox.classifiers import from_model

TEXT = "The ferry was late, but the sunrise over the islands was beautiful."


@pytest.fixture(scope="module")
def games(sentiment, classifier_dirs):
    out = {"sentiment": TokenGame(sentiment, TEXT)}
    for name, path in classifier_dirs.items():
        out[name] = TokenGame(from_model(path), "the cat sat on the mat today")
    return out


@pytest.mark.parametrize("name", ["sentiment", "bert", "distilbert", "gpt2"])
def test_completeness_within_one_percent(games, name):
    r = integrated_gradients(games[name], steps=32)
    gap = np.abs(r.values.sum(axis=0) - (r.full - r.base))
    assert gap.max() <= 0.01 * np.abs(r.full - r.base).max() + 1e-7


def test_baseline_is_the_all_masked_text(games):
    game = games["sentiment"]
    r = integrated_gradients(game)
    full, empty = game.ends()
    assert np.allclose(r.base, empty, atol=1e-5) and np.allclose(r.full, full, atol=1e-5)


@pytest.mark.slow
def test_equals_captum(games):
    from captum import attr as captum_attr
    game = games["sentiment"]
    x, x0 = _embeddings(game)
    ours = integrated_gradients(game, steps=32).values
    for label in range(2):
        ig = captum_attr.IntegratedGradients(lambda e: _probabilities(game, e))
        tokens = ig.attribute(x[None], baselines=x0[None], target=label, n_steps=32, method="gausslegendre")[0].sum(-1)
        words = game.to_words(tokens.detach().double().numpy())
        assert np.allclose(ours[:, label], words, atol=1e-5)


def test_grad_times_input_by_hand(games):
    game = games["bert"]
    x, _ = _embeddings(game)
    e = x[None].clone().requires_grad_(True)
    _probabilities(game, e)[0, 2].backward()
    tokens = (e.grad[0] * x).sum(-1).numpy()
    expected = np.zeros(game.n)
    cols = np.flatnonzero(game.token_word >= 0)
    np.add.at(expected, game.token_word[cols], tokens[cols])
    assert np.allclose(grad_times_input(game).values[:, 2], expected, atol=1e-6)


def test_rollout_equals_a_hand_loop():
    rng = np.random.default_rng(0)
    att = rng.random((3, 2, 4, 4))
    att /= att.sum(-1, keepdims=True)
    expected = np.eye(4)
    for layer in range(3):
        a = 0.5 * att[layer].mean(0) + 0.5 * np.eye(4)
        a = a / a.sum(1, keepdims=True)
        expected = a @ expected
    assert np.allclose(attention_rollout(att), expected)
    assert np.allclose(attention_rollout(att).sum(1), 1.0)
    assert np.allclose(rollout_relevance(att, "mean"), expected.mean(0))


def test_rollout_reads_the_last_token_of_a_causal_classifier(classifier_dirs):
    assert from_model(classifier_dirs["gpt2"]).pooling == "last"
    assert from_model(classifier_dirs["bert"]).pooling == "first"
    a = sb.attribution.explain(classifier_dirs["gpt2"], "the cat sat on the mat", method="rollout")
    assert np.isclose(a.values[:, 0].sum(), 1.0)
