"""Steering against oracles: strength 0 is plain greedy generation, a planted direction that raises one token's logit
raises its probability monotonically, DiffMean is a hand computation from the store, and bad input is one message."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from shatterbox.corpus import Corpus, load_corpus
from shatterbox.errors import InputError
from shatterbox.generation import generate, tokenize_prompt
from shatterbox.patching import Site, add
from shatterbox.steering import (SteeringResult, diffmean, factor_direction, greedy, parse_alphas, probe_direction, random_direction,
                                 sentiment_direction, steer, vector_direction)
from shatterbox.store import harvest

PROMPTS = ["hello world, this is", "The output shows the"]


@pytest.mark.parametrize("name", ["llama-gqa", "gemma3-window", "gpt2"])
def test_strength_zero_is_plain_greedy_generation(tiny_models, name):
    model = tiny_models[name]
    d = random_direction(model, 1, seed=2)
    r = steer(model, PROMPTS, d, alphas="0,1", max_new_tokens=8, concept="hello,world", instruction="")
    for k, prompt in enumerate(PROMPTS):
        unsteered = next(row for row in r.rows if row["prompt"] == k and row["kind"] == "none")
        plain = generate(model, prompt, max_new_tokens=8)
        assert unsteered["text"] == plain.continuation and unsteered["tokens"] == plain.n_new
    steered = [row["text"] for row in r.rows if row["alpha"] == 1.0]
    assert any(t != row["text"] for t, row in zip(steered, r.rows))  # a strength of one residual norm changes something


@pytest.mark.parametrize("layer", [1, 2])
def test_a_planted_direction_raises_its_tokens_probability_monotonically(tiny_models, layer):
    """The unembedding row of one token, added to the residual stream: its log-probability rises with the strength."""
    model = tiny_models["llama-gqa"]
    token = 123
    direction = model.model.lm_head.weight[token].detach()
    ids = tokenize_prompt(model, PROMPTS[0]).ids
    strengths = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
    plans = [[add(Site("hidden", layer), direction * a)] if a else [] for a in strengths]
    _, watched = greedy(model, ids, plans, max_new_tokens=1, watch=[token])
    assert (np.diff(watched) > 0).all() and watched[-1] - watched[0] > 0.5


def test_diffmean_is_the_difference_of_the_two_sets_token_means_by_hand(tmp_path, default_model):
    corpus = Corpus(pa.table({"id": np.arange(6), "text": ["What a great day.", "I love it.", "Superb work!", "Awful food.", "I hate rain.", "Dull."],
                              "label": ["pos", "pos", "pos", "neg", "neg", "neg"]}), "t")
    store = harvest(corpus, tmp_path / "s", layers="3")
    d = diffmean(store, 3, "label", "pos", "neg")
    table = store.query("select t.hidden_3 as x, s.label as label from tokens t join sentences s on t.sentence_id = s.id where not t.special")
    x = np.array(table.column("x").to_pylist(), dtype=np.float64)
    labels = np.array(table.column("label").to_pylist())
    by_hand = x[labels == "pos"].mean(axis=0) - x[labels == "neg"].mean(axis=0)
    assert np.allclose(d.vector.numpy(), by_hand, atol=1e-5)
    assert d.kind == "diffmean" and d.layer == 3 and d.model == "default"
    with pytest.raises(InputError, match="no sentence of the store has label = 'neutral'"):
        diffmean(store, 3, "label", "pos", "neutral")
    with pytest.raises(InputError, match="no label column 'mood'"):
        diffmean(store, 3, "mood", "pos", "neg")


def test_a_probe_direction_separates_its_classes(tmp_path):
    store = harvest(load_corpus("sentiment", limit=160, seed=0), tmp_path / "s", layers="4")
    d = probe_direction(store, "label", 4, "positive")
    x = store.sentence_vectors("hidden_4", store.sentences().column("id").to_pylist())
    labels = np.array(store.sentences().column("label").to_pylist())
    projected = x @ d.unit.numpy()
    assert projected[labels == "positive"].mean() > projected[labels == "negative"].mean()
    negative = probe_direction(store, "label", 4, "negative")
    assert np.allclose(negative.vector.numpy(), -d.vector.numpy(), atol=1e-5)  # binary: one weight vector, two signs


def test_a_random_direction_is_the_same_length_and_layer_seeded(default_model):
    a, b = random_direction(default_model, 2, seed=4), random_direction(default_model, 2, seed=4)
    assert torch.equal(a.vector, b.vector) and abs(a.norm - 1.0) < 1e-6 and a.layer == 2
    assert not torch.equal(a.vector, random_direction(default_model, 2, seed=5).vector)


def test_the_report_flags_a_direction_that_does_not_beat_random_and_picks_the_best():
    rows = [{"prompt": 0, "direction": "unsteered", "kind": "none", "alpha": 0.0, "concept": 0.2, "fluency": -2.0, "text": "", "tokens": 1},
            {"prompt": 0, "direction": "weak", "kind": "probe", "alpha": 1.0, "concept": 0.25, "fluency": -2.1, "text": "", "tokens": 1},
            {"prompt": 0, "direction": "costly", "kind": "factor", "alpha": 1.0, "concept": 0.95, "fluency": -3.5, "text": "", "tokens": 1},
            {"prompt": 0, "direction": "good", "kind": "diffmean", "alpha": 1.0, "concept": 0.7, "fluency": -2.5, "text": "", "tokens": 1},
            {"prompt": 0, "direction": "random (seed 0)", "kind": "random", "alpha": 1.0, "concept": 0.3, "fluency": -2.2, "text": "", "tokens": 1}]
    r = SteeringResult("m", 1, "all", "sentiment", "positive", [0.0, 1.0], [], ["p"], rows)
    flags = {s["direction"]: s["flag"] for s in r.summary()}
    assert flags["weak"] and not flags["good"] and not flags["costly"]
    assert r.best()["direction"] == "good"  # "costly" loses 1.5 nats per token, more than the 1 nat budget
    assert r.verdict().startswith("best: good at strength 1: concept +0.50")
    assert r.to_csv().count("\n") == 1 + len(rows)


def test_steering_with_a_words_concept_scores_the_log_probability_of_the_words(tiny_models):
    model = tiny_models["llama-gqa"]
    token = 123
    word = model.tokenizer.decode([token])
    d = vector_direction(model.model.lm_head.weight[token].detach(), 2, name="planted")
    r = steer(model, PROMPTS[0], d, alphas="0.5,2", max_new_tokens=4, concept=[word], instruction="")
    by = {(s["direction"], s["alpha"]): s for s in r.summary()}
    assert by[("planted", 2.0)]["concept"] > by[("planted", 0.5)]["concept"] > by[("unsteered", 0.0)]["concept"]
    assert r.to_json()


def test_steering_bad_input_is_one_message(tiny_models, default_model, tmp_path):
    model = tiny_models["llama-gqa"]
    good = random_direction(model, 1)
    cases = [
        (dict(directions=vector_direction(np.ones(7), 1)), "has 7 numbers but the residual stream"),
        (dict(directions=good, alphas="1,inf"), "strength 'inf' is not a finite number"),
        (dict(directions=good, alphas="big"), "strength 'big' is not a finite number"),
        (dict(directions=good, layer=9), "layer 9 is out of range"),
        (dict(directions=good, prompts=[" "]), "a prompt is empty"),
        (dict(directions=good, positions="some"), "positions must be all or generated"),
        (dict(directions=good, concept=[]), "no concept given"),
        (dict(directions=good, target="happy"), "target is positive or negative"),
        (dict(directions=[good, random_direction(model, 2)]), "steer along one layer's directions at a time"),
        (dict(directions=vector_direction(np.zeros(32), 1)), "is zero or not finite"),
    ]
    for kwargs, message in cases:
        kwargs = {"prompts": PROMPTS[0], **kwargs}
        with pytest.raises(InputError, match=message):
            steer(model, kwargs.pop("prompts"), kwargs.pop("directions"), max_new_tokens=2, **kwargs)
    with pytest.raises(InputError, match="has no language-model head"):
        steer(default_model, "a cat", random_direction(default_model, 1))


def test_a_direction_from_another_models_store_is_refused(tmp_path, tiny_models):
    store = harvest(load_corpus("sentiment", limit=20, seed=0), tmp_path / "s", model=tiny_models["gemma3-window"], layers="1")
    d = diffmean(store, 1, "label", "positive", "negative")
    with pytest.raises(InputError, match="comes from .*gemma3-window.*, not from .*llama-gqa.*: build it from a store of that model"):
        steer(tiny_models["llama-gqa"], PROMPTS[0], d, max_new_tokens=2)


def test_a_factors_file_from_another_model_is_refused(tmp_path, default_model, tiny_models):
    from shatterbox.factors import fit_factors

    store = harvest(load_corpus("wordnet", limit=60, seed=0), tmp_path / "s", layers="2")
    factors = fit_factors(store, layers=[2], n_factors=8, kind="sae", n_epochs=1, k=4)
    path = factors.save(tmp_path / "f.safetensors")
    d = factor_direction(path, 3, 2)
    assert d.kind == "factor" and d.vector.shape == (384,)
    with pytest.raises(InputError, match="has 384 numbers but the residual stream of .*llama-gqa.* has 32"):
        steer(tiny_models["llama-gqa"], PROMPTS[0], d, max_new_tokens=2)
    with pytest.raises(InputError, match="factor 99 is out of range"):
        factor_direction(path, 99, 2)
    with pytest.raises(InputError, match="fitted on layers \\[2\\], not 4"):
        factor_direction(path, 3, 4)


def test_parse_alphas_puts_zero_first():
    assert parse_alphas("2, 1, 0, 1") == [0.0, 1.0, 2.0]


@pytest.mark.slow
@pytest.mark.decoder
def test_gemma_strength_zero_is_plain_generation_and_diffmean_moves_sentiment(gemma):
    d = sentiment_direction(gemma, 9)  # harvested once into the cache, where `shatterbox steer --diffmean sentiment` finds it
    prompts = ["The weather today is", "My neighbour said that"]
    r = steer(gemma, prompts, d, alphas="0.05", max_new_tokens=10)
    for k, prompt in enumerate(prompts):
        assert next(x for x in r.rows if x["prompt"] == k and x["kind"] == "none")["text"] == generate(gemma, prompt, max_new_tokens=10).continuation
    by = {(s["kind"], s["alpha"]): s for s in r.summary()}
    assert by[("diffmean", 0.05)]["concept_change"] > by[("random", 0.05)]["concept_change"] + 0.1


def test_generated_positions_steer_only_from_the_last_prompt_token_on(tiny_models):
    """At the last hidden state no position reads another, so the first step's distribution is the same whether the
    direction is added everywhere or from the last prompt token on; one layer down, earlier positions feed the last."""
    model = tiny_models["llama-gqa"]
    ids = tokenize_prompt(model, PROMPTS[0]).ids
    direction = model.model.lm_head.weight[123].detach() * 3.0
    for layer, same in ((model.n_layers, True), (1, False)):
        plans = [[add(Site("hidden", layer), direction)]]
        _, everywhere = greedy(model, ids, plans, max_new_tokens=1, watch=[123])
        _, from_last = greedy(model, ids, plans, max_new_tokens=1, watch=[123], start=len(ids) - 1)
        assert bool(abs(everywhere[0] - from_last[0]) < 1e-5) == same
