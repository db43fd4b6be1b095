"""Transformer factors: sparse dictionaries (Yun et al. 2021) and sparse autoencoders over a store's hidden states.

``SparseDictionary`` (non-negative sparse coding by monotone FISTA) and ``SparseAutoencoder``
(TopK or ReLU) share scikit-learn's shape: ``fit(x)``, ``transform(x)`` -> codes [n, K],
``inverse_transform(codes)``, ``components_`` [K, d] (unit-norm atoms), ``save``/``load``.
``evaluate`` scores a fit on held-out vectors next to PCA with as many components as its mean L0.

Examples:
    >>> import numpy as np
    >>> x = np.abs(np.random.default_rng(0).normal(size=(300, 8))).astype(np.float32)
    >>> sd = SparseDictionary(n_factors=8, alpha=0.1, n_epochs=2).fit(x)
    >>> evaluate(sd, x[:50], x).mean_l0 < 8
    True
"""

from shatterbox.factors._base import FactorModel, load_models, save_models
from shatterbox.factors._data import LayerVectors, heldout_sentences, heldout_texts, hidden_layers, layer_vectors
from shatterbox.factors._fista import SparseDictionary, fista_codes
from shatterbox.factors._fit import LEVELS, Factors, fit_factors, importance, levels, make_model, seed_spread, spread, store_info
from shatterbox.factors._metrics import ADVICE, DENSE, FitReport, evaluate, variance_explained
from shatterbox.factors._downstream import ce_loss_recovered, embedding_recovered, lm_loss, patched_layer
from shatterbox.factors._polysemy import factor_groups, occurrences, polysemy, word_senses
from shatterbox.factors._report import check_factors_control, contexts, factors_report
from shatterbox.factors._sae import SparseAutoencoder

MODELS = {"fista": SparseDictionary, "sae": SparseAutoencoder}

__all__ = ["DENSE", "check_factors_control", "heldout_sentences", "heldout_texts", "load_models", "save_models", "ADVICE", "LEVELS", "FactorModel", "Factors", "FitReport", "LayerVectors", "MODELS", "fit_factors", "hidden_layers", "importance", "layer_vectors", "levels", "make_model", "seed_spread", "spread", "store_info", "ce_loss_recovered", "embedding_recovered", "lm_loss", "patched_layer", "contexts", "factors_report", "factor_groups", "occurrences", "polysemy", "word_senses", "SparseAutoencoder", "SparseDictionary", "evaluate", "fista_codes", "variance_explained"]
