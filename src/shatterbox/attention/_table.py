"""Attention probability tables at token or word level, and the ranked list for one word."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shatterbox.trace import Trace
from shatterbox.errors import InputError

Level = Literal["token", "word"]
NUMBERING = "layers and heads are numbered from 1"


def merge_words(matrix: np.ndarray, word_index: np.ndarray, n_words: int) -> np.ndarray:
    """Merge word pieces of a [..., T, T] attention matrix into [..., W, W].

    Attended pieces (columns) are summed, attending pieces (rows) averaged, so rows that summed
    to 1 still sum to 1.

    Examples:
        >>> a = np.array([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4], [0.0, 0.5, 0.5]])
        >>> merge_words(a, np.array([0, 1, 1]), 2)
        array([[0.5, 0.5],
               [0.1, 0.9]])
    """
    pool = np.zeros((n_words, len(word_index)), dtype=np.float64)
    pool[word_index, np.arange(len(word_index))] = 1.0
    mean_rows = pool / pool.sum(axis=1, keepdims=True)
    return mean_rows @ matrix @ pool.T


def result_header(result) -> dict:
    """The fields every attention result starts its JSON with: model, layer, head and their numbering."""
    header = {"model": result.model, "layer": result.layer, "head": result.head, "numbering": NUMBERING}
    if hasattr(result, "level"):
        header["level"] = result.level
    return header


def _check_level(level: str) -> Level:
    if level not in ("token", "word"):
        raise InputError(f"level must be 'token' or 'word', not {level!r}")
    return level  # type: ignore[return-value]


def _matrix(trace: Trace, layer: int, head: int, level: Level) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The [query, key] matrix of one head at ``level``, its labels and its special-token flags."""
    li, hi = trace.head_index(layer, head)
    probs = trace.attentions[li, hi].astype(np.float64)
    if level == "word":
        return merge_words(probs, trace.word_index, len(trace.words)), list(trace.words), trace.word_special
    return probs, list(trace.labels), trace.special


def _drop_specials(matrix: np.ndarray, labels: list[str], special: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Remove special rows and columns and renormalise each row to sum to 1 over what is left."""
    keep = ~np.asarray(special, dtype=bool)
    sub = matrix[np.ix_(keep, keep)]
    sums = sub.sum(axis=1, keepdims=True)
    sub = np.divide(sub, sums, out=np.zeros_like(sub), where=sums > 0)
    return sub, [label for label, k in zip(labels, keep) if k]


@dataclass
class AttentionTable:
    """Attention probabilities of one layer and head: ``values[i, j]`` = how much ``rows[i]`` attends to ``columns[j]``.

    Examples:
        >>> from shatterbox import capture, load
        >>> tr = capture(load(), "Transformers possess surprising emerging features.")
        >>> tab = attention_table(tr, 6, 6, level="word", specials=False)
        >>> tab.rows[:2]
        ['Transformers', 'possess']
    """

    model: str
    layer: int
    head: int
    level: Level
    specials: bool
    rows: list[str]
    columns: list[str]
    values: np.ndarray
    note: str

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (``tokens`` labels both rows and columns; ``attention`` is the rows)."""
        return {
            **result_header(self),
            "specials": self.specials,
            "tokens": self.rows,
            "attention": [[float(x) for x in row] for row in self.values],
            "note": self.note,
        }

    def to_json(self) -> str:
        """One JSON object; see :meth:`to_dict`."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def to_csv(self) -> str:
        """CSV with a header row of attended labels and one row per attending label."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["attending \\ attended", *self.columns])
        for label, row in zip(self.rows, self.values):
            writer.writerow([label, *(f"{x:.6f}" for x in row)])
        return out.getvalue()



def attention_table(trace: Trace, layer: int, head: int, *, level: str = "token", specials: bool = True) -> AttentionTable:
    """The probability table of ``layer``/``head`` (from 1), at ``"token"`` or ``"word"`` level.

    With ``specials=False`` the special tokens' rows and columns are dropped and every row is
    renormalised to sum to 1 over the remaining tokens (the note says so).

    Examples:
        >>> from shatterbox import capture, load
        >>> tab = attention_table(capture(load(), "hello world"), 1, 1)
        >>> tab.rows
        ['[CLS]', 'hello', 'world', '[SEP]']
    """
    level = _check_level(level)
    matrix, labels, special = _matrix(trace, layer, head, level)
    note = "rows: attending; columns: attended; each row sums to 1"
    if level == "word":
        note += "; word pieces merged (attended pieces summed, attending pieces averaged)"
    if not specials and special.any():
        matrix, labels = _drop_specials(matrix, labels, special)
        note += "; special tokens hidden and rows renormalised over the remaining tokens"
    return AttentionTable(trace.model, int(layer), int(head), level, specials, labels, list(labels), matrix, note)


@dataclass
class Ranking:
    """What one word attends to, heaviest first."""

    model: str
    layer: int
    head: int
    level: Level
    word: str
    items: list[tuple[str, float]]

    def to_dict(self) -> dict:
        """JSON-ready dict with ``word`` and ``ranking`` (a list of ``[label, weight]``)."""
        return {
            **result_header(self),
            "word": self.word,
            "ranking": [[label, weight] for label, weight in self.items],
        }



def attends_to(
    trace: Trace, layer: int, head: int, word: str | int, *, level: str = "word", specials: bool = True
) -> Ranking:
    """The words (or tokens) that ``word`` attends to at ``layer``/``head``, sorted by weight.

    ``word`` is a word of the text (case-insensitive) or its index in ``trace.words``; at token
    level its pieces' rows are averaged.

    Examples:
        >>> from shatterbox import capture, load
        >>> tr = capture(load(), "Transformers possess surprising emerging features.")
        >>> r = attends_to(tr, 6, 6, "transformers", specials=False)
        >>> abs(sum(w for _, w in r.items) - 1) < 1e-6
        True
    """
    level = _check_level(level)
    li, hi = trace.head_index(layer, head)
    w = trace.find_word(word)
    pieces = trace.word_index == w
    row = trace.attentions[li, hi][pieces].astype(np.float64).mean(axis=0)
    labels, special = list(trace.labels), trace.special
    if level == "word":
        row = np.bincount(trace.word_index, weights=row, minlength=len(trace.words))
        labels, special = list(trace.words), trace.word_special
    if not specials:
        keep = ~special
        row, labels = row[keep], [lab for lab, k in zip(labels, keep) if k]
        row = row / row.sum() if row.sum() > 0 else row
    order = np.argsort(-row, kind="stable")
    return Ranking(trace.model, int(layer), int(head), level, trace.words[w], [(labels[i], float(row[i])) for i in order])
