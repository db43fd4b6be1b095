"""Games over words: what a coalition of present words is worth to each label.

A game maps bool coalitions [k, n_words] to values [k, n_labels]. Every attribution method
is written against this one interface, so all methods share the same masking, the same batching
and the same count of model evaluations (each distinct coalition is evaluated once per game).

- :class:`TokenGame`: a :class:`~shatterbox.classifiers.Classifier` on token ids. The text is tokenised
  once; an absent word's tokens are replaced by the mask token (``masking="mask"``) or removed
  (``masking="delete"``). Words come from the tokenizer's own word alignment.
- :class:`TextGame`: any callable ``f(list[str]) -> probabilities``; absent words' characters are
  removed (or replaced by ``mask_text``) in the original string, words again from a tokenizer's alignment.
- :class:`ValueGame`: a value function over coalitions given directly (teaching games).
"""

from __future__ import annotations

from collections import OrderedDict

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.trace import align, encode
from shatterbox.errors import InputError

MASKINGS = ("auto", "mask", "delete")
# bfloat16 runs the masked texts with CPU autocast: 1.8x faster in bench/attribution.py on a 2-core AVX512-BF16 CPU,
# probabilities move by up to about 0.004; float32 (the default) gives the model's own numbers.
DTYPES = ("float32", "bfloat16")
# Tokens per forward pass when no batch size is given. 4,096 rather than 8,192: the feed-forward layer's activations
# of 8,192 tokens (50 MB in float32) spill out of the CPU cache, and the 200 texts of bench/global_attribution.py
# scored 10-20 % slower per masked text (1.47-1.77 ms against 1.33-1.50 ms, float32; 12-, 40- and 120-token texts alike).
BATCH_TOKENS = 4096
CACHE_BYTES = 256 << 20  # evaluated coalitions kept per game (about a million of a two-label game)
ENTRY_OVERHEAD = 250  # bytes of a cache entry beyond its key and values: the bytes and ndarray objects, the ordered-dict slot


def _entry_bytes(key: bytes, value: np.ndarray) -> int:
    """What one cached coalition costs in memory (key, values and object overhead)."""
    return len(key) + value.nbytes + ENTRY_OVERHEAD


