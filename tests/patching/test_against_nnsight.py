"""The same patches through nnsight (an independent intervention library, installed by the test extra): every patched
output equals ours, on the shipped sentiment classifier (the default encoder) and on a tiny Llama decoder."""

from __future__ import annotations

import warnings

import pytest
import torch
import transformers as tf

import shatterbox as sb
from shatterbox.classifiers import mean_pool
from shatterbox.patching import LanguageModelTarget, patch
from tests.conftest import gpt2_tokenizer

nnsight = pytest.importorskip("nnsight", reason='nnsight is in the test extra: pip install -e ".[test]"')

pytestmark = pytest.mark.slow  # a second library loaded and traced: the full suite

CLEAN, CORRUPT = "The film was not bad.", "The film was very bad."


def _traced(model):
    with warnings.catch_warnings():  # BERT's submodules named "output" are renamed E_output by nnsight, with a warning each
        warnings.simplefilter("ignore")
        return nnsight.NNsight(model)


@pytest.mark.parametrize("layer, head, position", [(3, 5, 3), (1, 1, 4), (6, 12, 0)])
def test_a_head_patch_on_the_sentiment_classifier_equals_nnsights(layer, head, position):
    from shatterbox.classifiers.sentiment import sentiment

    clf = sentiment()
    ours = patch(CLEAN, CORRUPT, clf, component="head", positions="each", layers=[layer], label="positive", measure="logit")
    tok, m = clf.model.tokenizer, _traced(clf.model.model)
    clean, corrupt = tok([CLEAN], return_tensors="pt"), tok([CORRUPT], return_tensors="pt")
    cols = slice((head - 1) * 32, head * 32)
    with torch.inference_mode():
        with m.trace(**clean):
            source = m.encoder.layer[layer - 1].attention.E_output.dense.input.save()
        with m.trace(**corrupt):
            m.encoder.layer[layer - 1].attention.E_output.dense.input[:, position, cols] = source[:, position, cols]
            hidden = m.output.last_hidden_state.save()
        theirs = float(clf.head(mean_pool(hidden, corrupt["attention_mask"]))[0, 1])
    assert ours.values[0, head - 1, position] == pytest.approx(theirs, abs=1e-5)


def test_a_residual_patch_on_a_tiny_llama_equals_nnsights():
    torch.manual_seed(2)
    model = tf.LlamaForCausalLM(tf.LlamaConfig(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                                               intermediate_size=48, vocab_size=400, max_position_embeddings=64,
                                               initializer_range=0.3)).eval()
    model.set_attn_implementation("eager")
    loaded = sb.wrap(model, gpt2_tokenizer(), name="tiny-llama")
    target = LanguageModelTarget(loaded, answer=" a", wrong=" b", measure="logit_diff")
    ours = patch("a b c d", "a x c d", target, component="hidden", layers=[1, 2])
    tok = loaded.tokenizer
    a, b = tok(" a", add_special_tokens=False)["input_ids"][0], tok(" b", add_special_tokens=False)["input_ids"][0]
    clean, corrupt = tok(["a b c d"], return_tensors="pt"), tok(["a x c d"], return_tensors="pt")
    m = _traced(model)
    for li, layer in enumerate([1, 2]):
        for position in range(clean["input_ids"].shape[1]):
            with torch.inference_mode():
                with m.trace(**clean):
                    source = m.model.layers[layer - 1].output.save()
                with m.trace(**corrupt):
                    m.model.layers[layer - 1].output[:, position] = source[:, position]
                    logits = m.output.logits.save()
            last = torch.log_softmax(logits[0, -1].float(), dim=-1)
            assert ours.values[li, position] == pytest.approx(float(last[a] - last[b]), abs=1e-5)
