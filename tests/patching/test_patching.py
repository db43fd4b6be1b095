"""Activation patching and ablation, against oracles: planted models whose one deciding head is known, hand
computations, identities every patch must satisfy, one-at-a-time runs, and a model linear in the patched activation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import transformers as tf

import shatterbox as sb
from shatterbox.classifiers import from_model
from shatterbox.errors import InputError
from shatterbox.patching import (ClassifierTarget, LanguageModelTarget, Site, ablate, attribution_patch, intervening, make_target,
                                 pair_texts, patch, replace, site_means, zero)
from tests.conftest import gpt2_tokenizer

CLEAN, CORRUPT = "The film was not bad.", "The film was very bad."


def _planted_bert(head: tuple[int, int] = (2, 3)) -> ClassifierTarget:
    """A 2-layer, 4-head BERT classifier reading [CLS] whose only head with non-zero values is ``head``: no other head can
    carry a word to [CLS], so the sweep must find that head and no other."""
    torch.manual_seed(0)
    model = tf.BertForSequenceClassification(tf.BertConfig(num_hidden_layers=2, num_attention_heads=4, hidden_size=32,
                                                           intermediate_size=48, max_position_embeddings=64, num_labels=2,
                                                           initializer_range=0.3)).eval()
    model.set_attn_implementation("eager")
    _plant(head, [(layer.attention.self.value.weight, layer.attention.self.value.bias) for layer in model.bert.encoder.layer], 8)
    return ClassifierTarget(from_model(sb.wrap(model, sb.load().tokenizer, name="planted-bert")), label=0, measure="logit")


def _planted_llama(head: tuple[int, int] = (1, 2)) -> LanguageModelTarget:
    """The same plant in a 2-layer Llama decoder read at its last position (the deciding word comes before it)."""
    torch.manual_seed(0)
    model = tf.LlamaForCausalLM(tf.LlamaConfig(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, hidden_size=32,
                                               intermediate_size=48, vocab_size=400, max_position_embeddings=64,
                                               initializer_range=0.3)).eval()
    model.set_attn_implementation("eager")
    _plant(head, [(layer.self_attn.v_proj.weight, layer.self_attn.v_proj.bias) for layer in model.model.layers], 8)
    return LanguageModelTarget(sb.wrap(model, gpt2_tokenizer(), name="planted-llama"), measure="kl")


def _plant(head: tuple[int, int], values: list, size: int) -> None:
    with torch.no_grad():
        for li, (weight, bias) in enumerate(values, start=1):
            for hi in range(1, weight.shape[0] // size + 1):
                rows = slice((hi - 1) * size, hi * size)
                if (li, hi) == head:
                    weight[rows] *= 5.0
                else:
                    weight[rows] = 0.0
                    if bias is not None:
                        bias[rows] = 0.0


@pytest.mark.parametrize("build, clean, corrupt, planted", [
    (_planted_bert, "a good film", "a bad film", (2, 3)),
    (_planted_llama, "a b c d", "a x c d", (1, 2)),
], ids=["bert", "llama"])
def test_exact_patching_finds_the_planted_head_and_nothing_else(build, clean, corrupt, planted):
    target = build()
    r = patch(clean, corrupt, target, component="head")
    assert r.dims == ["layer", "head"] and r.values.shape == (2, 4) and abs(r.clean - r.corrupt) > 1e-3
    effect = r.effect
    assert effect[planted[0] - 1, planted[1] - 1] == pytest.approx(1.0, abs=1e-4)
    others = np.delete(effect.ravel(), (planted[0] - 1) * 4 + planted[1] - 1)
    assert np.abs(others).max() < 0.05
    assert r.ranking(1)[0]["layer"] == planted[0] and r.ranking(1)[0]["head"] == planted[1]
    noised = patch(clean, corrupt, target, component="head", direction="noise")  # the corrupted head in the clean run
    assert noised.effect[planted[0] - 1, planted[1] - 1] == pytest.approx(1.0, abs=1e-4)


def test_zero_ablating_a_head_equals_zeroing_its_columns_of_the_output_projection(default_model):
    """The hand computation: the same model with head 5 of layer 3's columns of the output projection set to 0."""
    inputs = default_model.tokenizer([CLEAN], return_tensors="pt")
    with torch.inference_mode(), intervening(default_model, [[zero(Site("head", 3, 5))]], tokens=inputs["input_ids"].shape[1]):
        hooked = default_model.model(**inputs).last_hidden_state
    by_hand = copy.deepcopy(default_model.model)
    with torch.no_grad():
        by_hand.encoder.layer[2].attention.output.dense.weight[:, 4 * 32:5 * 32] = 0.0
        expected = by_hand(**inputs).last_hidden_state
        plain = default_model.model(**inputs).last_hidden_state
    assert torch.allclose(hooked, expected, atol=1e-5) and not torch.allclose(plain, expected, atol=1e-3)


