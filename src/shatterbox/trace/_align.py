"""Token -> word alignment from the tokenizer's own word ids and offsets (never from splitting on spaces)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

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
    """Whether tokens carry a space marker the decoder turns back into text: byte-level BPE (``Ġ``, GPT-2) or
    SentencePiece's ``▁`` (Gemma, Llama)."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    text = repr(decoder)
    return "ByteLevel" in type(decoder).__name__ or "ByteLevel" in text[:40] or "Metaspace" in text or "\u2581" in text


def _readable(tokenizer: PreTrainedTokenizerBase, tokens: list[str], special: np.ndarray) -> list[str]:
    """Display labels: byte-level BPE and SentencePiece symbols (``Ġpossess``, ``▁possess``) decoded where that is lossless."""
    if not _is_byte_level(tokenizer):
        return list(tokens)
    labels = []
    for token, is_special in zip(tokens, special):
        text = token if is_special else tokenizer.convert_tokens_to_string([token])
        if "\ufffd" in text:
            text = token
        labels.append(text.strip() or text.replace(" ", "␣").replace("\n", "⏎") or token)
    return labels


_MARKERS = ("\u2581", "\u0120")  # SentencePiece's and byte-level BPE's "a word starts here"


def glue(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """(space before, text) per token: WordPiece's ``##`` continues a word; where tokens mark word starts instead
    (``▁`` SentencePiece, ``Ġ`` byte-level BPE), an unmarked token continues one.

    Examples:
        >>> glue(["bank", "##s", "!"]), glue(["this", "\u2581pian", "o"])
        ([('', 'bank'), ('', 's'), (' ', '!')], [('', 'this'), (' ', 'pian'), ('', 'o')])
    """
    marked = any(t.startswith(_MARKERS) for t in tokens)
    out = []
    for i, token in enumerate(tokens):
        if marked:
            starts = token.startswith(_MARKERS)
            out.append((" " if i and starts else "", token[1:] if starts else token))
        else:
            out.append((" " if i and not token.startswith("##") else "", token.removeprefix("##")))
    return out


def _word_ids_from_offsets(wid: np.ndarray, sequence: np.ndarray, offsets: np.ndarray, texts: tuple[str, str | None]) -> np.ndarray:
    """Word ids from the offsets where the tokenizer's own are degenerate: SentencePiece tokenizers that turn
    spaces into ``▁`` before splitting (Gemma, Llama) give every token of a text the same word id.

    Examples:
        >>> off = np.array([[0, 3], [3, 11], [11, 12]])
        >>> _word_ids_from_offsets(np.zeros(3, dtype=np.int64), np.zeros(3, dtype=np.int8), off, ("The capital.", None)).tolist()
        [0, 1, 2]
    """
    out = wid.copy()
    for seq, source in enumerate(texts):
        if source is None:
            continue
        rows = np.flatnonzero((sequence == seq) & (wid >= 0))
        if len(rows) < 2 or len(np.unique(wid[rows])) >= min(len(rows), len(source.split())):
            continue
        out[rows] = np.cumsum(_word_starts(source, offsets[rows, 0].astype(np.int64), offsets[rows, 1].astype(np.int64))) - 1
    return out


def _word_starts(source: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which tokens (character spans) begin a word: the first; then any that follows whitespace (or carries it, as
    SentencePiece's ``▁`` does), is punctuation, or follows punctuation; whitespace-only pieces never do. Character
    classes come from one regular-expression pass over the text, the rest is array arithmetic over the tokens.

    Examples:
        >>> _word_starts("isn't it", np.array([0, 3, 4, 5]), np.array([3, 4, 5, 8])).tolist()
        [True, True, True, True]
    """
    n = len(source)
    alnum, space = np.zeros(n + 1, bool), np.zeros(n + 1, bool)
    alnum[[m.start() for m in re.finditer(r"[^\W_]", source)]] = True
    space[[m.start() for m in re.finditer(r"\s", source)]] = True
    cum_alnum, cum_space = np.concatenate([[0], np.cumsum(alnum[:n])]), np.concatenate([[0], np.cumsum(space[:n])])
    visible = (ends - starts) - (cum_space[ends] - cum_space[starts]) > 0
    punct = visible & (cum_alnum[ends] - cum_alnum[starts] == 0)
    after_space = (starts == 0) | space[starts] | space[np.maximum(starts - 1, 0)]
    after_punct = np.concatenate([[False], punct[:-1]])
    begins = visible & (after_space | after_punct | punct)
    begins[0] = True
    return begins


def align(
    tokenizer: PreTrainedTokenizerBase, batch: BatchEncoding, item: int, length: int, texts: tuple[str, str | None]
) -> Alignment:
    """Tokens, display labels and the token -> word map of ``batch`` item ``item`` (first ``length`` tokens).

    Examples:
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
    wid = _word_ids_from_offsets(wid, sequence, offsets, texts)
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
