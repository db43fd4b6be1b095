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


def _special(enc) -> torch.Tensor:
    """[texts, tokens] True at special tokens and padding: no sentence in the encoding already made (no second tokenization)."""
    return torch.tensor([[s is None for s in enc.batch.sequence_ids(i)] for i in range(len(enc.texts))], dtype=torch.bool)


def _embeddings(loaded, texts: list[str], layer: int | None = None, replace=None) -> torch.Tensor:
    """Mean-pooled last hidden states (the default model's sentence embedding), optionally with a layer patched."""
    out = []
    for part in chunks(len(texts), 32):
        enc = encode(loaded, texts[part])
        inputs = enc.model_inputs(loaded.forward_keys)
        mask = inputs["attention_mask"].unsqueeze(-1).float()
        special = _special(enc)
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


def _kept(h: torch.Tensor, special: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """``new`` at word tokens, ``h`` at special tokens and padding (what the factors never saw)."""
    return torch.where(special[:, : h.shape[1], None], h, new)


MIN_GAP = 0.1  # nats the zero-ablated loss must exceed the clean one by for "recovered" to have a scale
LOSS_ROWS = 256  # positions unembedded at once: 256 x a 262k-token vocabulary is 268 MB of float32 logits


def lm_loss(loaded, texts: list[str], *, layer: int | None = None, replace=None, batch: int = 16) -> tuple[float, int]:
    """Mean next-token cross-entropy (nats) of a causal LM over ``texts`` and how many tokens it averages, optionally
    with hidden state ``layer``'s word tokens passed through ``replace(h) -> h`` (special tokens and padding kept).
    Texts are batched by length and only real positions are unembedded, ``LOSS_ROWS`` at a time.

    Examples:
        >>> # see tests/factors/test_downstream.py: on Gemma and a tiny decoder
    """
    from shatterbox.models import language_model_parts

    try:
        body, head, cap = language_model_parts(loaded)
    except InputError:
        raise InputError(f"model {loaded.name!r} has no language-model head: the LM loss needs a decoder such as model=gemma-3-270m; "
                         "for an encoder use embedding_recovered", parameter="model") from None
    ordered = sorted(texts, key=len)  # similar lengths together: little padding
    total, count = 0.0, 0
    for part in chunks(len(ordered), batch):
        enc = encode(loaded, ordered[part])
        inputs = enc.model_inputs(loaded.forward_keys)
        special = _special(enc)
        targets, valid = inputs["input_ids"][:, 1:], inputs["attention_mask"][:, 1:].bool()
        ctx = patched_layer(loaded, layer, lambda h: _kept(h, special, replace(h))) if replace is not None else nullcontext()
        with torch.inference_mode(), ctx:
            hidden = body(**inputs, return_dict=True).last_hidden_state[:, :-1][valid]
            wanted = targets[valid]
            for rows in chunks(len(hidden), LOSS_ROWS):
                logits = head(hidden[rows]).float()
                logits = cap * torch.tanh(logits / cap) if cap else logits
                total += float(torch.nn.functional.cross_entropy(logits, wanted[rows], reduction="sum"))
        count += int(valid.sum())
    return total / max(count, 1), count


def ce_loss_recovered(factors, loaded, texts: list[str], layer: int, *, reference: dict | None = None) -> dict:
    """The field's main score of an SAE on a language model (SAEBench's "CE loss score"): how much of the LM loss
    survives when hidden state ``layer`` is replaced by the factors' reconstruction at every word token.

    ``recovered`` = (L_zero − L_spliced) / (L_zero − L_clean), 1 when the reconstruction is exact and 0 when it is as
    bad as zeroing the layer; ``increase`` = L_spliced − L_clean in nats per token (the loss the reconstruction
    costs). Special tokens (Gemma's ``<bos>``, whose norm dwarfs the rest) are left as they are, as in the fit.
    ``reference``: an earlier result on the same model, texts and layer, whose clean and zero-ablated losses are reused
    (two of the three passes when several SAEs of one layer are scored).

    Examples:
        >>> # see tests/factors/test_downstream.py: exact reconstruction recovers 1, zeros recover 0
    """
    if layer not in factors.mean:
        raise InputError(f"these factors were fitted on layers {factors.layers}, not {layer}", parameter="layer")
    if reference is not None and reference.get("layer") == layer and reference.get("texts") == len(texts):
        clean, tokens, zero = reference["clean_loss"], reference["tokens"], reference["zero_ablated_loss"]
    else:
        clean, tokens = lm_loss(loaded, texts)
        zero, _ = lm_loss(loaded, texts, layer=layer, replace=torch.zeros_like)

    def rebuilt(h: torch.Tensor) -> torch.Tensor:
        flat = h.float().reshape(-1, h.shape[-1]).numpy()
        return torch.from_numpy(factors.reconstruct(flat, layer)).reshape(h.shape).to(h.dtype)

    spliced, _ = lm_loss(loaded, texts, layer=layer, replace=rebuilt)
    gap = zero - clean
    recovered = (zero - spliced) / gap if abs(gap) > 1e-9 else float("nan")
    if gap < MIN_GAP:
        flag = (f"zeroing this layer raises the LM loss by {max(gap, 0.0):.3f} nats only, so the score has no scale here "
                "(an untrained model?): read the loss increase instead")
    else:
        flag = "" if recovered > 0 else "the reconstruction costs as much LM loss as zeroing the layer, or more"
    return {"layer": layer, "clean_loss": clean, "zero_ablated_loss": zero, "spliced_loss": spliced, "recovered": recovered,
            "increase": spliced - clean, "tokens": tokens, "texts": len(texts), "flag": flag}
