"""The one tokenization helper: validation, truncation, padding, word alignment.

Everything in shatterbox that turns text into model input goes through :func:`encode`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from transformers import BatchEncoding

from shatterbox.errors import EmptyText, TextTooLong

if TYPE_CHECKING:
    from shatterbox.models import LoadedModel


class TruncationWarning(UserWarning):
    """A text was longer than the model accepts and its end was cut off."""


@dataclass
class Encoded:
    """A padded batch ready for the model, with what alignment needs kept aside."""

    batch: BatchEncoding
    lengths: np.ndarray
    dropped: list[int]
    texts: list[str]
    pairs: list[str | None]

    def model_inputs(self, keys: frozenset[str]) -> dict:
        """The tensors the model's ``forward`` accepts."""
        return {k: v for k, v in self.batch.items() if k in keys and k != "offset_mapping"}


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise EmptyText(what)
    return text


def encode(
    model: "LoadedModel",
    texts: Sequence[str],
    pairs: Sequence[str | None] | None = None,
    *,
    truncate: bool = True,
    allow_empty: bool = False,
) -> Encoded:
    """Tokenize ``texts`` (and optional second texts ``pairs``) into one right-padded batch.

    A text longer than ``model.max_length`` tokens is cut at the end with a
    :class:`TruncationWarning` naming how many tokens were dropped (``truncate=True``, the default),
    or refused with :class:`~shatterbox.errors.TextTooLong` (``truncate=False``). Empty texts are refused
    with :class:`~shatterbox.errors.EmptyText` unless ``allow_empty`` (a classifier scoring masked texts).

    Examples:
        >>> from shatterbox.models import load
        >>> enc = encode(load(), ["hello world", "hi"])
        >>> enc.lengths.tolist()
        [4, 3]
    """
    texts = [t if allow_empty and isinstance(t, str) else _check_text(t, "text") for t in texts]
    if not texts:
        raise EmptyText("list of texts")
    pair_list: list[str | None] = list(pairs) if pairs is not None else [None] * len(texts)
    if len(pair_list) != len(texts):
        raise ValueError("pairs must have one entry per text")
    pair_list = [None if p is None else _check_text(p, "second text") for p in pair_list]
    tok = model.tokenizer
    has_pairs = any(p is not None for p in pair_list)
    if has_pairs and not all(p is not None for p in pair_list):
        raise ValueError("either every text has a second text or none has")
    args = (texts, pair_list) if has_pairs else (texts,)
    batch = tok(
        *args,
        padding=True,
        truncation=True,
        max_length=model.max_length,
        return_tensors="pt",
        return_offsets_mapping=True,
    )
    lengths = batch["attention_mask"].sum(dim=1).numpy()
    dropped = _dropped_tokens(model, texts, pair_list, lengths)
    _report_truncation(model, dropped, truncate)
    for i in range(0 if allow_empty else len(texts)):
        if all(w is None for w in batch.word_ids(i)):
            raise EmptyText()
    return Encoded(batch=batch, lengths=lengths, dropped=dropped, texts=texts, pairs=pair_list)


def _dropped_tokens(model: "LoadedModel", texts: list[str], pairs: list[str | None], lengths: np.ndarray) -> list[int]:
    """How many tokens truncation removed from each text (only full-length items are re-counted)."""
    dropped = [0] * len(texts)
    for i in np.flatnonzero(lengths >= model.max_length):
        full = model.tokenizer(texts[i], pairs[i]) if pairs[i] is not None else model.tokenizer(texts[i])
        dropped[i] = max(0, len(full["input_ids"]) - int(lengths[i]))
    return dropped


def _report_truncation(model: "LoadedModel", dropped: list[int], truncate: bool) -> None:
    worst = max(dropped, default=0)
    if not worst:
        return
    message = (
        f"text is longer than {model.name!r} accepts ({model.max_length} tokens): "
        f"{worst} tokens past the limit were cut off"
    )
    if not truncate:
        raise TextTooLong(message.replace("were cut off", "would be cut off") + "; shorten the text")
    warnings.warn(message, TruncationWarning, stacklevel=3)
