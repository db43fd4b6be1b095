"""Lenses: what does each layer already predict?

:func:`logit_lens` reads every layer's residual stream through a decoder's own final norm and unembedding (its soft cap
included): the top tokens per layer and position, and the rank, probability and KL divergence of the final prediction.
:class:`TunedLens` trains one affine translator per layer on an activation store so that the reading matches the final
layer (held-out KL, top-1 agreement, beside the logit lens); ``logit_lens(..., tuned=lens)`` reads a text through it.
:func:`classifier_lens` does the same for an encoder classifier: its pooled head applied to every layer.

Examples:
    >>> from shatterbox.lens import classifier_lens
    >>> from shatterbox.classifiers.sentiment import sentiment
    >>> classifier_lens(sentiment(), "A wonderful film.").predicted[-1]
    'positive'
"""

from shatterbox.lens._logit import ClassifierLensResult, LensResult, classifier_lens, lens_of, logit_lens
from shatterbox.lens._readout import LayerReading, Readout, kl_to_final, read_layer, readout
from shatterbox.lens._tuned import FILE as TUNED_FILE, TunedLens

__all__ = ["ClassifierLensResult", "LayerReading", "LensResult", "Readout", "TUNED_FILE", "TunedLens", "classifier_lens", "kl_to_final",
           "lens_of", "logit_lens", "read_layer", "readout"]
