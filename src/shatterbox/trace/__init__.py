"""Capture once: one batched forward pass -> one :class:`Trace` per text.

Examples:
    >>> from shatterbox import load, capture
    >>> t = capture(load(), "A lot of people like animals so they adopt cats",
    ...             "A lot of people like animals so they adopt dogs")
    >>> sorted(set(t.sequence.tolist()))
    [-1, 0, 1]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.trace._align import Alignment, align, glue
from shatterbox.trace._encode import Encoded, TruncationWarning, encode
from shatterbox.models import IMPLEMENTATION, Recording, layer_modules, mlp_modules, recording
from shatterbox.trace._trace import Trace
from shatterbox.errors import AttentionUnavailable

LOGITS_BYTES = 16 << 20  # per text: beyond this only the last position's logits are kept (next-token prediction)

if TYPE_CHECKING:
    from shatterbox.models import LoadedModel

__all__ = ["IMPLEMENTATION", "Alignment", "Encoded", "Trace", "TruncationWarning", "align", "capture", "capture_batch", "encode", "glue", "layer_modules", "layer_window", "allowed_keys", "mlp_modules", "recording"]


def capture(model: "LoadedModel", text: str, text_pair: str | None = None, *, truncate: bool = True) -> Trace:
    """Record one forward pass over ``text`` (or the pair ``text``, ``text_pair``) into a :class:`Trace`.

    Examples:
        >>> from shatterbox import capture, load
        >>> t = capture(load(), "Transformers possess surprising emerging features.")
        >>> t.attentions.shape
        (6, 12, 8, 8)
    """
    return capture_batch(model, [text], None if text_pair is None else [text_pair], truncate=truncate)[0]


def capture_batch(
    model: "LoadedModel",
    texts: Sequence[str],
    pairs: Sequence[str] | None = None,
    *,
    batch_size: int = 32,
    truncate: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> list[Trace]:
    """Record ``texts`` in batches of ``batch_size`` (one forward pass each); one Trace per text.

    ``on_batch(n)`` is called after each batch with the number of texts done (for progress bars).

    Examples:
        >>> from shatterbox import capture, load
        >>> [t.n_tokens for t in capture_batch(load(), ["hello world", "hi"])]
        [4, 3]
    """
    texts = list(texts)
    pair_list = list(pairs) if pairs is not None else None
    traces: list[Trace] = []
    for rows in chunks(len(texts), batch_size):
        chunk_pairs = None if pair_list is None else pair_list[rows]
        encoded = encode(model, texts[rows], chunk_pairs, truncate=truncate)
        traces.extend(_run(model, encoded))
        if on_batch is not None:
            on_batch(len(traces))
    return traces


def _run(model: "LoadedModel", encoded: Encoded) -> list[Trace]:
    with torch.inference_mode(), recording(model.model) as rec:
        out = model.model(
            **encoded.model_inputs(model.forward_keys),
            output_attentions=True,
            output_hidden_states=True,
            return_dict=True,
        )
    attentions = getattr(out, "attentions", None)
    _check_recorded(model, rec, attentions)
    queries, keys = torch.stack(rec.queries).float(), torch.stack(rec.keys).float()
    stacked = {
        "attentions": torch.stack(attentions).float().numpy(),
        "scores": rec.scores(queries, keys).numpy(),
        "queries": queries.numpy(),
        "keys": keys.numpy(),
        "hidden_states": torch.stack(out.hidden_states).float().numpy(),
    }
    mlp = torch.stack(rec.mlp).float().numpy() if len(rec.mlp) == len(attentions) else None
    logits = getattr(out, "logits", None)
    logits = None if logits is None else _kept_logits(logits, encoded.lengths)
    scaling = np.asarray(rec.scaling, dtype=np.float32)
    softcap = next((c for c in rec.softcap if c is not None), None)
    return [
        _item_trace(model, encoded, i, stacked, mlp, logits, scaling, softcap) for i in range(len(encoded.texts))
    ]


def layer_window(config, layer: int) -> int:
    """The sliding window of ``layer`` (numbered from 1) from a model's config: the keys a query sees on a local
    layer (Gemma 2/3, Mistral-style ``layer_types``), 0 on a global one.

    Examples:
        >>> from types import SimpleNamespace
        >>> c = SimpleNamespace(sliding_window=4, layer_types=["sliding_attention", "full_attention"])
        >>> layer_window(c, 1), layer_window(c, 2)
        (4, 0)
    """
    window = getattr(config, "sliding_window", None)
    types = getattr(config, "layer_types", None)
    if not window or not types or not 0 < layer <= len(types):
        return 0
    return int(window) if types[layer - 1] == "sliding_attention" else 0


def allowed_keys(n: int, *, causal: bool, window: int = 0) -> np.ndarray:
    """Which keys each query may read [query, key] among ``n`` tokens: every one, or (``causal``) itself and earlier
    ones; with a sliding ``window`` > 0 only the last ``window`` of those (query i sees keys j > i - window).

    Examples:
        >>> allowed_keys(3, causal=True, window=2).astype(int).tolist()
        [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    """
    query, key = np.arange(n)[:, None], np.arange(n)[None, :]
    allowed = key <= query if causal else np.ones((n, n), dtype=bool)
    return allowed & (key > query - window) if window else allowed


def _kept_logits(logits: torch.Tensor, lengths) -> np.ndarray:
    """Every position's logits [batch, token, vocab], or only each text's last position's [batch, vocab] where
    those would exceed ``LOGITS_BYTES`` (a 262k-word decoder vocabulary is 1 MB a token)."""
    if logits.ndim == 3 and logits.shape[1] * logits.shape[2] * 4 > LOGITS_BYTES:
        last = torch.as_tensor(np.asarray(lengths), dtype=torch.long) - 1
        logits = logits[torch.arange(logits.shape[0]), last]
    return logits.float().numpy()


def _check_recorded(model: "LoadedModel", rec: Recording, attentions) -> None:
    if not attentions or any(a is None for a in attentions) or len(rec.queries) != len(attentions):
        raise AttentionUnavailable(
            f"model {model.name!r} ({type(model.model).__name__}) did not return attention probabilities "
            "through transformers' attention interface; shatterbox supports transformer models with eager attention"
        )


def _owned(array: np.ndarray | None) -> np.ndarray | None:
    """``array`` in memory of its own: a row sliced from a padded batch must not keep the whole batch alive."""
    if array is None:
        return None
    out = np.ascontiguousarray(array)
    return out.copy() if getattr(out.base, "nbytes", 0) > out.nbytes else out


def _item_trace(model, encoded, i, stacked, mlp, logits, scaling, softcap=None) -> Trace:
    n = int(encoded.lengths[i])
    text, pair = encoded.texts[i], encoded.pairs[i]
    al = align(model.tokenizer, encoded.batch, i, n, (text, pair))
    attentions = stacked["attentions"][:, i, :, :n, :n]
    scores = stacked["scores"][:, i, :, :n, :n]
    item_logits = None
    if logits is not None:
        item_logits = logits[i, :n] if logits.ndim == 3 else logits[i]
    causal = bool(n > 1 and np.isneginf(scores[0, 0][np.triu_indices(n, 1)]).all())
    return Trace(
        model=model.name,
        text=text,
        text_pair=pair,
        tokens=al.tokens,
        labels=al.labels,
        words=al.words,
        token_ids=_owned(encoded.batch["input_ids"][i, :n].numpy()),
        special=al.special,
        sequence=al.sequence,
        offsets=al.offsets,
        word_index=al.word_index,
        word_special=al.word_special,
        attentions=_owned(attentions),
        scores=_owned(scores),
        queries=_owned(stacked["queries"][:, i, :, :n]),
        keys=_owned(stacked["keys"][:, i, :, :n]),
        hidden_states=_owned(stacked["hidden_states"][:, i, :n]),
        scaling=scaling,
        is_causal=causal,
        softcap=softcap,
        mlp=None if mlp is None else _owned(mlp[:, i, :n]),
        logits=_owned(item_logits),
        truncated=encoded.dropped[i],
    )
