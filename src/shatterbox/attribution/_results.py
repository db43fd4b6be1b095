"""The results of explaining one text: an :class:`Attribution` per method, a :class:`Comparison` of several."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from shatterbox.attribution._faithfulness import MASKING_BIAS, Faithfulness
from shatterbox.errors import DrawnAndShownByRender

TITLES = {
    "exact": "exact Shapley",
    "sampled": "sampled Shapley",
    "kernel": "Kernel SHAP",
    "owen": "Owen (phrase tree)",
    "lime": "LIME",
    "ig": "integrated gradients",
    "gradxinput": "gradient x input",
    "rollout": "attention rollout",
}


@dataclass
class Attribution(DrawnAndShownByRender):
    """Per-word, per-label values of one explanation, with what it cost and how faithful it is.

    ``values[i, c]`` is word ``i``'s contribution to label ``c``; ``base`` is the output with every word
    masked and ``prediction`` the output for the whole text. ``error`` (sampled methods) is a 95% half-width.
    """

    words: list[str]
    labels: list[str]
    values: np.ndarray
    base: np.ndarray
    prediction: np.ndarray
    label: int
    method: str
    evaluations: int
    seconds: float
    masking: str
    model: str
    text: str | None = None
    error: np.ndarray | None = None
    faithfulness: Faithfulness | None = None
    units: str = "probability"
    notes: list[str] = field(default_factory=list)

    @property
    def label_name(self) -> str:
        """Name of the explained label."""
        return self.labels[self.label]

    @property
    def title(self) -> str:
        """Readable method name."""
        return TITLES.get(self.method, self.method)

    def top(self, k: int = 3, label: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` words that push ``label`` (default: the explained one) up the most.

        Examples:
            >>> from shatterbox.attribution import ValueGame, explain
            >>> a = explain(ValueGame(["a", "b", "c"], lambda m: m @ np.array([1.0, 3.0, 2.0])))
            >>> a.top(2)
            [('b', 3.0), ('c', 2.0)]
        """
        column = self.values[:, self.label if label is None else label]
        order = np.argsort(-column, kind="stable")[:k]
        return [(self.words[i], float(column[i])) for i in order]

    def top_labels(self, k: int = 3, label: int | None = None) -> list[str]:
        """The ``k`` top words as readable labels: punctuation in quotes, a repeated word with its
        occurrence (``the#2``, as ``--word`` takes it).

        Examples:
            >>> from shatterbox.attribution import ValueGame, explain
            >>> a = explain(ValueGame(["the", "cat", "saw", "the", ","], lambda m: m @ np.array([0.1, 0.2, 0.0, 0.5, 0.3])))
            >>> a.top_labels(3)
            ['the#2', '","', 'cat']
        """
        column = self.values[:, self.label if label is None else label]
        order = np.argsort(-column, kind="stable")[:k]
        return [word_label(self.words, int(i)) for i in order]

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON types."""
        return {
            "text": self.text,
            "model": self.model,
            "method": self.method,
            "title": self.title,
            "words": self.words,
            "labels": self.labels,
            "label": self.label,
            "label_name": self.label_name,
            "values": self.values.tolist(),
            "error": None if self.error is None else self.error.tolist(),
            "base": self.base.tolist(),
            "prediction": self.prediction.tolist(),
            "units": self.units,
            "masking": self.masking,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "faithfulness": None if self.faithfulness is None else self.faithfulness.to_dict(),
            "notes": self.notes,
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

@dataclass
class Comparison(DrawnAndShownByRender):
    """Several methods on the same text and model, comparable row by row."""

    attributions: list[Attribution]

    def rows(self) -> list[dict[str, Any]]:
        """One summary row per method: top words, faithfulness, model evaluations, seconds."""
        rows = []
        for a in self.attributions:
            f = a.faithfulness
            rows.append({
                "method": a.method,
                "top": a.top_labels(3),
                "comprehensiveness": None if f is None else f.comprehensiveness,
                "sufficiency": None if f is None else f.sufficiency,
                "aopc_deletion": None if f is None else f.aopc_deletion,
                "aopc_insertion": None if f is None else f.aopc_insertion,
                "evaluations": a.evaluations,
                "seconds": a.seconds,
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Summary rows and every attribution, as plain JSON types."""
        return {"rows": self.rows(), "attributions": [a.to_dict() for a in self.attributions], "note": MASKING_BIAS}

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)


def word_label(words: Sequence[str], i: int) -> str:
    """``words[i]`` told apart from its neighbours: quoted when it has no letter or digit, and with
    ``#n`` (its occurrence, from 1) when the word appears more than once (case-insensitive).

    Examples:
        >>> word_label(["a", ".", "A"], 2), word_label(["a", ".", "A"], 1)
        ('A#2', '"."')
    """
    word = words[i]
    same = [j for j, w in enumerate(words) if w.casefold() == word.casefold()]
    shown = word if any(ch.isalnum() for ch in word) else f'"{word}"'
    return f"{shown}#{same.index(i) + 1}" if len(same) > 1 else shown
