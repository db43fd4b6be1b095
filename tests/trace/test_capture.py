"""Capture against independent oracles: attention recomputed by hand, a plain HF forward, save/load."""

import warnings

import numpy as np
import pytest
import torch

import shatterbox as sb
from shatterbox.errors import EmptyText, InvalidTrace, TextTooLong
from tests.conftest import CHAPTER, PAIR, TINY


def hand_attention(trace: sb.Trace, causal: bool, config=None) -> np.ndarray:
    """softmax(Q K^T / sqrt(d_k)) from the captured queries and keys, with a causal mask built here, and
    the soft cap and the sliding windows read from the model's config (Gemma 2 and 3) where it has them."""
    q = trace.queries.astype(np.float64)
    k = trace.keys.astype(np.float64)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    cap = getattr(config, "attn_logit_softcapping", None)
    if cap:
        scores = cap * np.tanh(scores / cap)
    if causal:
        scores = np.where(np.triu(np.ones(scores.shape[-2:], dtype=bool), 1), -np.inf, scores)
    for layer, kind in enumerate(getattr(config, "layer_types", None) or []):
        if kind == "sliding_attention":
            outside = np.tril(np.ones(scores.shape[-2:], dtype=bool), -config.sliding_window)
            scores[layer] = np.where(outside, -np.inf, scores[layer])
    scores -= scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


CAUSAL = {"gpt2", "llama-gqa", "gemma3-window", "gemma2-softcap"}


def test_default_model_attention_equals_hand_softmax(chapter_trace):
    t = chapter_trace
    assert t.attentions.shape == (6, 12, t.n_tokens, t.n_tokens)
    np.testing.assert_allclose(hand_attention(t, causal=False), t.attentions, atol=1e-5, rtol=0)
    np.testing.assert_allclose(t.attentions.sum(-1), 1.0, atol=1e-5)
    assert not t.is_causal


@pytest.mark.parametrize("name", TINY)
def test_tiny_models_attention_equals_hand_softmax(tiny_models, name):
    t = sb.capture(tiny_models[name], CHAPTER)
    causal = name in CAUSAL
    assert t.is_causal is causal
    config = tiny_models[name].model.config
    np.testing.assert_allclose(hand_attention(t, causal, config), t.attentions, atol=1e-5, rtol=0)
    np.testing.assert_allclose(t.attentions.sum(-1), 1.0, atol=1e-5)
    finite = np.isfinite(t.scores)
    d = t.head_dim
    raw = t.queries.astype(np.float64) @ np.swapaxes(t.keys, -1, -2) / np.sqrt(d)
    if t.softcap:
        assert t.softcap == config.attn_logit_softcapping
        raw = t.softcap * np.tanh(raw / t.softcap)
    np.testing.assert_allclose(t.scores[finite], raw[finite], atol=1e-4)
    if causal:
        upper = np.triu(np.ones((t.n_tokens, t.n_tokens), dtype=bool), 1)
        assert (t.attentions[..., upper] == 0).all()
        assert np.isneginf(t.scores[..., upper]).all()
    else:
        assert finite.all()


@pytest.mark.parametrize("name", TINY)
def test_hidden_states_and_mlp_match_a_plain_forward(tiny_models, name):
    m = tiny_models[name]
    t = sb.capture(m, CHAPTER)
    enc = m.tokenizer(CHAPTER, return_tensors="pt")
    with torch.no_grad():
        out = m.model(**{k: v for k, v in enc.items() if k in m.forward_keys}, output_hidden_states=True)
    assert t.hidden_states.shape[0] == m.n_layers + 1
    np.testing.assert_allclose(t.hidden_states[-1], out.hidden_states[-1][0].numpy(), atol=1e-5)
    assert t.mlp is not None and t.mlp.shape[:2] == (m.n_layers, t.n_tokens) and t.mlp.shape[2] == 48
    if hasattr(out, "logits"):
        np.testing.assert_allclose(t.logits, out.logits[0].numpy(), atol=1e-4)
    else:
        assert t.logits is None


