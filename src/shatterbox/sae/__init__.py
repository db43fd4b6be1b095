"""SAEs held to the field: files of SAELens, sparsify and Gemma Scope read as factors and ours written for SAELens; the
language-model loss a layer keeps when replaced by its reconstruction; SAEBench-style sparse probing and feature
absorption, each with its control; a feature exported in Neuronpedia's JSON.

Examples:
    >>> import tempfile
    >>> import numpy as np
    >>> from shatterbox.factors import SparseAutoencoder
    >>> x = np.abs(np.random.default_rng(0).normal(size=(256, 8))).astype(np.float32)
    >>> read_sae(save_saelens(SparseAutoencoder(n_factors=16, k=2, n_epochs=1).fit(x), tempfile.mkdtemp())).format
    'saelens'
"""

from shatterbox.sae._files import FORMATS, HUB_IDS, SaeFile, hidden_of_hook, hook_of_hidden, read_sae, sae_factors, same_model, save_saelens
from shatterbox.sae._probing import SPARSE_KS, SparseProbing, parse_ks, pooled_codes, sparse_probe_arrays, sparse_probing
from shatterbox.sae._absorption import Absorption, absorption, absorption_arrays, absorption_summary, word_list, word_vectors
from shatterbox.sae._core import SaeScores, control_note, layer_scores, sae_scores
from shatterbox.sae._neuronpedia import neuronpedia_feature

__all__ = ["neuronpedia_feature", "SaeScores", "control_note", "layer_scores", "sae_scores", "Absorption", "absorption", "absorption_arrays", "absorption_summary", "word_list", "word_vectors", "SPARSE_KS", "SparseProbing", "parse_ks", "pooled_codes", "sparse_probe_arrays", "sparse_probing", "FORMATS", "HUB_IDS", "SaeFile", "hidden_of_hook", "hook_of_hidden", "read_sae", "sae_factors", "same_model", "save_saelens"]
