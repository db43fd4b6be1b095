"""Feature absorption: a planted SAE whose token latent swallows the first-letter feature gives the hand-computed
fraction; the pipeline on a real model reads letters and finds main latents."""

import numpy as np
import pytest

from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.factors import fit_factors
from shatterbox.sae import absorption, absorption_arrays, word_list, word_vectors
from shatterbox.store import harvest


def test_a_token_latent_that_swallows_the_letter_gives_the_hand_computed_fraction():
    # raw space: e0 = "starts with s", e1 = "starts with t", e2 = the word "sun", e3 = the word "tea"
    e = np.eye(4)
    decoder = np.stack([e[0], e[1], (e[0] + e[2]) / np.sqrt(2), (e[1] + e[3]) / np.sqrt(2), e[2]])
    # latent 0: S; 1: T; 2: "sun" with the S direction absorbed; 3: "tea" with half of it; 4: "sun" without any letter
    words = ["sea", "sky", "sun", "sun", "sit", "top", "tea", "toe"]
    codes = np.zeros((8, 5))
    codes[[0, 1, 4], 0] = 1.0                      # S words fire the S latent ...
    codes[[2, 3], 2] = 2.0                         # ... but "sun" fires only its own latent, which carries S
    codes[[5, 7], 1] = 1.0
    codes[6, 1], codes[6, 3] = 0.5, 1.0            # "tea": the T latent at half strength, and its own latent
    probes = {"s": e[0] * 3.0, "t": e[1]}          # probe directions (their length does not matter)
    x = codes @ decoder  # residuals the SAE reconstructs exactly
    rows = {r["letter"]: r for r in absorption_arrays(codes, decoder, x, np.array([w[0] for w in words]), probes, {"s": [0], "t": [1]})}
    assert rows["s"]["absorption_fraction"] == pytest.approx(2 / 5)  # 2 of 5 S words: all of S carried by the "sun" latent
    assert rows["s"]["full_absorption"] == pytest.approx(2 / 5)
    tea = (1 / np.sqrt(2)) / (0.5 + 1 / np.sqrt(2))  # "tea": its latent carries 0.707 of the T direction, the T latent 0.5
    assert rows["t"]["absorption_fraction"] == pytest.approx(tea / 3) and rows["t"]["full_absorption"] == 0
    known = np.array([True, True, False, False, True, True, True, True])  # words the probe gets wrong are not scored
    again = absorption_arrays(codes, decoder, x, np.array([w[0] for w in words]), probes, {"s": [0], "t": [1]}, known=known)
    assert again[0]["absorption_fraction"] == 0 and again[0]["words"] == 3


def test_saebenchs_thresholds_decide_what_counts_as_absorbed():
    # e0 = the letter; latent 0 the main latent; latents 1-4 word latents aligned with the letter (cosine 0.6);
    # latent 5 barely aligned (cosine 0.05): too little for the fraction (0.1), enough for full absorption (0.025)
    d = 8
    e = np.eye(d)
    aligned = [(0.6 * e[0] + 0.8 * e[j]) for j in (1, 2, 3, 4)]
    decoder = np.stack([e[0], *aligned, 0.05 * e[0] + np.sqrt(1 - 0.05**2) * e[5]])
    codes = np.zeros((3, 6))
    x = np.zeros((3, d))
    codes[0, 0], codes[0, 1], x[0, 0] = 0.2, 0.3 / 0.6, 1.0   # absorber carries 0.3 < 0.4 of P = 1: not absorption
    codes[1, 0], codes[1, 1:5], x[1, 0] = 0.1, 0.2 / 0.6, 1.0  # four absorbers of 0.2 each: only the top three count
    codes[2, 5], x[2, 0] = 10.0, 0.5                          # main silent; the largest share is a barely aligned latent
    rows = absorption_arrays(codes, decoder, x, np.array(["s"] * 3), {"s": e[0]}, {"s": [0]})
    fractions = [absorption_arrays(codes[[i]], decoder, x[[i]], np.array(["s"]), {"s": e[0]}, {"s": [0]})[0] for i in range(3)]
    assert fractions[0]["absorption_fraction"] == 0
    assert fractions[1]["absorption_fraction"] == pytest.approx(0.6 / 0.7)  # a = min(0.6, P - M = 0.9); 0.6 / (0.6 + 0.1)
    assert fractions[2]["absorption_fraction"] == 0 and fractions[2]["full_absorption"] == 1  # 10 x 0.05 = 0.5 >= 0.4 x 0.5
    assert rows[0]["absorption_fraction"] == pytest.approx(0.6 / 0.7 / 3) and rows[0]["full_absorption"] == pytest.approx(1 / 3)


@pytest.mark.slow
def test_absorption_on_a_model_reads_first_letters(default_model, tmp_path):
    words = word_list(default_model, limit=600)
    assert len(set(w[0] for w in words)) > 15 and all(len(default_model.tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in words[:50])
    x = word_vectors(default_model, words[:3], 2)
    by_hand = default_model.model(**default_model.tokenizer(words[1], return_tensors="pt"), output_hidden_states=True).hidden_states[2][0, 1]
    np.testing.assert_allclose(x[1], by_hand.detach().numpy(), atol=1e-5)
    store = harvest(load_corpus("wordnet", limit=200), tmp_path / "w", layers="2")
    factors = fit_factors(store, kind="sae", per_layer=True, n_factors=128, k=8, n_epochs=2)
    result = absorption(factors, default_model, words=words)
    assert result.classes > 15 and result.probe_accuracy > 2 / result.classes  # the model knows first letters: well above chance
    assert result.letters and all(0 <= r["absorption_fraction"] <= 1 and 1 <= len(r["main"]) <= 3 for r in result.letters)
    assert result.to_dict()["absorption_fraction"] == pytest.approx(np.mean([r["absorption_fraction"] for r in result.letters]))
    with pytest.raises(InputError, match="fewer than two letters"):
        absorption(factors, default_model, words=["apple", "axe"])
    with pytest.raises(InputError, match="not 4"):
        absorption(factors, default_model, layer=4, words=words)


def test_absorption_is_flagged_beside_its_control_and_when_the_letters_are_not_known():
    from shatterbox.sae import Absorption

    rows = [{"letter": "s", "words": 5, "main": [0], "absorption_fraction": 0.3, "full_absorption": 0.2}]
    trained = Absorption(9, rows, probe_accuracy=0.8, words=100, classes=20)
    assert trained.flag == "" and trained.to_dict()["flag"] == ""
    trained.random_weights = Absorption(9, [dict(rows[0], absorption_fraction=0.9)], probe_accuracy=0.06, words=100, classes=20)
    assert trained.flag == "" and "does not know them" in trained.random_weights.flag  # 0.06 is about chance for 20 letters
    trained.random_weights = Absorption(9, [dict(rows[0], absorption_fraction=0.0)], probe_accuracy=0.06, words=100, classes=20)
    assert trained.flag == ""  # a model that does not know the letters has nothing to absorb: its 0 is no bar
    trained.random_weights = Absorption(9, [dict(rows[0], absorption_fraction=0.3)], probe_accuracy=0.8, words=100, classes=20)
    assert "as much as the same SAE on the random-weight model" in trained.flag
    assert trained.to_dict()["random_weights"]["absorption_fraction"] == 0.3
