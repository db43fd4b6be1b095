"""The in-process simulator reads each token's level from the digit probabilities right after that token."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import transformers as tf

from shatterbox.errors import InputError
from shatterbox.models import default_model_path
from shatterbox.neurons import Excerpt, LMSimulator


class Planted(torch.nn.Module):
    """A stand-in language model: after the token "bank" it says 9, after anything else 0 (as next-token logits)."""

    def __init__(self, tokenizer):
        super().__init__()
        self.config = SimpleNamespace(name_or_path="planted")
        self.bank = tokenizer.convert_tokens_to_ids("bank")
        self.nine, self.zero = tokenizer.convert_tokens_to_ids("9"), tokenizer.convert_tokens_to_ids("0")
        self.vocab, self.calls = tokenizer.vocab_size, []

    def forward(self, input_ids, attention_mask):
        self.calls.append(tuple(input_ids.shape))
        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits[..., self.zero] = 30.0
        logits[..., self.nine] = torch.where(input_ids == self.bank, 60.0, 0.0)
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def tokenizer():
    return tf.AutoTokenizer.from_pretrained(default_model_path())


def test_levels_are_read_at_each_tokens_slot(tokenizer):
    model = Planted(tokenizer)
    sim = LMSimulator(model, tokenizer)
    out = sim.simulate("fires on bank", [Excerpt(0, ["the", "bank", "is", "wet"], np.zeros(4)), Excerpt(1, ["a", "bank"], np.zeros(2))])
    np.testing.assert_allclose(out[0], [0, 9, 0, 0], atol=1e-4)
    np.testing.assert_allclose(out[1], [0, 9], atol=1e-4)
    assert len(model.calls) == 1  # both excerpts in one padded forward pass


def test_batches_are_cut_by_tokens_and_agree(tokenizer):
    excerpts = [Excerpt(i, ["bank"] * (i + 1), np.zeros(i + 1)) for i in range(6)]
    whole = LMSimulator(Planted(tokenizer), tokenizer).simulate("x", excerpts)
    small_model = Planted(tokenizer)
    cut = LMSimulator(small_model, tokenizer, batch_tokens=120).simulate("x", excerpts)
    assert len(small_model.calls) > 1 and all(b * w <= 120 or b == 1 for b, w in small_model.calls)
    for a, b in zip(whole, cut):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_a_vocabulary_without_numbers_is_refused(tokenizer):
    class NoDigits:
        sep_token_id = pad_token_id = None

        def encode(self, text, add_special_tokens=False):
            return [1, 2]

    with pytest.raises(InputError, match="no single-token numbers 0-10"):
        LMSimulator(Planted(tokenizer), NoDigits())


def test_a_real_tiny_causal_lm_runs(tmp_path, tokenizer):
    lm = tf.BertLMHeadModel(tf.BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                          intermediate_size=37, is_decoder=True))
    lm.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    sim = LMSimulator.from_pretrained(tmp_path / "lm")
    out = sim.simulate("the word bank", [Excerpt(0, ["a", "bank", "##s"], np.zeros(3))])[0]
    assert out.shape == (3,) and ((out >= 0) & (out <= 10)).all() and sim.name == "lm:lm"
