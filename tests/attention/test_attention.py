"""Tables, rankings and steps against the Trace and against hand computations."""

import numpy as np
import pytest
import torch
import transformers as tf

import shatterbox as sb
from shatterbox.attention import merge_words
from shatterbox.errors import HeadOutOfRange, InputError, LayerOutOfRange, UnknownWord
from tests.conftest import CHAPTER


def test_token_table_labels_match_trace_rows(chapter_trace):
    t = sb.attention_table(chapter_trace, 1, 1)
    assert t.rows == t.columns == chapter_trace.labels
    np.testing.assert_array_equal(t.values, chapter_trace.attentions[0, 0])
    assert t.rows[0] == "[CLS]" and t.rows[-1] == "[SEP]"


@pytest.mark.parametrize("layer,head", [(1, 1), (1, 6), (6, 1), (6, 6)])
def test_chapter_heads_work_on_default_model(chapter_trace, layer, head):
    for level in ("token", "word"):
        for specials in (True, False):
            t = sb.attention_table(chapter_trace, layer, head, level=level, specials=specials)
            np.testing.assert_allclose(t.values.sum(axis=1), 1.0, atol=1e-6)


def test_hidden_specials_keep_labels_aligned(chapter_trace):
    """The book's notebook drops [CLS]/[SEP] labels but not their rows: ours drops both together."""
    full = chapter_trace.attentions[5, 5].astype(np.float64)
    t = sb.attention_table(chapter_trace, 6, 6, specials=False)
    assert "[CLS]" not in t.rows and "[SEP]" not in t.rows
    keep = np.flatnonzero(~chapter_trace.special)
    assert t.rows == [chapter_trace.labels[i] for i in keep]
    for r, i in enumerate(keep):
        expected = full[i, keep] / full[i, keep].sum()
        np.testing.assert_allclose(t.values[r], expected, atol=1e-12)
    assert "renormalised" in t.note


def _self_attending_bert(tokenizer) -> sb.LoadedModel:
    """A tiny one-head BERT that attends (almost) only to the token itself: q = k = 40 * h.

    Hidden states leave LayerNorm with equal norms, so h_i . h_j < h_i . h_i for distinct tokens.
    """
    torch.manual_seed(1)
    model = tf.BertModel(tf.BertConfig(num_hidden_layers=2, num_attention_heads=1, hidden_size=32, intermediate_size=48))
    with torch.no_grad():
        for layer in model.encoder.layer:
            for proj in (layer.attention.self.query, layer.attention.self.key):
                proj.weight.copy_(torch.eye(32) * 40.0)
                proj.bias.zero_()
    return sb.wrap(model, tokenizer, name="self-attending")


@pytest.mark.parametrize("specials", [True, False])
@pytest.mark.parametrize("level", ["token", "word"])
def test_forced_self_attention_lands_on_the_diagonal(default_model, specials, level):
    """If labels were shifted by one (the book's bug), the large weights would sit off the diagonal."""
    trace = sb.capture(_self_attending_bert(default_model.tokenizer), "dogs chase unbelievably quick cats")
    for layer in (1, 2):
        for head in (1,):
            t = sb.attention_table(trace, layer, head, level=level, specials=specials)
            assert (np.argmax(t.values, axis=1) == np.arange(len(t.rows))).all()
            if level == "token":
                assert np.diag(t.values).min() > 0.99
    word_table = sb.attention_table(trace, 1, 1, level="word", specials=specials)
    assert "unbelievably" in word_table.rows


def test_word_level_merges_pieces_like_a_hand_loop(default_model):
    trace = sb.capture(default_model, "Tokenization of unbelievably long words")
    a = trace.attentions[2, 3].astype(np.float64)
    W = len(trace.words)
    hand = np.zeros((W, W))
    for wi in range(W):
        rows = [i for i in range(trace.n_tokens) if trace.word_index[i] == wi]
        for wj in range(W):
            cols = [j for j in range(trace.n_tokens) if trace.word_index[j] == wj]
            hand[wi, wj] = np.mean([sum(a[i, j] for j in cols) for i in rows])
    t = sb.attention_table(trace, 3, 4, level="word")
    np.testing.assert_allclose(t.values, hand, atol=1e-12)
    np.testing.assert_allclose(t.values.sum(axis=1), 1.0, atol=1e-6)
    assert t.rows == trace.words and "Tokenization" in t.rows and len(t.rows) < trace.n_tokens


def test_merge_words_keeps_row_sums():
    rng = np.random.default_rng(0)
    a = rng.random((7, 7))
    a /= a.sum(axis=1, keepdims=True)
    merged = merge_words(a, np.array([0, 1, 1, 2, 3, 3, 3]), 4)
    np.testing.assert_allclose(merged.sum(axis=1), 1.0)


