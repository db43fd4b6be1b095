"""How much of what the model computes survives when a layer is replaced by its factor reconstruction."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch

from shatterbox._batching import chunks
from shatterbox.trace import encode, layer_modules
from shatterbox.errors import InputError


@contextmanager
def patched_layer(loaded, layer: int, replace) -> Iterator[None]:
    """Within the block, hidden state ``layer`` (the output of block ``layer``) passes through ``replace(h) -> h``."""
    blocks = layer_modules(loaded.model)
    if not 1 <= layer <= len(blocks):
        raise InputError(f"layer {layer} cannot be patched: the model has blocks 1-{len(blocks)}")

    def hook(_module, _args, output):
        if isinstance(output, tuple):
            return (replace(output[0]),) + tuple(output[1:])
        return replace(output)

    handle = blocks[layer - 1].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _embeddings(loaded, texts: list[str], layer: int | None = None, replace=None) -> torch.Tensor:
    """Mean-pooled last hidden states (the default model's sentence embedding), optionally with a layer patched."""
    out = []
    for part in chunks(len(texts), 32):
        enc = encode(loaded, texts[part])
        inputs = enc.model_inputs(loaded.forward_keys)
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        # special tokens and padding: no sentence in the encoding already made (no second tokenization)
        special = torch.tensor([[s is None for s in enc.batch.sequence_ids(i)] for i in range(len(enc.texts))], dtype=torch.bool)
        ctx = patched_layer(loaded, layer, lambda h: replace(h, special)) if replace is not None else nullcontext()
        with torch.inference_mode(), ctx:
            hidden = loaded.model(**inputs, return_dict=True).last_hidden_state
        out.append((hidden * mask).sum(1) / mask.sum(1).clamp_min(1))
    return torch.cat(out)


def embedding_recovered(factors, loaded, texts: list[str], layer: int) -> dict:
    """The sentence-embedding analogue of SAE work's "CE loss recovered" for models without an LM head.

    The loss is 1 − cos(embedding, clean embedding) of the mean-pooled output; ``recovered`` =
    (loss with layer ``layer`` zero-ablated − loss with it replaced by the factors' reconstruction)
    / (zero-ablated loss − 0). Only word tokens are replaced (the factors were fitted without
    special tokens); 1 means the reconstruction keeps everything the rest of the model uses.

    Examples:
        >>> # see tests/factors/test_downstream.py: exact reconstruction recovers 1, zeros recover 0
    """
    if layer not in factors.mean:
        raise InputError(f"these factors were fitted on layers {factors.layers}, not {layer}")
    clean = _embeddings(loaded, texts)

    def zero(h, special):
        return torch.where(special[:, : h.shape[1], None], h, torch.zeros_like(h))

    def rebuilt(h, special):
        flat = h.reshape(-1, h.shape[-1]).numpy()
        recon = torch.from_numpy(factors.reconstruct(flat, layer)).reshape(h.shape)
        return torch.where(special[:, : h.shape[1], None], h, recon)

    def loss(emb: torch.Tensor) -> float:
        return float((1 - torch.nn.functional.cosine_similarity(emb, clean, dim=1)).mean())

    zero_loss, recon_loss = loss(_embeddings(loaded, texts, layer, zero)), loss(_embeddings(loaded, texts, layer, rebuilt))
    recovered = (zero_loss - recon_loss) / zero_loss if zero_loss > 0 else float("nan")
    flag = "" if recovered > 0 else "the reconstruction harms the embedding as much as zeroing the layer, or more"
    return {"layer": layer, "zero_ablated_loss": zero_loss, "reconstructed_loss": recon_loss, "recovered": recovered,
            "sentences": len(texts), "flag": flag}
