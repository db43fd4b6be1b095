"""Teaching games: words with scores, plus bonuses for combinations (the chapter's SHAP warm-up).

In the chapter, "I love playing chess with my friends" is a game where each word has a score
and some word combinations earn a bonus; a word's Shapley value is its own score plus an equal
share of every bonus it takes part in. (The chapter's printed numbers, e.g. 1764 for "I", are
sums over the 5040 permutations; divided by 5040 they are the Shapley values, e.g. 0.35.)
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from shatterbox.attribution._games import ValueGame
from shatterbox.errors import InputError

CHAPTER_SCORES = {"I": 0.2, "love": 0.6, "playing": 0.5, "chess": 0.4, "with": 0.1, "my": 0.3, "friends": 0.4}
CHAPTER_BONUS = {
    ("I", "love"): 0.3,
    ("love", "playing"): 0.25,
    ("playing", "chess"): 0.45,
    ("with", "my", "friends"): 0.35,
}


def word_game(scores: Mapping[str, float], bonus: Mapping[Sequence[str], float] | None = None) -> ValueGame:
    """A coalition's value = the scores of its words + each bonus whose words are all present.

    Examples:
        >>> from shatterbox.attribution import shapley_exact
        >>> g = word_game({"a": 1.0, "b": 2.0}, {("a", "b"): 1.0})
        >>> shapley_exact(g, g.n).values[:, 0].tolist()
        [1.5, 2.5]
    """
    words = list(scores)
    weights = np.array([float(scores[w]) for w in words])
    groups, amounts = [], []
    for combo, amount in (bonus or {}).items():
        missing = [w for w in combo if w not in scores]
        if missing:
            raise InputError(f"bonus words {missing} are not among the scored words {words}")
        groups.append([words.index(w) for w in combo])
        amounts.append(float(amount))

    def value(masks: np.ndarray) -> np.ndarray:
        total = masks @ weights
        for index, amount in zip(groups, amounts):
            total = total + amount * masks[:, index].all(axis=1)
        return total

    return ValueGame(words, value, labels=["score"])


def chapter_game() -> ValueGame:
    """The chapter's warm-up game on "I love playing chess with my friends".

    Examples:
        >>> from shatterbox.attribution import explain
        >>> [round(v, 4) for v in explain(chapter_game()).values[:, 0].tolist()]
        [0.35, 0.875, 0.85, 0.625, 0.2167, 0.4167, 0.5167]
    """
    return word_game(CHAPTER_SCORES, CHAPTER_BONUS)
