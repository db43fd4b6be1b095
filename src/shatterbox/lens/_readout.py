"""How a residual-stream state becomes a prediction: the decoder's own final norm, unembedding and soft cap, or a pooled
classifier head; and the per-layer numbers every lens reports (top tokens, rank and probability of the final
prediction, KL divergence to the final layer)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from shatterbox.errors import InputError
from shatterbox.models import LoadedModel, final_norm, language_model_parts


@dataclass
class Readout:
    """The last steps of a decoder: ``norm`` (its final norm), ``head`` (the unembedding) and ``cap`` (the final logit
    soft cap, ``None`` where the model has none): ``logits(h) = cap * tanh(head(norm(h)) / cap)``.

    Examples:
        >>> r = Readout(torch.nn.Identity(), torch.nn.Linear(2, 3, bias=False), 30.0)
        >>> tuple(r.logits(torch.zeros(4, 2)).shape)
        (4, 3)
    """

    norm: nn.Module
    head: nn.Module
    cap: float | None = None
    _half: torch.Tensor | None = field(default=None, repr=False)

    def logits(self, hidden: torch.Tensor, *, fast: bool = False) -> torch.Tensor:
        """Float32 logits [..., vocabulary] of residual states [..., width]; ``fast`` gives bfloat16 logits multiplied in
        bfloat16 (about 3x faster on a CPU with bfloat16 units, logits within about 0.1; for training, never for reported
        numbers). The gradient reaches ``hidden`` only: the model's own weights stay frozen either way."""
        x = self.norm(hidden)
        if fast:
            if self._half is None:  # made once: converting the unembedding costs as much as a forward pass
                self._half = self.head.weight.detach().to(torch.bfloat16)
            z = x.to(torch.bfloat16) @ self._half.T
            bias = getattr(self.head, "bias", None)
            z = z if bias is None else z + bias.detach().to(torch.bfloat16)
        else:
            z = self.head(x).float()
        return z if not self.cap else self.cap * torch.tanh(z / self.cap)


def readout(model: LoadedModel) -> Readout:
    """The final norm, unembedding and soft cap of a decoder (``InputError`` for a model without a language-model head).

    Examples:
        >>> from shatterbox.models import load
        >>> readout(load())
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: model 'default' (BertModel) has no language-model head: the logit lens needs a decoder such as model=gemma-3-270m; for an encoder use the classifier lens (lens='classifier')
    """
    try:
        _, head, cap = language_model_parts(model)
    except InputError:
        raise InputError(f"model {model.name!r} ({type(model.model).__name__}) has no language-model head: the logit lens needs a decoder "
                         "such as model=gemma-3-270m; for an encoder use the classifier lens (lens='classifier')", parameter="model") from None
    return Readout(final_norm(model.model), head, cap)


@dataclass
class LayerReading:
    """One layer's lens read against the final layer, position by position: ``top_ids``/``top_probs`` [positions, k],
    ``rank`` (0 = the final prediction is this layer's top token), ``prob`` (its probability here), ``kl`` (nats,
    KL(final || this layer))."""

    top_ids: torch.Tensor
    top_probs: torch.Tensor
    rank: torch.Tensor
    prob: torch.Tensor
    kl: torch.Tensor


def read_layer(logits: torch.Tensor, final_logp: torch.Tensor, k: int) -> LayerReading:
    """Compare one layer's logits [positions, classes] with the final layer's log-probabilities [positions, classes].

    Examples:
        >>> final = torch.log_softmax(torch.tensor([[2.0, 0.0, 0.0]]), -1)
        >>> r = read_layer(torch.tensor([[0.0, 1.0, 0.0]]), final, 2)
        >>> r.rank.tolist(), r.top_ids.tolist(), round(float(r.kl[0]), 4)
        ([1], [[1, 0]], 0.7794)
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    target = final_logp.argmax(dim=-1)
    own = logp.gather(-1, target[:, None])
    top = logp.topk(min(k, logp.shape[-1]), dim=-1)
    return LayerReading(top.indices, top.values.exp(), (logp > own).sum(dim=-1), own[:, 0].exp(), kl_to_final(final_logp, logp))


def kl_to_final(final_logp: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """KL(final || lens) in nats per row of log-probabilities [..., classes] (0 where they agree).

    Examples:
        >>> p = torch.log_softmax(torch.tensor([[1.0, 2.0]]), -1)
        >>> kl_to_final(p, p).tolist()
        [0.0]
    """
    return (final_logp.exp() * (final_logp - logp)).sum(dim=-1).clamp(min=0.0)