def test_patching_a_run_into_itself_changes_nothing():
    r = patch(CLEAN, CLEAN, component="head", positions="each", layers=[1, 4])
    assert np.abs(r.values - r.clean).max() <= 1e-5
    assert any("same metric" in n for n in r.notes)  # and it says the effect cannot be normalised


def test_patching_every_position_of_the_last_hidden_state_is_the_clean_run():
    target = make_target(None, label="positive")
    r = patch(CLEAN, CORRUPT, target, component="hidden", layers=[6], positions="all")
    assert r.values[0] == pytest.approx(r.clean, abs=1e-5) and abs(r.clean - r.corrupt) > 1.0
    assert r.normalised[0] == pytest.approx(1.0, abs=1e-6)


def test_a_batched_sweep_equals_one_intervention_at_a_time(default_model):
    target = make_target(None, label="positive")
    r = patch(CLEAN, CORRUPT, target, component="head", positions="each", layers=[2, 5])
    pair = pair_texts(target, CLEAN, CORRUPT)
    from shatterbox.patching import collecting

    with torch.inference_mode(), collecting(target.model, [Site("head", 5, 7)]) as found:
        target.score(pair.clean.inputs)
    source = found[Site("head", 5, 7)][0]
    for position in (1, 4, 7):
        value = torch.zeros_like(source)
        value[position] = source[position]
        with torch.inference_mode(), intervening(target.model, [[replace(Site("head", 5, 7), value, [position])]], source.shape[0]):
            alone = float(target.score(pair.corrupt.inputs).metric[0])
        assert r.values[1, 6, position] == pytest.approx(alone, abs=1e-5)


def test_attribution_patching_is_exact_where_the_metric_is_linear_in_the_patched_activation():
    """A Llama decoder without its final norm: the logit difference is linear in the last hidden state."""
    torch.manual_seed(1)
    model = tf.LlamaForCausalLM(tf.LlamaConfig(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, intermediate_size=48,
                                               vocab_size=400, max_position_embeddings=64, initializer_range=0.3)).eval()
    model.set_attn_implementation("eager")
    model.model.norm = torch.nn.Identity()
    loaded = sb.wrap(model, gpt2_tokenizer(), name="linear-tail")
    target = LanguageModelTarget(loaded, answer=" a", wrong=" b", measure="logit_diff")
    exact = patch("a b c d", "a x c d", target, component="hidden", layers=[2])
    approx = attribution_patch("a b c d", "a x c d", target, component="hidden", layers=[2])
    assert np.abs(exact.values - approx.values).max() <= 1e-4 and np.ptp(exact.values) > 1e-3
    assert np.abs(exact.effect - approx.effect).max() <= 1e-3  # positions before the changed word: 0 in both (a causal model)


def test_attribution_patching_ranks_the_sentiment_flip_like_exact_patching():
    exact = patch(CLEAN, CORRUPT, component="head")
    approx = attribution_patch(CLEAN, CORRUPT, component="head")
    assert approx.rows == 4 and exact.rows == 72 + 3 and exact.agreement(approx) > 0.9


@pytest.mark.slow
def test_mean_ablation_uses_the_mean_over_the_stores_tokens(tmp_path, default_model):
    """The mean of a hidden state computed by running the store's sentences equals the mean of the store's own column,
    and ablating the last hidden state to it everywhere gives the classifier's head applied to that mean by hand."""
    from shatterbox.classifiers.sentiment import sentiment
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest

    classifier = sentiment()
    store = harvest(load_corpus("wordnet", limit=40), tmp_path / "s", model=classifier.model, layers="6")
    site = Site("hidden", 6)
    mean = site_means(classifier.model, store, [site])[site]
    by_hand = store.activations("hidden_6").astype(np.float64).mean(axis=0)
    assert np.abs(mean.numpy() - by_hand).max() <= 1e-4
    target = make_target(classifier, label="positive", measure="logit")
    inputs = target.prepare(CLEAN).inputs
    with torch.inference_mode(), intervening(target.model, [[replace(site, mean)]], inputs["input_ids"].shape[1]):
        ablated = float(target.score(inputs).metric[0])
    expected = float(classifier.head(torch.tensor(by_hand, dtype=torch.float32)[None])[0, 1])
    assert ablated == pytest.approx(expected, abs=1e-4)


def test_a_store_of_another_model_is_refused_for_the_mean(tmp_path, default_model):
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest

    store = harvest(load_corpus("wordnet", limit=5), tmp_path / "s", layers="6")  # the untuned encoder, not the classifier
    with pytest.raises(InputError, match="harvested with 'default', not with this model .* take the mean from a store of the model"):
        ablate(["A fine day."], component="mlp", means=store)


