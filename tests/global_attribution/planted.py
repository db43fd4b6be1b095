"""A classifier whose output is a known function of word counts, for the corpus attribution tests."""

import time

import numpy as np

WEIGHTS = {"good": 0.8, "great": 0.6, "bad": -0.7, "awful": -0.9}  # logits per occurrence
FILLERS = ["the", "film", "was", "a", "plot", "acting", "music", "and", "story", "long", "it", "seemed"]
TRIPLE = ("plot", "acting", "music")  # +0.5 to the logit when all three are present: a three-way interaction
FLIP = "but"
DELAY = 0.0


def probability(text: str) -> float:
    """sigmoid(sum of the words' weights, + 0.5 for the three together): a known, non-additive function of word counts."""
    words = text.lower().split()
    logit = sum(WEIGHTS.get(w, 0.0) for w in words) + (0.5 if all(t in words for t in TRIPLE) else 0.0)
    if FLIP in words:  # "but" turns against the sentiment word it meets: its effect changes sign with context
        logit += 0.6 * (("bad" in words) - ("good" in words))
    return 1.0 / (1.0 + np.exp(-logit))


def classify(texts):
    if DELAY:
        time.sleep(DELAY)
    p = np.array([probability(t) for t in texts])
    return np.stack([1 - p, p], axis=1)


def corpus(n: int = 120, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = list(WEIGHTS) + FILLERS
    out = []
    for _ in range(n):
        k = int(rng.integers(4, 9))
        words = list(rng.choice(FILLERS, size=k))
        words[int(rng.integers(0, k))] = str(rng.choice(vocab))
        if rng.random() < 0.5:
            words.append(str(rng.choice(list(WEIGHTS))))
        if rng.random() < 0.4:
            words.insert(int(rng.integers(0, len(words))), FLIP)
        out.append(" ".join(words))
    return out
