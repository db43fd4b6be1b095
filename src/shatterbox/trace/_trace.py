"""The ``Trace``: everything one forward pass of one text showed, in one object.

Shapes (L layers, H heads, T tokens, d head size, D hidden size, F MLP neurons, W words):

==================  ==================  ==================================================
field               shape               meaning
==================  ==================  ==================================================
``attentions``      [L, H, T, T]        attention probabilities [layer, head, query, key]
``scores``          [L, H, T, T]        QK^T * scaling (soft-capped where the model caps) with the
                                        mask applied (-inf = blocked): what enters the softmax
``queries``         [L, H, T, d]        per-head query vectors
``keys``            [L, H, T, d]        per-head key vectors
``hidden_states``   [L + 1, T, D]       embeddings, then the output of every layer
``mlp``             [L, T, F]           MLP neuron activations (input of the down projection)
``logits``          [T, V], [V] or [C]  the head's output, where the model has a head; a language
                                        model's last position only ([V]) when [T, V] > 16 MB
==================  ==================  ==================================================

Arrays are numpy and indexed from 0; every user-facing *parameter* naming a layer or head is
numbered from 1 (layer 1 is ``attentions[0]``), as in the book and the CLI.

Examples:
    >>> from shatterbox import capture, load
    >>> t = capture(load(), "Transformers possess surprising emerging features.")
    >>> t.tokens[:3], t.words[:3]
    (['[CLS]', 'transformers', 'possess'], ['[CLS]', 'Transformers', 'possess'])
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from shatterbox.errors import HeadOutOfRange, InputError, InvalidTrace, LayerOutOfRange, UnknownWord, DrawnByRender

FORMAT = "shatterbox.trace/1"
_ARRAYS = (
    "token_ids", "special", "sequence", "offsets", "word_index", "word_special",
    "attentions", "scores", "queries", "keys", "hidden_states", "mlp", "logits", "scaling",
)


@dataclass(eq=False)
class Trace(DrawnByRender):
    """One captured forward pass of one text (or sentence pair); see the module docstring for shapes."""

    model: str
    text: str
    text_pair: str | None
    tokens: list[str]
    labels: list[str]
    words: list[str]
    token_ids: np.ndarray
    special: np.ndarray
    sequence: np.ndarray
    offsets: np.ndarray
    word_index: np.ndarray
    word_special: np.ndarray
    attentions: np.ndarray
    scores: np.ndarray
    queries: np.ndarray
    keys: np.ndarray
    hidden_states: np.ndarray
    scaling: np.ndarray
    is_causal: bool
    softcap: float | None = None
    mlp: np.ndarray | None = None
    logits: np.ndarray | None = None
    truncated: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        """Number of layers (valid layer numbers are 1..n_layers)."""
        return int(self.attentions.shape[0])

    @property
    def n_heads(self) -> int:
        """Number of heads per layer (valid head numbers are 1..n_heads)."""
        return int(self.attentions.shape[1])

    @property
    def n_tokens(self) -> int:
        """Number of tokens, special tokens included."""
        return len(self.tokens)

    @property
    def head_dim(self) -> int:
        """Size d_k of one head's query and key vectors."""
        return int(self.queries.shape[-1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the Trace's arrays (what a cache of Traces should count).

        Examples:
            >>> from shatterbox import capture, load
            >>> t = capture(load(), "hello world")
            >>> t.nbytes > 2 * t.attentions.nbytes
            True
        """
        arrays = (getattr(self, name) for name in _ARRAYS)
        return int(sum(a.nbytes for a in arrays if a is not None)) + 64 * (len(self.tokens) + len(self.words))

    @staticmethod
    def estimate_bytes(n_tokens: int, n_layers: int, n_heads: int, head_dim: int, hidden: int, mlp: int = 0) -> int:
        """The ``nbytes`` of a Trace of ``n_tokens`` tokens before capturing it (float32 arrays).

        Examples:
            >>> from shatterbox import capture, load
            >>> t = capture(load(), "hello world")
            >>> est = Trace.estimate_bytes(t.n_tokens, 6, 12, 32, 384, 1536)
            >>> abs(est - t.nbytes) / t.nbytes < 0.1
            True
        """
        per_head = 2 * n_tokens * n_tokens + 2 * n_tokens * head_dim  # attentions and scores, queries and keys
        return 4 * (n_layers * n_heads * per_head + (n_layers + 1) * n_tokens * hidden + n_layers * n_tokens * mlp)

    def head_index(self, layer: int, head: int) -> tuple[int, int]:
        """Check 1-based ``layer``/``head`` and return 0-based array indices.

        Examples:
            >>> from shatterbox import capture, load
            >>> capture(load(), "hi").head_index(6, 6)
            (5, 5)
        """
        if not 1 <= int(layer) <= self.n_layers:
            raise LayerOutOfRange(int(layer), self.n_layers)
        if not 1 <= int(head) <= self.n_heads:
            raise HeadOutOfRange(int(head), self.n_heads)
        return int(layer) - 1, int(head) - 1

    def find_word(self, word: str | int) -> int:
        """Index into ``words`` of a word given by its text (case-insensitive), its text and occurrence
        (``"bank#2"``: the second *bank*, counted from 1; the first without ``#``) or its index.

        Examples:
            >>> from shatterbox import capture, load
            >>> t = capture(load(), "The bank of the river, not the bank downtown")
            >>> t.find_word("BANK"), t.find_word("bank#2"), t.find_word(4)
            (2, 9, 4)
        """
        if isinstance(word, int) or (isinstance(word, str) and word.strip().lstrip("-").isdigit()):
            index = int(word)
            if 0 <= index < len(self.words):
                return index
        else:
            text, occurrence = _occurrence(word)
            found = self.occurrences(text)
            if occurrence <= len(found):
                return found[occurrence - 1]
            if found:
                raise InputError(f"{text!r} occurs {len(found)} time(s) in the text: use {text}#1 to {text}#{len(found)}")
        raise UnknownWord(str(word), [w for w, s in zip(self.words, self.word_special) if not s])

    def occurrences(self, word: str) -> list[int]:
        """Indices into ``words`` of every occurrence of ``word`` (case-insensitive), in text order.

        Examples:
            >>> from shatterbox import capture, load
            >>> capture(load(), "a cat and a dog").occurrences("A")
            [1, 4]
        """
        wanted = word.strip().casefold()
        return [i for i, candidate in enumerate(self.words) if candidate.casefold() == wanted]

    def save(self, path: str | os.PathLike[str]) -> str:
        """Save as one safetensors file whose metadata holds the JSON description.

        Examples:
            >>> import tempfile, os
            >>> from shatterbox import capture, load
            >>> t = capture(load(), "hello")
            >>> p = t.save(os.path.join(tempfile.mkdtemp(), "t.safetensors"))
            >>> Trace.load(p) == t
            True
        """
        path = os.fspath(path)
        arrays = {
            name: np.ascontiguousarray(getattr(self, name))
            for name in _ARRAYS
            if getattr(self, name) is not None
        }
        arrays = {k: (v.astype(np.uint8) if v.dtype == bool else v) for k, v in arrays.items()}
        meta = {
            "format": FORMAT,
            "model": self.model,
            "text": self.text,
            "text_pair": self.text_pair,
            "tokens": self.tokens,
            "labels": self.labels,
            "words": self.words,
            "is_causal": self.is_causal,
            "softcap": self.softcap,
            "truncated": self.truncated,
            "extra": self.extra,
        }
        save_file(arrays, path, metadata={"shatterbox": json.dumps(meta, ensure_ascii=False)})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Trace":
        """Load a Trace written by :meth:`save` (no model needed)."""
        path = os.fspath(path)
        try:
            from safetensors import safe_open

            with safe_open(path, "np") as handle:
                raw_meta = (handle.metadata() or {}).get("shatterbox")
            arrays = load_file(path)
        except (OSError, SafetensorError, ValueError) as exc:
            raise InvalidTrace(f"{path!r} is not a readable shatterbox trace file: {exc}") from exc
        if not raw_meta:
            raise InvalidTrace(f"{path!r} is a safetensors file but not a shatterbox trace (no 'shatterbox' metadata)")
        meta = json.loads(raw_meta)
        meta.setdefault("softcap", None)  # traces saved before soft-capping was recorded
        if meta.pop("format", None) != FORMAT:
            raise InvalidTrace(f"{path!r} was written by an incompatible shatterbox version")
        for name in ("special", "word_special"):
            arrays[name] = arrays[name].astype(bool)
        return cls(**meta, **{name: arrays.get(name) for name in _ARRAYS})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                    return False
            elif a != b:
                return False
        return True

    def __repr__(self) -> str:
        return (
            f"Trace(model={self.model!r}, tokens={self.n_tokens}, words={len(self.words)}, "
            f"layers={self.n_layers}, heads={self.n_heads}, causal={self.is_causal})"
        )


def _occurrence(word: str) -> tuple[str, int]:
    """``"bank#2"`` -> ("bank", 2); a word without a ``#N`` suffix (or that is only ``#N``) -> (word, 1)."""
    text, sep, number = word.strip().rpartition("#")
    if sep and text and number.isdigit() and int(number) >= 1:
        return text, int(number)
    return word.strip(), 1