def test_ablation_over_texts_ranks_each_texts_own_prediction():
    texts = ["A wonderful film.", "A dull, boring film.", "Not bad at all.", "I hated every minute."]
    r = ablate(texts, component="mlp", how="zero")
    assert r.n_texts == 4 and len(r.sites) == 6 and r.forward_passes >= 1
    from shatterbox.classifiers.sentiment import sentiment

    clf = sentiment()
    clean = clf.predict(texts)
    site = r.sites[int(np.argmax(r.drop))]
    target = make_target(clf, measure="prob")
    drops = []
    for i, text in enumerate(texts):  # by hand, text by text
        inputs = target.prepare(text).inputs
        with torch.inference_mode(), intervening(target.model, [[zero(site)]], inputs["input_ids"].shape[1]):
            p = clf.probabilities(inputs)[0, int(clean[i].argmax())]
        drops.append(clean[i].max() - float(p))
    assert r.drop.max() == pytest.approx(np.mean(drops), abs=1e-5)
    assert "only 4 texts" in r.notes[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(clean="The capital of France is", corrupt="The capital of the country of Poland is"), "differ in length .* same number of words"),
    (dict(component="heads"), "unknown component 'heads': choose one of hidden, head, attn, mlp"),
    (dict(layers=[7]), "layer 7 is out of range for hidden: 'default \\(sentiment-tuned\\)' has hidden states 0-6"),
    (dict(component="head", layers=[0]), "layer 0 is out of range for head: 'default \\(sentiment-tuned\\)' has layers 1-6"),
    (dict(direction="sideways"), "direction must be 'denoise'"),
    (dict(positions="some"), "positions must be 'each'"),
    (dict(measure="loss"), "unknown measure 'loss' for a classifier"),
    (dict(label="neutral"), "neutral"),
    (dict(answer=" Paris"), "a classifier is measured by label=NAME, not by an answer"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_bad_input_is_one_clear_error(kwargs, message):
    args = dict(clean=CLEAN, corrupt=CORRUPT) | kwargs
    with pytest.raises(InputError, match=message):
        patch(**args)


def test_sites_out_of_range_are_clear_errors(default_model):
    from shatterbox.patching import check_site

    for site, message in [(Site("head", 2, 13), "head 13 is out of range: 'default' has heads 1-12"),
                          (Site("neuron", 2, 1536), "neuron 1536 is out of range: 'default' has neurons 0-1535"),
                          (Site("mlp", 7), "layer 7 is out of range"), (Site("resid", 1), "unknown component 'resid'")]:
        with pytest.raises(InputError, match=message):
            check_site(default_model, site)
    with pytest.raises(InputError, match="vector has 3 numbers but the component holds 384"):
        with intervening(default_model, [[replace(Site("hidden", 2), torch.ones(3))]], tokens=4):
            pass


def test_resample_ablation_takes_each_site_from_another_text_by_hand():
    texts = ["A wonderful film.", "A dull, boring film.", "Not bad at all."]
    r = ablate(texts, component="mlp", how="resample", layers=[3])
    from shatterbox.classifiers.sentiment import sentiment

    clf = sentiment()
    clean = clf.predict(texts)
    target = make_target(clf)
    order = np.argsort([len(t) for t in texts], kind="stable")
    partner = (np.arange(3) + np.random.default_rng(0).integers(1, 3)) % 3  # the library's seeded choice, in length order
    drops = []
    for k, t in enumerate(order):
        other = texts[order[partner[k]]]
        inputs, source = target.prepare(texts[t]).inputs, target.prepare(other).inputs
        from shatterbox.patching import collecting

        with torch.inference_mode(), collecting(target.model, [Site("mlp", 3)]) as found:
            clf.logits(source)
        n = min(inputs["input_ids"].shape[1], source["input_ids"].shape[1])
        with torch.inference_mode(), intervening(target.model, [[replace(Site("mlp", 3), found[Site("mlp", 3)][0], list(range(n)))]],
                                                 inputs["input_ids"].shape[1]):
            p = clf.probabilities(inputs)[0, int(clean[t].argmax())]
        drops.append(clean[t].max() - float(p))
    assert r.drop[0] == pytest.approx(np.mean(drops), abs=1e-5) and r.how == "resample"
    with pytest.raises(InputError, match="at least 2 texts"):
        ablate(texts[:1], component="mlp", how="resample")


def test_word_positions_name_a_words_tokens(default_model):
    from shatterbox.patching import word_positions

    assert word_positions(default_model, "The film was not bad.", "NOT") == [4]
    with pytest.raises(InputError, match="'good' is not a word of the text: choose one of The, film, was, not, bad"):
        word_positions(default_model, "The film was not bad.", "good")
