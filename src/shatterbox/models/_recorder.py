"""Record queries, keys, masked scores and MLP activations during one forward pass.

Attention is recorded through Hugging Face's own extension point: an attention function
registered in ``AttentionInterface`` under the name ``"shatterbox"``. It calls the model's
own eager attention (so the probabilities are the model's) and, while a recording is active,
keeps the query and key tensors exactly as the model used them (after rotary embeddings,
with grouped key heads repeated) and the scaled, masked scores. MLP neuron activations are the
inputs of each layer's down projection, taken with forward pre-hooks that write into the recording
of the calling thread's context (a ``ContextVar``), so concurrent captures stay apart. No model code
is patched.
"""

from __future__ import annotations

import contextvars
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

IMPLEMENTATION = "shatterbox"

# An additive mask entry below this blocks the key (HF uses the dtype's minimum; old code -10000).
_BLOCKED = -1.0e3

# Down projections whose input is the MLP's neuron activations, by Hugging Face module name.
_MLP_DOWN = re.compile(
    r"(layers?|h|blocks?)\.\d+\.(output\.dense|ffn\.lin2|mlp\.c_proj|mlp\.down_proj|mlp\.fc2|fc2|mlp\.dense_4h_to_h)$"
)


@dataclass
class Recording:
    """What one forward pass left behind, one entry per self-attention call (= per layer, in order)."""

    queries: list[torch.Tensor] = field(default_factory=list)
    keys: list[torch.Tensor] = field(default_factory=list)
    masks: list[torch.Tensor | None] = field(default_factory=list)
    scaling: list[float] = field(default_factory=list)
    softcap: list[float | None] = field(default_factory=list)
    mlp: list[torch.Tensor] = field(default_factory=list)

    def add_attention(
        self, query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None, scaling: float, softcap: float | None = None
    ) -> None:
        """Keep ``query``/``key`` [batch, head, token, d] as the model used them, its mask, and its score
        soft-capping (Gemma 2: ``softcap * tanh(score / softcap)`` before the mask), if any."""
        if key.shape[1] != query.shape[1]:  # grouped-query attention: one key head serves several query heads
            key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
        self.queries.append(query.detach())
        self.keys.append(key.detach())
        self.masks.append(None if mask is None else mask.detach()[..., : query.shape[-2], : key.shape[-2]])
        self.scaling.append(float(scaling))
        self.softcap.append(None if not softcap else float(softcap))

    def scores(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """QK^T * scaling, soft-capped where the model caps, with each layer's mask applied (-inf where blocked),
        [layer, batch, head, query, key]: exactly what enters the model's softmax.

        ``queries``/``keys`` are the stacked [layer, batch, head, token, d] tensors; one batched
        matmul writes every layer's scores, then masks are applied in place.
        """
        scores = torch.matmul(queries, keys.transpose(-1, -2))
        scores.mul_(torch.tensor(self.scaling, dtype=scores.dtype).view(-1, 1, 1, 1, 1))
        for layer, cap in enumerate(self.softcap):
            if cap is not None:
                scores[layer].div_(cap).tanh_().mul_(cap)
        for layer, mask in enumerate(self.masks):
            if mask is None:
                continue
            if mask.dtype == torch.bool:  # True = may attend
                scores[layer].masked_fill_(~mask, float("-inf"))
            else:
                scores[layer].add_(mask).masked_fill_(mask < _BLOCKED, float("-inf"))
        return scores


_active: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("shatterbox_recording", default=None)
_active_mlp: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("shatterbox_mlp_recording", default=None)
_hook_lock = threading.Lock()
_own_eager: dict[type, Callable[..., Any]] = {}


def _generic_eager(module: nn.Module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Plain eager attention, used only for a model whose modeling file defines none."""
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    if key.shape[1] != query.shape[1]:
        rep = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(rep, dim=1), value.repeat_interleave(rep, dim=1)
    weights = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask[..., : key.shape[-2]]
    weights = torch.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _eager_for(module: nn.Module) -> Callable[..., Any]:
    """The model's own ``eager_attention_forward`` (from its modeling file), cached per class."""
    cls = type(module)
    if cls not in _own_eager:
        _own_eager[cls] = getattr(sys.modules.get(cls.__module__), "eager_attention_forward", _generic_eager)
    return _own_eager[cls]


def _recording_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    output, weights = _eager_for(module)(
        module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
    )
    rec = _active.get()
    if rec is not None:
        rec.add_attention(query, key, attention_mask, query.shape[-1] ** -0.5 if scaling is None else scaling, kwargs.get("softcap"))
    return output, weights


AttentionInterface.register(IMPLEMENTATION, _recording_attention)
AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)


def mlp_modules(model: nn.Module) -> list[nn.Module]:
    """Each layer's MLP down projection, in layer order (empty where the naming is unknown)."""
    return [module for name, module in model.named_modules() if _MLP_DOWN.search(name)]


def layer_modules(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks in order (the first ``nn.ModuleList`` whose length is the config's layer count):
    block ``l - 1`` outputs hidden state ``l``.

    Examples:
        >>> from shatterbox.models import load
        >>> len(layer_modules(load().model))
        6
    """
    n = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    for _name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return list(module)
    return []


@contextmanager
def recording(model: nn.Module, *, attention: bool = True) -> Iterator[Recording]:
    """Record attention and MLP activations of every forward pass of ``model`` inside the block.

    ``attention=False`` records the MLP activations only (no queries, keys or masks are kept).

    Examples:
        >>> from shatterbox.models import load
        >>> m = load()
        >>> enc = m.tokenizer("hello world", return_tensors="pt")
        >>> with torch.inference_mode(), recording(m.model) as rec:
        ...     _ = m.model(**enc)
        >>> len(rec.queries), len(rec.mlp)
        (6, 6)
    """
    rec = Recording()
    _hook_mlp(model)
    token, mlp_token = _active.set(rec if attention else None), _active_mlp.set(rec)
    try:
        yield rec
    finally:
        _active.reset(token)
        _active_mlp.reset(mlp_token)


def _record_mlp(_module: nn.Module, args: tuple) -> None:
    rec = _active_mlp.get()
    if rec is not None:
        rec.mlp.append(args[0].detach())


def _hook_mlp(model: nn.Module) -> None:
    """One permanent pre-hook per down projection, writing into the recording of the calling thread's
    context only: concurrent captures (the web app's threads) never see each other's activations."""
    if getattr(model, "_shatterbox_mlp_hooked", False):
        return
    with _hook_lock:
        if not getattr(model, "_shatterbox_mlp_hooked", False):
            for module in mlp_modules(model):
                module.register_forward_pre_hook(_record_mlp)
            model._shatterbox_mlp_hooked = True
