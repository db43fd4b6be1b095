import time
import warnings

import pytest
import transformers as tf

import shatterbox as sb
from shatterbox.errors import AttentionUnavailable, ModelNotAvailable


def test_default_model_is_the_shipped_minilm(default_model):
    assert (default_model.n_layers, default_model.n_heads) == (6, 12)
    assert default_model.model.training is False
    assert default_model.model.config._attn_implementation == "shatterbox"
    assert default_model.max_length == 512


def test_tiny_families_load_from_folders(tiny_models):
    kinds = {name: type(m.model).__name__ for name, m in tiny_models.items()}
    assert kinds == {
        "bert": "BertModel",
        "distilbert": "DistilBertModel",
        "roberta": "RobertaModel",
        "gpt2": "GPT2LMHeadModel",
        "llama-gqa": "LlamaForCausalLM",
        "gemma3-window": "Gemma3ForCausalLM",
        "gemma2-softcap": "Gemma2ForCausalLM",
    }
    assert all(m.n_layers == 2 and m.n_heads == 4 for m in tiny_models.values())


def test_sdpa_model_is_switched_to_recorded_eager(default_model):
    model = tf.BertModel._from_config(
        tf.BertConfig(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, intermediate_size=48),
        attn_implementation="sdpa",
    )
    with pytest.warns(UserWarning, match="attention 'sdpa' -> recorded eager.*train -> eval"):
        trace = sb.capture(sb.wrap(model.train(), default_model.tokenizer, name="sdpa-bert"), "hello world")
    assert trace.attentions.shape == (2, 4, 4, 4)


def test_wrap_leaves_the_users_tokenizer_alone(tiny_dir):
    tokenizer = tf.AutoTokenizer.from_pretrained(tiny_dir["gpt2"])
    tokenizer.pad_token, tokenizer.padding_side = None, "left"
    model = tf.AutoModel.from_pretrained(tiny_dir["gpt2"], attn_implementation="eager").eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # eager and eval already: nothing changed, nothing said
        loaded = sb.wrap(model, tokenizer, name="gpt2")
    assert tokenizer.pad_token is None and tokenizer.padding_side == "left"
    assert loaded.tokenizer is not tokenizer and loaded.tokenizer.padding_side == "right" and loaded.tokenizer.pad_token is not None


def test_unknown_model_offline_says_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailable, match="not available locally.*model=DIR"):
        sb.load("no-such-org/no-such-model")
    assert time.perf_counter() - start < 10  # no network retries


def test_unknown_model_without_offline_flag_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(ModelNotAvailable):
        sb.load("no-such-org/no-such-model")


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotAvailable, match="not a Hugging Face model"):
        sb.load(str(tmp_path))


def test_model_without_attention_gets_one_clear_error(default_model):
    mamba = tf.MambaModel(tf.MambaConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, state_size=4))
    with pytest.raises(AttentionUnavailable, match="did not return attention probabilities"):
        sb.capture(sb.wrap(mamba, default_model.tokenizer, name="tiny-mamba"), "hello world")