def test_mlp_activations_feed_the_down_projection(default_model, chapter_trace):
    """The recorded neurons, pushed through layer 1's down projection + residual + LayerNorm, give layer 1's output."""
    layer = default_model.model.encoder.layer[0]
    with torch.no_grad():
        attn_out = layer.attention(torch.from_numpy(chapter_trace.hidden_states[0][None]))[0]
        rebuilt = layer.output(torch.from_numpy(chapter_trace.mlp[0][None]), attn_out)[0]
    np.testing.assert_allclose(rebuilt.numpy(), chapter_trace.hidden_states[1], atol=1e-4)


@pytest.mark.parametrize("name", ["bert", "gpt2"])
def test_batched_capture_equals_one_by_one(tiny_models, name):
    m = tiny_models[name]
    texts = [CHAPTER, "hello world", PAIR[0]]
    batched = sb.capture_batch(m, texts, batch_size=2)
    for text, t in zip(texts, batched):
        single = sb.capture(m, text)
        assert single.tokens == t.tokens
        np.testing.assert_allclose(single.attentions, t.attentions, atol=1e-5)
        np.testing.assert_allclose(single.hidden_states, t.hidden_states, atol=1e-4)


def test_default_model_batch_of_different_lengths(default_model):
    texts = ["short", CHAPTER, "a much longer sentence with many more words than the first one has"]
    for text, t in zip(texts, sb.capture_batch(default_model, texts)):
        assert t.text == text
        np.testing.assert_allclose(t.attentions.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(sb.capture(default_model, text).attentions, t.attentions, atol=1e-5)


def test_sentence_pair_has_segments_and_words_of_both(default_model):
    t = sb.capture(default_model, *PAIR)
    assert t.text_pair == PAIR[1]
    seq_words = {(t.words[t.word_index[i]], int(t.sequence[i])) for i in range(t.n_tokens) if not t.special[i]}
    assert ("cats", 0) in seq_words and ("dogs", 1) in seq_words
    assert t.tokens.count("[SEP]") == 2 and t.tokens[0] == "[CLS]"
    np.testing.assert_allclose(hand_attention(t, causal=False), t.attentions, atol=1e-5)


def test_word_alignment_follows_tokenizer_offsets(default_model):
    t = sb.capture(default_model, "Tokenization isn't hard: 我喜欢猫!")
    assert t.words[1:-1] == ["Tokenization", "isn", "'", "t", "hard", ":", "我", "喜", "欢", "猫", "!"]
    pieces = [t.tokens[i] for i in np.flatnonzero(t.word_index == 1)]
    assert pieces == ["token", "##ization"]
    for i in np.flatnonzero(~t.special & (np.array(t.tokens) != "[UNK]")):
        start, end = t.offsets[i]
        assert t.text[start:end].lower().replace("##", "") in t.tokens[i].replace("##", "")


def test_byte_level_labels_are_readable(tiny_models):
    t = sb.capture(tiny_models["gpt2"], CHAPTER)
    assert not any(label.startswith("Ġ") for label in t.labels)
    assert t.words == ["Transformers", "possess", "surprising", "emerging", "features", "."]
    r = sb.capture(tiny_models["roberta"], CHAPTER)
    assert r.tokens[0] == "<s>" and r.tokens[-1] == "</s>" and r.words[1] == "Transformers"


def test_save_and_load_round_trip(tmp_path, chapter_trace, tiny_models):
    for trace in (chapter_trace, sb.capture(tiny_models["gpt2"], CHAPTER), sb.capture(tiny_models["roberta"], *PAIR)):
        path = trace.save(tmp_path / "t.safetensors")
        again = sb.Trace.load(path)
        assert again == trace
        assert again.tokens == trace.tokens and again.is_causal == trace.is_causal
        np.testing.assert_array_equal(again.scores, trace.scores)


def test_loading_a_file_that_is_not_a_trace(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not a trace")
    with pytest.raises(InvalidTrace, match="not a readable shatterbox trace"):
        sb.Trace.load(bad)
    with pytest.raises(InvalidTrace):
        sb.Trace.load(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01\x02", "\u200b"])
def test_empty_text_is_refused(default_model, text):
    with pytest.raises(EmptyText, match="empty"):
        sb.capture(default_model, text)


def test_empty_second_text_is_refused(default_model):
    with pytest.raises(EmptyText, match="second text"):
        sb.capture(default_model, "hello", "  ")


@pytest.mark.parametrize("text", ["I love 🤗 and ☕!", "مرحبا بالعالم", "שלום עולם", "naïve café\u0301", "a\x07b\tc"])
def test_odd_unicode_still_gives_a_trace(default_model, text):
    t = sb.capture(default_model, text)
    assert t.n_tokens >= 3 and len(t.words) >= 3
    np.testing.assert_allclose(t.attentions.sum(-1), 1.0, atol=1e-5)


def test_long_text_is_truncated_with_a_warning(default_model):
    text = " ".join(["word"] * 600)
    with pytest.warns(sb.TruncationWarning, match="90 tokens past the limit were cut off"):
        t = sb.capture(default_model, text)
    assert t.n_tokens == 512 and t.truncated == 90 and t.tokens[-1] == "[SEP]"


def test_long_text_can_be_refused(default_model):
    with pytest.raises(TextTooLong, match="512 tokens"):
        sb.capture(default_model, " ".join(["word"] * 600), truncate=False)


def test_short_text_gives_no_warning(default_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sb.capture(default_model, CHAPTER).truncated == 0


@pytest.mark.parametrize("name", TINY)
def test_attention_equals_a_freshly_loaded_unwrapped_model(tiny_dir, tiny_models, name):
    """Oracle outside shatterbox: the saved folder loaded again by transformers alone, eager attention."""
    import transformers as tf

    fresh = tf.AutoModel.from_pretrained(tiny_dir[name], attn_implementation="eager").eval()
    tokenizer = tf.AutoTokenizer.from_pretrained(tiny_dir[name])
    enc = tokenizer(CHAPTER, return_tensors="pt")
    with torch.no_grad():
        out = fresh(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}, output_attentions=True,
                    output_hidden_states=True)
    t = sb.capture(tiny_models[name], CHAPTER)
    assert t.token_ids.tolist() == enc["input_ids"][0].tolist()
    expected = torch.stack(out.attentions)[:, 0].numpy()
    assert t.attentions.shape == expected.shape
    np.testing.assert_allclose(t.attentions, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(t.hidden_states[-1], out.hidden_states[-1][0].numpy(), atol=1e-5)


def test_concurrent_captures_keep_their_own_mlp_activations(default_model):
    """Two threads capture at once: each Trace's MLP activations are its own (hooks shared by
    concurrent recordings used to give each recording the other's activations too)."""
    from concurrent.futures import ThreadPoolExecutor

    texts = ["A short one.", "A much longer sentence with many more words than the other one has in it."]
    alone = {t: sb.capture(default_model, t).mlp for t in texts}
    with ThreadPoolExecutor(2) as pool:
        traces = list(pool.map(lambda i: (texts[i % 2], sb.capture(default_model, texts[i % 2])), range(40)))
    for text, trace in traces:
        assert trace.mlp is not None and trace.mlp.shape == alone[text].shape
        np.testing.assert_allclose(trace.mlp, alone[text], atol=1e-5)


def test_a_batched_trace_holds_only_its_own_rows(default_model):
    from shatterbox.trace._trace import _ARRAYS

    traces = sb.capture_batch(default_model, ["One.", "A second, longer sentence here.", "Third one, in the middle."])
    for trace in traces:
        for name in _ARRAYS:
            array = getattr(trace, name)
            if array is not None:  # a view of the padded batch would keep all of it alive
                assert getattr(array.base, "nbytes", 0) <= array.nbytes, name
        est = sb.Trace.estimate_bytes(trace.n_tokens, 6, 12, 32, 384, 1536)
        assert abs(est - trace.nbytes) / trace.nbytes < 0.1