def test_ranking_is_sorted_and_matches_the_table(chapter_trace):
    r = sb.attends_to(chapter_trace, 6, 6, "Transformers", specials=False)
    weights = [w for _, w in r.items]
    assert weights == sorted(weights, reverse=True)
    assert abs(sum(weights) - 1) < 1e-9
    table = sb.attention_table(chapter_trace, 6, 6, level="word", specials=False)
    row = dict(zip(table.columns, table.values[table.rows.index("Transformers")]))
    for label, w in r.items:
        assert abs(row[label] - w) < 1e-12


def test_ranking_at_token_level(chapter_trace):
    r = sb.attends_to(chapter_trace, 1, 1, "possess", level="token")
    assert {label for label, _ in r.items} == set(chapter_trace.labels)


@pytest.mark.parametrize("layer,head", [(1, 1), (3, 7), (6, 12)])
def test_steps_reproduce_the_model_for_every_query(chapter_trace, layer, head):
    for q in range(chapter_trace.n_tokens):
        s = sb.attention_steps(chapter_trace, layer, head, q)
        assert s.max_abs_diff <= 1e-5
        assert abs(s.scaling - 1 / np.sqrt(s.d_k)) < 1e-7
        np.testing.assert_allclose(s.scaled, s.dots / np.sqrt(s.d_k), rtol=1e-6)


@pytest.mark.slow
def test_steps_on_a_causal_model_mask_future_keys(tiny_models):
    trace = sb.capture(tiny_models["gpt2"], CHAPTER)
    s = sb.attention_steps(trace, 2, 3, 2)
    assert s.blocked.tolist() == [False, False, False] + [True] * (trace.n_tokens - 3)
    assert (s.probs[3:] == 0).all() and s.max_abs_diff <= 1e-5


def test_steps_honour_sliding_windows_and_soft_caps(tiny_models):
    """Layer 1 of both Gemmas slides a 4-key window; Gemma 2 caps its scores at 1.5 (tanh)."""
    for name in ("gemma3-window", "gemma2-softcap"):
        trace = sb.capture(tiny_models[name], CHAPTER)
        s = sb.attention_steps(trace, 1, 2, 7)
        assert s.blocked.tolist() == [True] * 4 + [False] * 4 + [True] * (trace.n_tokens - 8)
        assert s.max_abs_diff <= 1e-5 and (s.probs[:4] == 0).all()
    assert s.softcap == 1.5 and np.abs(s.scaled[4:8]).max() < 1.5
    uncapped = sb.attention_steps(sb.capture(tiny_models["gemma3-window"], CHAPTER), 1, 2, 7)
    assert uncapped.softcap is None and np.allclose(uncapped.scaled, uncapped.dots * uncapped.scaling)


def test_steps_for_a_word_use_its_first_piece(default_model):
    trace = sb.capture(default_model, "Tokenization matters")
    s = sb.attention_steps(trace, 1, 1, "tokenization")
    assert s.query_label == "token" and s.query_index == 1


@pytest.mark.parametrize("layer,head,error,match", [
    (0, 1, LayerOutOfRange, "layers 1-6"),
    (7, 1, LayerOutOfRange, "layer 7 is out of range: this model has layers 1-6"),
    (1, 13, HeadOutOfRange, "heads 1-12"),
    (1, 0, HeadOutOfRange, "heads 1-12"),
])
def test_out_of_range_names_the_valid_range(chapter_trace, layer, head, error, match):
    for call in (
        lambda: sb.attention_table(chapter_trace, layer, head),
        lambda: sb.attends_to(chapter_trace, layer, head, "possess"),
        lambda: sb.attention_steps(chapter_trace, layer, head, 1),
    ):
        with pytest.raises(error, match=match):
            call()


def test_unknown_word_lists_the_words(chapter_trace):
    with pytest.raises(UnknownWord, match=r"'possesses' is not in the text; its words are: 'Transformers', 'possess'"):
        sb.attends_to(chapter_trace, 1, 1, "possesses")


def test_bad_level_and_token_index(chapter_trace):
    with pytest.raises(InputError, match="level must be"):
        sb.attention_table(chapter_trace, 1, 1, level="sentence")
    with pytest.raises(InputError, match="tokens 0-7"):
        sb.attention_steps(chapter_trace, 1, 1, 99)


def test_table_exports(chapter_trace):
    t = sb.attention_table(chapter_trace, 6, 6, level="word")
    d = t.to_dict()
    assert {"model", "layer", "head", "tokens", "attention"} <= set(d)
    assert d["tokens"] == t.rows and len(d["attention"]) == len(t.rows)
    lines = t.to_csv().strip().splitlines()
    assert len(lines) == len(t.rows) + 1 and lines[1].startswith("[CLS],")
