"""Embedding recovered: exact reconstructions recover 1, zeros recover 0; the patch hook changes only its layer."""

import numpy as np
import pytest
import torch

from shatterbox.errors import InputError
from shatterbox.factors import ce_loss_recovered, embedding_recovered, lm_loss, patched_layer
from tests.conftest import CORPUS


class Planted:
    """Factors whose reconstruction is given: the identity, or zeros."""

    def __init__(self, rebuild):
        self.layers, self.mean, self.rebuild = [3], {3: np.zeros(384, np.float32)}, rebuild

    def reconstruct(self, hidden, layer):
        return self.rebuild(hidden)


@pytest.mark.slow
def test_identity_recovers_everything_and_zeros_nothing(default_model):
    texts = CORPUS[:6]
    exact = embedding_recovered(Planted(lambda h: h), default_model, texts, 3)
    assert exact["reconstructed_loss"] == pytest.approx(0, abs=1e-6) and exact["recovered"] == pytest.approx(1, abs=1e-5)
    assert exact["zero_ablated_loss"] > 0.05  # zeroing a layer's word tokens changes the embedding
    nothing = embedding_recovered(Planted(np.zeros_like), default_model, texts, 3)
    assert nothing["recovered"] == pytest.approx(0, abs=1e-6)
    half = embedding_recovered(Planted(lambda h: h + np.random.default_rng(0).normal(0, 0.5, h.shape).astype(np.float32)), default_model, texts, 3)
    assert 0 < half["recovered"] < 1


def test_patch_changes_the_output_only_through_its_layer(default_model):
    enc = default_model.tokenizer(CORPUS[0], return_tensors="pt")
    with torch.inference_mode():
        clean = default_model.model(**enc, output_hidden_states=True).hidden_states
        with patched_layer(default_model, 6, lambda h: h * 2):
            patched = default_model.model(**enc, output_hidden_states=True).hidden_states
    torch.testing.assert_close(patched[5], clean[5])
    torch.testing.assert_close(patched[6], clean[6] * 2)
    with pytest.raises(InputError, match="blocks 1-6"):
        with patched_layer(default_model, 7, lambda h: h):
            pass


def test_a_layer_the_factors_were_not_fitted_on_is_a_clear_error(default_model):
    with pytest.raises(InputError, match="fitted on layers"):
        embedding_recovered(Planted(lambda h: h), default_model, CORPUS[:2], 5)


def _decoder_planted(width: int, layer: int, rebuild):
    class PlantedLM(Planted):
        def __init__(self):
            self.layers, self.mean, self.rebuild = [layer], {layer: np.zeros(width, np.float32)}, rebuild
    return PlantedLM()


def _ce_checks(model, texts, layer):
    width = model.model.config.hidden_size
    exact = ce_loss_recovered(_decoder_planted(width, layer, lambda h: h), model, texts, layer)
    assert exact["spliced_loss"] == pytest.approx(exact["clean_loss"], abs=1e-4) and exact["recovered"] == pytest.approx(1, abs=1e-4)
    nothing = ce_loss_recovered(_decoder_planted(width, layer, np.zeros_like), model, texts, layer)
    assert nothing["recovered"] == pytest.approx(0, abs=1e-6) and nothing["increase"] == pytest.approx(nothing["zero_ablated_loss"] - nothing["clean_loss"])
    return exact


def test_ce_loss_recovered_is_one_for_identity_and_zero_for_zeros_on_a_tiny_decoder(tiny_models):
    exact = _ce_checks(tiny_models["llama-gqa"], CORPUS[:6], 1)
    # the clean loss is the model's own mean next-token cross-entropy, recomputed by hand
    model = tiny_models["llama-gqa"]
    total, count = 0.0, 0
    for text in CORPUS[:6]:
        ids = model.tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            logits = model.model(input_ids=ids).logits[0, :-1]
        total += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
        count += ids.shape[1] - 1
    assert exact["clean_loss"] == pytest.approx(total / count, rel=1e-5) and exact["tokens"] == count
    # a random-weight model barely uses its layers: zeroing one lowers the loss here, and the score says it has no scale
    assert exact["zero_ablated_loss"] < exact["clean_loss"] and "no scale" in exact["flag"]


def test_ce_loss_recovered_is_one_for_identity_and_zero_for_zeros_on_gemma(gemma):
    exact = _ce_checks(gemma, CORPUS[:4], 6)
    assert exact["zero_ablated_loss"] > exact["clean_loss"] + 1 and exact["flag"] == ""  # zeroing a middle layer of a real model hurts


def test_the_lm_loss_needs_a_decoder(default_model):
    with pytest.raises(InputError, match="no language-model head.*embedding_recovered"):
        lm_loss(default_model, CORPUS[:2])
