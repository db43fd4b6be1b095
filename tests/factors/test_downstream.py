"""Embedding recovered: exact reconstructions recover 1, zeros recover 0; the patch hook changes only its layer."""

import numpy as np
import pytest
import torch

from shatterbox.errors import InputError
from shatterbox.factors import embedding_recovered, patched_layer
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
