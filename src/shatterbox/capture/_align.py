"""Token -> word alignment from the tokenizer's own word ids and offsets (never from splitting on spaces)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from transformers import BatchEncoding, PreTrainedTokenizerBase


@dataclass
class Alignment:
    """Per-token and per-word labels of one item of a batch; special tokens are words of their own."""

    tokens: list[str]
    labels: list[str]
    words: list[str]
    special: np.ndarray
    sequence: np.ndarray
    offsets: np.ndarray
    word_index: np.ndarray
    word_special: np.ndarray


def _is_byte_level(tokenizer: PreTrainedTokenizerBase) -> bool:
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    return "ByteLevel" in type(decoder).__name__ or "ByteLevel" in repr(decoder)[:40]


def _readable(tokenizer: PreTrainedTokenizerBase, tokens: list[str], special: np.ndarray) -> list[str]:
    """Display labels: byte-level BPE symbols (``Ġpossess``) decoded where that is lossless."""
    if not _is_byte_level(tokenizer):
        return list(tokens)
    labels = []
    for token, is_special in zip(tokens, special):
        text = token if is_special else tokenizer.convert_tokens_to_string([token])
        if "\ufffd" in text:
            text = token
        labels.append(text.strip() or text.replace(" ", "␣").replace("\n", "⏎") or token)
    return labels


def align(
    tokenizer: PreTrainedTokenizerBase, batch: BatchEncoding, item: int, length: int, texts: tuple[str, str | None]
) -> Alignment:
    """Tokens, display labels and the token -> word map of ``batch`` item ``item`` (first ``length`` tokens).

    Example:
        >>> from shatterbox.models import load
        >>> m = load()
        >>> b = m.tokenizer(["emerging features"], return_offsets_mapping=True)
        >>> a = align(m.tokenizer, b, 0, 4, ("emerging features", None))
        >>> a.words, a.word_index.tolist()
        (['[CLS]', 'emerging', 'features', '[SEP]'], [0, 1, 2, 3])
    """
    ids = batch["input_ids"][item][:length]
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    word_ids = batch.word_ids(item)[:length]
    seq_ids = batch.sequence_ids(item)[:length]
    offsets = np.asarray(batch["offset_mapping"][item][:length], dtype=np.int32).reshape(-1, 2)
    special = np.array([w is None for w in word_ids], dtype=bool)
    sequence = np.array([-1 if s is None else s for s in seq_ids], dtype=np.int8)
    wid = np.array([-1 if w is None else w for w in word_ids], dtype=np.int64)
    # one key per word (sequence, word id); each special token is a unit of its own
    keys = np.where(special, -1 - np.arange(length), sequence.astype(np.int64) * (1 << 32) + wid)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    word_index = rank[inverse].astype(np.int32)
    starts = first[order]
    ends = np.zeros(len(order), dtype=np.int64)
    np.maximum.at(ends, word_index, np.arange(length))
    words = []
    for start_tok, end_tok in zip(starts, ends):
        if special[start_tok]:
            words.append(tokens[start_tok])
            continue
        source = texts[int(sequence[start_tok])] or ""
        word = source[offsets[start_tok, 0] : offsets[end_tok, 1]].strip()
        words.append(word or tokens[start_tok])
    return Alignment(
        tokens=tokens,
        labels=_readable(tokenizer, tokens, special),
        words=words,
        special=special,
        sequence=sequence,
        offsets=offsets,
        word_index=word_index,
        word_special=special[starts],
    )
