import numpy as np
import pytest
import torch
import transformers as tf

import shatterbox as sb
from shatterbox.errors import InputError
from shatterbox.heads import STATS, head_stats

SENTENCES = [
    "Transformers possess surprising emerging features.",
    "The cat sat on the mat.",
    "A lot of people like animals so they adopt cats",
    "Dogs bark loudly, birds sing softly!",
]


def _previous_token_bert(tokenizer) -> sb.LoadedModel:
    """Tiny BERT whose layer 1 head 1 attends to the previous position, built by hand.

    Word and type embeddings are zero and position p is the one-hot e_p, so after LayerNorm
    h_p = a (e_p - c). Head 1 (dims 0-15) has k = h and q = h shifted by one dim, so
    q_i . k_j is largest exactly when j = i - 1.
    """
    torch.manual_seed(0)
    model = tf.BertModel(tf.BertConfig(num_hidden_layers=2, num_attention_heads=2, hidden_size=32,
                                       intermediate_size=48, max_position_embeddings=32))
    with torch.no_grad():
        emb = model.embeddings
        emb.word_embeddings.weight.zero_()
        emb.token_type_embeddings.weight.zero_()
        emb.position_embeddings.weight.copy_(torch.eye(32))
        att = model.encoder.layer[0].attention.self
        for proj in (att.query, att.key):
            proj.bias.zero_()
        shift = torch.zeros(16, 32)
        shift[torch.arange(15), torch.arange(1, 16)] = 1.0
        att.query.weight[:16] = shift * 8.0
        att.key.weight[:16] = torch.eye(32)[:16] * 8.0
    return sb.wrap(model, tokenizer, name="prev-token-bert")


def test_hand_set_previous_token_head_ranks_as_positional(default_model):
    m = _previous_token_bert(default_model.tokenizer)
    traces = sb.capture_batch(m, SENTENCES)
    assert traces[0].attentions[0, 0, 1:][np.arange(traces[0].n_tokens - 1), np.arange(traces[0].n_tokens - 1)].min() > 0.9
    stats = head_stats(traces)
    assert stats.kind(1, 1) == "previous-token"
    assert stats.values["prev"][0, 0] > 0.85 and stats.values["agreement"][0, 0] > 0.85
    v = stats.values
    assert (v["prev"] + v["self"] + v["next"] <= 1 + 1e-6).all()  # the old row sets allowed 1.00 / 0.14 / 0.00
    top = stats.ranking(top=1)[0]
    assert (top.layer, top.head, top.kind) == (1, 1, "previous-token")


def test_statistics_are_fractions_and_sum_sensibly(default_model):
    stats = head_stats(sb.capture_batch(default_model, SENTENCES))
    assert set(stats.values) == set(STATS) and stats.shape == (6, 12) and stats.n_texts == 4
    for name, arr in stats.values.items():
        assert ((arr >= -1e-9) & (arr <= 1 + 1e-9)).all(), name
    one = head_stats([sb.capture(default_model, SENTENCES[0])]).values
    a = sb.capture(default_model, SENTENCES[0]).attentions[3, 7].astype(np.float64)
    inner = range(1, len(a) - 1)  # rows with a previous and a next token: the same rows for all three
    assert abs(one["prev"][3, 7] - np.mean([a[i, i - 1] for i in inner])) < 1e-9
    assert abs(one["self"][3, 7] - np.mean([a[i, i] for i in inner])) < 1e-9
    assert abs(one["next"][3, 7] - np.mean([a[i, i + 1] for i in inner])) < 1e-9
    assert (one["prev"] + one["self"] + one["next"] <= 1 + 1e-6).all()  # shares of the same rows
    assert sum(stats.summary().values()) == 72
    ranked = stats.ranking()
    kinds = [r.kind == "delimiter (no-op)" for r in ranked]
    assert len(ranked) == 72 and kinds == sorted(kinds)  # delimiter heads only after every other head
    for group in (False, True):
        scores = [r.score for r, k in zip(ranked, kinds) if k == group]
        assert scores == sorted(scores, reverse=True)


def test_entropy_oracle_on_one_row(default_model):
    t = sb.capture(default_model, SENTENCES[1])
    p = t.attentions[2, 4].astype(np.float64)
    hand = np.mean([-(row * np.log(row)).sum() / np.log(len(row)) for row in p])
    assert abs(head_stats([t]).values["entropy"][2, 4] - hand) < 1e-9


def test_causal_entropy_uses_visible_keys(tiny_models):
    t = sb.capture(tiny_models["gpt2"], SENTENCES[0])
    ent = head_stats([t]).values["entropy"]
    assert ((ent >= 0) & (ent <= 1 + 1e-9)).all()
    # oracle: row i of a causal head sees keys 0..i only, so its entropy is normalised by log(i + 1); row 0 sees one
    # key (entropy 0); a head's value is the mean over its rows
    a = t.attentions.astype(np.float64)  # [layer, head, query, key]
    p = a[..., 1:, :]
    h = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1) / np.log(np.arange(2, a.shape[-1] + 1))
    np.testing.assert_allclose(ent, np.concatenate([np.zeros(a.shape[:2] + (1,)), h], -1).mean(-1), atol=1e-6)


def test_no_traces_is_a_clear_error():
    with pytest.raises(InputError, match="no texts"):
        head_stats([])


def test_agreement_of_one_text_says_what_it_is_over(default_model):
    one = head_stats([sb.capture(default_model, "The cat sat on the mat.")]).ranking(3)
    two = head_stats([sb.capture(default_model, "The cat sat on the mat."), sb.capture(default_model, "Dogs bark at night.")]).ranking(3)
    assert all("over the rows of one text" in row.reason for row in one)
    assert not any("one text" in row.reason for row in two)