class Game:
    """Base class: cached, batched, counted evaluation of coalitions.

    Subclasses set ``words``, ``labels``, ``masking`` and implement ``_values(masks)``.
    """

    words: list[str]
    labels: list[str]
    masking: str = "given"
    batch_size: int = 64

    def __init__(self) -> None:
        self.evaluations = 0
        self.evaluated = 0  # model evaluations since the game was made (reset() leaves it): what progress reports
        self.progress: Callable[[int], None] | None = None  # called with ``evaluated`` after every batch; may raise to stop
        self.cache_bytes = CACHE_BYTES
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self._prefilled: dict[bytes, np.ndarray] = {}

    @property
    def n(self) -> int:
        """Number of players (words)."""
        return len(self.words)

    def _values(self, masks: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """Values [k, labels] of bool coalitions [k, n]; coalitions seen before are not evaluated again
        while they fit in ``cache_bytes`` (the oldest are forgotten first, after the call is answered)."""
        masks = np.asarray(masks, dtype=bool).reshape(-1, self.n)
        keys = [row.tobytes() for row in np.packbits(masks, axis=1)]
        todo = {key: i for i, key in enumerate(keys) if key not in self._cache}
        ready = [key for key in todo if key in self._prefilled]  # evaluated with other games' coalitions: counted here
        if ready:
            entries = [(key, self._prefilled.pop(key)) for key in ready]
            self.evaluations += len(entries)
            self._cache.update(entries)
            self._cached_bytes += sum(_entry_bytes(key, value) for key, value in entries)
            todo = {key: i for key, i in todo.items() if key not in self._cache}
        if todo:
            rows = np.fromiter(todo.values(), dtype=np.int64)
            fresh = np.concatenate([self._batch(masks[rows[s]]) for s in chunks(len(rows), self.batch_size)])
            self.evaluations += len(rows)
            entries = [(key, row.copy()) for key, row in zip(todo, fresh)]  # copies: a row view would keep the whole batch alive
            self._cache.update(entries)
            self._cached_bytes += sum(_entry_bytes(key, value) for key, value in entries)
        out = np.stack([self._cache[key] for key in keys])
        while self._cached_bytes > self.cache_bytes and self._cache:
            self._cached_bytes -= _entry_bytes(*self._cache.popitem(last=False))
        return out

    def _batch(self, masks: np.ndarray) -> np.ndarray:
        """Values of one batch of new coalitions, counted and reported to ``progress``."""
        values = np.asarray(self._values(masks), dtype=np.float64).reshape(len(masks), -1)
        self.evaluated += len(masks)
        if self.progress is not None:
            self.progress(self.evaluated)
        return values

    def prefill(self, masks: np.ndarray, values: np.ndarray) -> None:
        """Values of coalitions evaluated ahead (see :func:`evaluate_together`): the next call that asks for one takes
        it as its own evaluation (counted then); :meth:`reset` keeps them.

        Examples:
            >>> g = ValueGame(["a", "b"], lambda m: m.sum(axis=1) * 1.0)
            >>> g.prefill(np.array([[True, True]]), np.array([[5.0]]))
            >>> g(np.array([[True, True], [True, False]]))[:, 0].tolist(), g.evaluations
            ([5.0, 1.0], 2)
        """
        masks = np.asarray(masks, dtype=bool).reshape(-1, self.n)
        for key, value in zip((row.tobytes() for row in np.packbits(masks, axis=1)), np.asarray(values, dtype=np.float64).reshape(len(masks), -1)):
            self._prefilled[key] = value.copy()

    def reset(self) -> None:
        """Forget every evaluated coalition and zero the count (each method is counted on its own)."""
        self._cache.clear()
        self._cached_bytes = 0
        self.evaluations = 0

    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Values of the whole text and of every word masked, [labels] each, in one call."""
        full, empty = self(np.stack([np.ones(self.n, dtype=bool), np.zeros(self.n, dtype=bool)]))
        return full, empty


class ValueGame(Game):
    """A game given as a value function of coalition indicator rows.

    Examples:
        >>> g = ValueGame(["a", "b"], lambda m: m.sum(axis=1))
        >>> g(np.array([[True, True]])).tolist()
        [[2.0]]
    """

    def __init__(self, words: Sequence[str], fn: Callable[[np.ndarray], np.ndarray], labels: Sequence[str] | None = None, *, batch_size: int = 4096) -> None:
        super().__init__()
        self.words, self.fn, self.batch_size = [str(w) for w in words], fn, batch_size
        if not self.words:
            raise InputError("a game needs at least one player (word)")
        self.labels = list(labels) if labels is not None else ["value"]

    def _values(self, masks: np.ndarray) -> np.ndarray:
        return self.fn(masks)


class TokenGame(Game):
    """A classifier's label probabilities when some words of ``text`` are masked on token ids.

    Examples:
        >>> from shatterbox.classifiers.sentiment import sentiment
        >>> g = TokenGame(sentiment(), "I love chess.")
        >>> g.words, g.masking
        (['I', 'love', 'chess', '.'], 'mask')
    """

    def __init__(self, classifier, text: str, *, masking: str = "auto", batch_size: int | None = None, dtype: str = "float32") -> None:
        super().__init__()
        if dtype not in DTYPES:
            raise InputError(f"dtype {dtype!r} is not one of: {', '.join(DTYPES)}")
        self.classifier, self.text, self.dtype = classifier, text, dtype
        model = classifier.model
        encoded = encode(model, [text], truncate=False)
        length = int(encoded.lengths[0])
        al = align(model.tokenizer, encoded.batch, 0, length, (text, None))
        self.inputs = {k: v[:, :length] for k, v in encoded.model_inputs(model.forward_keys).items()}
        self.input_ids = self.inputs["input_ids"][0]
        words_of_tokens = np.where(al.special, -1, al.word_index)
        keep = ~al.word_special
        renumber = np.cumsum(keep) - 1  # word index among non-special words
        self.token_word = np.where(words_of_tokens >= 0, renumber[np.maximum(words_of_tokens, 0)], -1)
        self.words = [w for w, k in zip(al.words, keep) if k]
        self.tokens = al.labels
        self.labels = list(classifier.labels)
        self.masking = _choose_masking(masking, model.tokenizer, decoder=classifier.pooling == "last")
        self.mask_id = model.tokenizer.mask_token_id
        self.pad_id = model.tokenizer.pad_token_id or 0
        # rows per forward pass: a fixed number of tokens, so memory stays bounded for any text length
        self.batch_size = batch_size or max(1, BATCH_TOKENS // length)

    def to_words(self, token_values: np.ndarray) -> np.ndarray:
        """Sum per-token values [tokens] or [tokens, k] into per-word values [n] or [n, k] (specials dropped).

        Examples:
            >>> from shatterbox.classifiers.sentiment import sentiment
            >>> g = TokenGame(sentiment(), "unbelievably good")
            >>> g.to_words(np.ones(len(g.token_word))).tolist()  # [CLS] un ##bel ##ie ##va ##bly good [SEP]
            [5.0, 1.0]
        """
        token_values = np.asarray(token_values, dtype=np.float64)
        out = np.zeros((self.n, *token_values.shape[1:]))
        cols = np.flatnonzero(self.token_word >= 0)
        np.add.at(out, self.token_word[cols], token_values[cols])
        return out

    def token_presence(self, masks: np.ndarray) -> np.ndarray:
        """Which tokens are present [k, tokens] for word coalitions [k, n] (special tokens always are)."""
        present = np.ones((len(masks), len(self.token_word)), dtype=bool)
        cols = np.flatnonzero(self.token_word >= 0)
        present[:, cols] = masks[:, self.token_word[cols]]
        return present

    def masked_inputs(self, masks: np.ndarray) -> dict[str, torch.Tensor]:
        """Model inputs for coalitions [k, n]: absent words' tokens masked or deleted, one padded batch.

        Examples:
            >>> from shatterbox.classifiers.sentiment import sentiment
            >>> g = TokenGame(sentiment(), "I love chess", masking="delete")
            >>> g.masked_inputs(np.array([[True, False, True]]))["input_ids"].shape
            torch.Size([1, 4])
        """
        present = torch.from_numpy(self.token_presence(masks))
        k = len(masks)
        batch = {key: value.expand(k, -1) for key, value in self.inputs.items()}
        if self.masking == "mask":
            ids = torch.where(present, batch["input_ids"], torch.tensor(self.mask_id))
            return {**batch, "input_ids": ids}
        order = torch.argsort((~present).to(torch.int8), dim=1, stable=True)  # kept tokens first, in order
        kept = torch.gather(present, 1, order)
        nothing = ~kept.any(dim=1)
        width = max(1, int(kept.sum(dim=1).max()))
        out = {key: torch.gather(value, 1, order)[:, :width] for key, value in batch.items()}
        out["input_ids"] = out["input_ids"].masked_fill(~kept[:, :width], self.pad_id)
        kept[nothing, 0] = True  # a text with no token left is one pad token (GPT-2: its end-of-text token)
        out["attention_mask"] = kept[:, :width].to(batch["attention_mask"].dtype)
        return out

    def _values(self, masks: np.ndarray) -> np.ndarray:
        fast = self.dtype == "bfloat16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            return self.classifier.probabilities(self.masked_inputs(masks)).double().numpy()


def evaluate_together(games: Sequence[Game], masks: Sequence[np.ndarray], *, batch_tokens: int = BATCH_TOKENS) -> None:
    """Evaluate the coalitions ``masks[i]`` of every ``games[i]`` ahead, in shared forward passes, and
    :meth:`Game.prefill` them: many short texts of one classifier fill a batch that each alone would not (2-3x
    fewer seconds per row for 13-row batches on 2 cores). Games of one classifier, dtype and masked width go into
    the same passes (no padding is added); any other game is left to evaluate itself.

    Examples:
        >>> from shatterbox.classifiers.sentiment import sentiment
        >>> c = sentiment()
        >>> games = [TokenGame(c, "I love chess"), TokenGame(c, "I hate chess")]
        >>> full = [np.ones((1, 3), bool)] * 2
        >>> evaluate_together(games, full)
        >>> bool(np.allclose(games[0](full[0]), c.predict(["I love chess"]), atol=1e-5)), games[0].evaluations
        (True, 1)
    """
    groups: dict[tuple, list[tuple[Game, np.ndarray, dict]]] = {}
    for game, m in zip(games, masks):
        if not isinstance(game, TokenGame) or game.masking != "mask" or not len(m):
            continue
        m = np.unique(np.asarray(m, dtype=bool).reshape(-1, game.n), axis=0)
        inputs = game.masked_inputs(m)
        key = (id(game.classifier), game.dtype, tuple(sorted(inputs)), int(inputs["input_ids"].shape[1]))
        groups.setdefault(key, []).append((game, m, inputs))
    for (_, dtype, names, width), items in groups.items():
        rows = max(1, batch_tokens // max(width, 1))
        stacked = {name: torch.cat([inputs[name] for _, _, inputs in items]) for name in names}
        classifier = items[0][0].classifier
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
            values = torch.cat([classifier.probabilities({k: v[a:a + rows] for k, v in stacked.items()}).double()
                                for a in range(0, len(stacked["input_ids"]), rows)]).numpy()
        start = 0
        for game, m, _ in items:
            game.prefill(m, values[start:start + len(m)])
            start += len(m)


class TextGame(Game):
    """Any ``f(list[str]) -> probabilities [k, labels]``; absent words are cut out of the string.

    Words come from ``tokenizer``'s word alignment (the default model's if not given), so text without
    spaces and punctuation are handled as the tokenizer sees them. ``masking="mask"`` replaces each
    absent word by ``mask_text`` instead of removing it.

    Examples:
        >>> g = TextGame(lambda texts: [[len(t)] for t in texts], "I love chess")
        >>> g(np.array([[True, False, True]])).tolist()
        [[8.0]]
    """

    def __init__(self, fn: Callable[[list[str]], Sequence], text: str, *, tokenizer=None, labels: Sequence[str] | None = None, masking: str = "delete", mask_text: str = "[MASK]", batch_size: int = 64) -> None:
        super().__init__()
        loaded = _TokenizerOnly(tokenizer if tokenizer is not None else _default_tokenizer())
        encoded = encode(loaded, [text], truncate=False)
        al = align(loaded.tokenizer, encoded.batch, 0, int(encoded.lengths[0]), (text, None))
        spans = []
        for w in np.unique(al.word_index[~al.special]):
            offs = al.offsets[(al.word_index == w) & ~al.special]
            spans.append((int(offs[:, 0].min()), int(offs[:, 1].max())))
        self.fn, self.text, self.spans, self.batch_size = fn, text, spans, batch_size
        self.words = [text[a:b] for a, b in spans]
        if masking not in ("mask", "delete"):
            masking = "delete"
        self.masking, self.mask_text = masking, mask_text
        probe = np.asarray(fn([text]), dtype=np.float64).reshape(1, -1)
        self.labels = list(labels) if labels is not None else [f"LABEL_{i}" for i in range(probe.shape[1])]
        self._cache[np.packbits(np.ones((1, self.n), dtype=bool), axis=1)[0].tobytes()] = probe[0]
        self.evaluations = 1

    def masked_texts(self, masks: np.ndarray) -> list[str]:
        """The strings for coalitions [k, n]: absent words removed (or replaced), separators kept."""
        replacement = self.mask_text if self.masking == "mask" else ""
        texts = []
        for row in masks:
            pieces, cursor = [], 0
            for (a, b), present in zip(self.spans, row):
                pieces.append(self.text[cursor:a])
                pieces.append(self.text[a:b] if present else replacement)
                cursor = b
            pieces.append(self.text[cursor:])
            texts.append("".join(pieces))
        return texts

    def _values(self, masks: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(self.masked_texts(masks)), dtype=np.float64)


@lru_cache(maxsize=1)
def _default_tokenizer():
    """The default model's tokenizer alone (no weights loaded)."""
    from transformers import AutoTokenizer

    from shatterbox.models import default_model_path

    return AutoTokenizer.from_pretrained(default_model_path())


class _TokenizerOnly:
    """Just enough of a LoadedModel for :func:`encode` when only a tokenizer is given."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.name = tokenizer, getattr(tokenizer, "name_or_path", "tokenizer")
        limit = getattr(tokenizer, "model_max_length", 512)
        self.max_length = limit if isinstance(limit, int) and 0 < limit < 1_000_000 else 512


def _choose_masking(masking: str, tokenizer, *, decoder: bool = False) -> str:
    """``auto``: the mask token where the tokenizer has one, except for a decoder (it never saw one: words are deleted)."""
    if masking not in MASKINGS:
        raise InputError(f"masking {masking!r} is not one of: {', '.join(MASKINGS)}")
    has_mask = tokenizer.mask_token_id is not None
    if masking == "mask" and not has_mask:
        raise InputError("this tokenizer has no mask token: use masking='delete'", parameter="masking")
    if masking == "auto":
        return "mask" if has_mask and not decoder else "delete"
    return masking
