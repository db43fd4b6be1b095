"""Steering: push a decoder along a direction while it generates, and measure what changes.

A :class:`Direction` lives in one hidden layer's residual space: :func:`diffmean` (mean of one set of a store's sentences
minus another's), :func:`probe_direction` (a linear probe's weights), :func:`factor_direction` (a factor's atom or an
SAE latent's decoder row), :func:`random_direction` (the control) or :func:`vector_direction`. :func:`steer` adds
strength × the layer's median residual norm × the direction's unit vector at every step of greedy generation, and scores
each continuation for the concept and for fluency, beside the random direction and prompting.

Examples:
    >>> from shatterbox.steering import parse_alphas
    >>> parse_alphas("0.5,1")
    [0.0, 0.5, 1.0]
"""

from shatterbox.steering._directions import (Direction, diffmean, factor_direction, middle_layer, parse_labels, probe_direction,
                                              random_direction, sentiment_direction, vector_direction)
from shatterbox.steering._steer import FLUENCY_LOSS, MOVES, SteeringResult, concept_tokens, fluency, greedy, parse_alphas, steer

__all__ = ["Direction", "FLUENCY_LOSS", "MOVES", "SteeringResult", "concept_tokens", "diffmean", "factor_direction", "fluency", "greedy",
           "middle_layer", "parse_alphas", "parse_labels", "probe_direction", "random_direction", "sentiment_direction", "steer", "vector_direction"]
