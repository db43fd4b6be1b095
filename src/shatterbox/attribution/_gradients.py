"""Gradient attributions on the input embeddings: integrated gradients and gradient x input.

Both differentiate the classifier's label probabilities with respect to the word embeddings
(``inputs_embeds``); position and segment embeddings are added by the model as usual. The
integrated-gradients baseline is the text with every word token replaced by the mask token (the
pad token when there is none), so completeness reads sum(values) = f(text) - f(all masked). With
token masking that baseline is Shapley's empty coalition; with ``masking="delete"`` (words cut from
the string) it is not, and IG's total differs from f(text) - f(no words). The path integral uses
Gauss-Legendre quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shatterbox.options import EXPLAIN
from shatterbox._batching import chunks


@dataclass
class GradientResult:
    """Per-word values [n, labels], f(baseline), f(text), and the completeness gap [labels]."""

    values: np.ndarray
    base: np.ndarray
    full: np.ndarray
    evaluations: int
    delta: np.ndarray


def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``steps``-point Gauss-Legendre quadrature on [0, 1].

    Examples:
        >>> a, w = gauss_legendre(3)
        >>> round(float((w * a**2).sum()), 12)  # integral of a^2 on [0, 1]
        0.333333333333
    """
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1.0) / 2.0, weights / 2.0


def _embeddings(game) -> tuple[torch.Tensor, torch.Tensor]:
    """The text's word embeddings and the all-masked baseline's, [tokens, dim] each."""
    layer = game.classifier.model.model.get_input_embeddings()
    ids = game.input_ids
    filler = game.mask_id if game.mask_id is not None else game.pad_id
    baseline_ids = torch.where(torch.from_numpy(game.token_word >= 0), torch.tensor(filler), ids)
    with torch.no_grad():
        return layer(ids[None])[0], layer(baseline_ids[None])[0]


def _probabilities(game, embeds: torch.Tensor) -> torch.Tensor:
    inputs = {k: v.expand(len(embeds), -1) for k, v in game.inputs.items() if k != "input_ids"}
    return game.classifier.probabilities({**inputs, "inputs_embeds": embeds})


def _gradients(game, embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities [s, labels] and their gradients [s, labels, tokens, dim] at ``embeds`` [s, tokens, dim]."""
    embeds = embeds.detach().requires_grad_(True)
    with torch.enable_grad():
        probs = _probabilities(game, embeds)
        grads = [
            torch.autograd.grad(probs[:, c].sum(), embeds, retain_graph=c < probs.shape[1] - 1)[0]
            for c in range(probs.shape[1])
        ]
    return probs.detach(), torch.stack(grads, dim=1)


def integrated_gradients(game, *, steps: int = EXPLAIN.steps, batch_size: int = 16) -> GradientResult:
    """Integrated gradients of every label's probability, per word, from the all-masked baseline.

    Examples:
        >>> from shatterbox.classifiers.sentiment import sentiment
        >>> from shatterbox.attribution._games import TokenGame
        >>> r = integrated_gradients(TokenGame(sentiment(), "I love chess"))
        >>> bool(abs(r.delta).max() < 0.01 * abs(r.full - r.base).max())
        True
    """
    x, x0 = _embeddings(game)
    alphas, weights = gauss_legendre(steps)
    total = torch.zeros((len(game.labels), *x.shape), dtype=torch.float64)
    for rows in chunks(steps, batch_size):
        a = torch.tensor(alphas[rows], dtype=x.dtype).view(-1, 1, 1)
        _, grads = _gradients(game, x0 + a * (x - x0))
        total += (torch.tensor(weights[rows]).view(-1, 1, 1, 1) * grads.double()).sum(dim=0)
    token_values = (total * (x - x0).double()).sum(dim=-1).T.numpy()  # [tokens, labels]
    with torch.no_grad():
        ends = _probabilities(game, torch.stack([x0, x])).double().numpy()
    values = game.to_words(token_values)
    return GradientResult(
        values=values, base=ends[0], full=ends[1], evaluations=steps + 2, delta=values.sum(axis=0) - (ends[1] - ends[0])
    )


def grad_times_input(game) -> GradientResult:
    """Gradient x input: each word's embedding times the gradient of each label's probability, summed.

    Examples:
        >>> from shatterbox.classifiers.sentiment import sentiment
        >>> from shatterbox.attribution._games import TokenGame
        >>> grad_times_input(TokenGame(sentiment(), "I love chess")).values.shape
        (3, 2)
    """
    x, x0 = _embeddings(game)
    probs, grads = _gradients(game, x[None])
    token_values = (grads[0].double() * x.double()).sum(dim=-1).T.numpy()
    with torch.no_grad():
        base = _probabilities(game, x0[None]).double().numpy()[0]
    full = probs.double().numpy()[0]
    values = game.to_words(token_values)
    return GradientResult(values=values, base=base, full=full, evaluations=2, delta=values.sum(axis=0) - (full - base))
