"""A latent exported as a Neuronpedia feature: every number recomputed from the store, the codes and the unembedding."""

import json

import numpy as np
import pytest
import torch

from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.factors import fit_factors
from shatterbox.neurons import NeuronSettings
from shatterbox.sae import neuronpedia_feature
from shatterbox.store import harvest

SETTINGS = NeuronSettings(n_explain=4, n_top=4, n_random=4)
pytestmark = pytest.mark.slow  # a harvest and a fit each


def test_a_feature_has_its_activations_histogram_and_explanation(default_model, tmp_path):
    store = harvest(load_corpus("wordnet", limit=150), tmp_path / "s", layers="2")
    factors = fit_factors(store, kind="sae", n_factors=32, k=4, n_epochs=2)
    hidden = store.activations("hidden_2", "not special")
    codes = factors.codes(hidden, 2)[:, 5]
    feature = neuronpedia_feature(factors, 5, settings=SETTINGS)
    json.dumps(feature, allow_nan=False)  # strict JSON
    assert (feature["modelId"], feature["layer"], feature["index"]) == ("all-MiniLM-L6-v2", "2-shatterbox-res-32", 5)
    assert feature["maxActApprox"] == pytest.approx(float(codes.max()), rel=1e-5)
    assert feature["frac_nonzero"] == pytest.approx(float((codes > 0).mean()))
    assert sum(feature["freq_hist_data_bar_heights"]) == int((codes > 0).sum()) and len(feature["freq_hist_data_bar_values"]) == 20
    top = feature["activations"][0]
    assert top["maxValue"] == max(top["values"]) and top["values"][top["maxValueTokenIndex"]] == top["maxValue"]
    assert feature["explanations"][0]["description"] and {s["explanationScoreTypeName"] for s in feature["explanations"][0]["scores"]} >= {"correlation"}
    assert feature["pos_str"] == []  # an encoder has no unembedding
    with pytest.raises(InputError, match="out of range: these factors are numbered 0-31"):
        neuronpedia_feature(factors, 32)


def test_a_decoder_feature_names_the_tokens_its_direction_promotes(tiny_models, tmp_path):
    model = tiny_models["llama-gqa"]
    store = harvest(load_corpus("wordnet", limit=60), tmp_path / "s", model=model, layers="1")
    factors = fit_factors(store, kind="sae", n_factors=16, k=2, n_epochs=1)
    feature = neuronpedia_feature(factors, 3, model=model, settings=SETTINGS)
    direction = factors.models[1].components_[3] * factors.scale[1]
    logits = model.model.get_output_embeddings().weight.detach() @ torch.from_numpy(direction)
    best = torch.argsort(logits, descending=True)[:10]
    assert feature["pos_str"] == [model.tokenizer.decode([int(i)]) for i in best]
    np.testing.assert_allclose(feature["pos_values"], logits[best].numpy(), atol=1e-3)
    assert feature["neg_values"][0] == pytest.approx(float(logits.min()), abs=1e-3)
