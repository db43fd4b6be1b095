"""English lemmas from the shipped WordNet: its irregular forms; a word WordNet lists as it is ("boring", "loved")
stays; else WordNet's suffix rules (morphy), kept only when they give a WordNet lemma; a word WordNet does not know
is its own lemma (lower-cased).

Examples:
    >>> [lemma(w) for w in ["Movies", "loves", "better", "mice", "boring", "shatterbox"]]
    ['movie', 'love', 'good', 'mouse', 'boring', 'shatterbox']
"""

from __future__ import annotations

from functools import lru_cache

from shatterbox.corpus.wordnet import DATA_FILE, EXCEPTIONS_FILE

RULES = (  # WordNet's morphy detachment rules, nouns, then verbs, then adjectives
    ("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y"),
    ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""),
    ("er", ""), ("est", ""), ("er", "e"), ("est", "e"),
)


@lru_cache(maxsize=1)
def _lemmas() -> frozenset[str]:
    import pyarrow.parquet as pq

    column = pq.read_table(DATA_FILE, columns=["lemmas"]).column("lemmas").to_pylist()
    return frozenset(name.lower() for names in column if names for name in names.split("|"))


@lru_cache(maxsize=1)
def _exceptions() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in EXCEPTIONS_FILE.read_text(encoding="utf-8").splitlines():
        inflected, base = line.split("\t")
        found.setdefault(inflected, base)  # the first base in sorted order when a form has several
    return found


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """The lemma of one word (lower-cased): irregular form, known lemma, or the first suffix rule that gives one."""
    w = word.lower()
    if w in _exceptions():
        return _exceptions()[w]
    known = _lemmas()
    if w in known or not w.isalpha():
        return w
    for suffix, ending in RULES:
        if w.endswith(suffix) and len(w) > len(suffix):
            candidate = w[: len(w) - len(suffix)] + ending
            if candidate in known:
                return candidate
    return w
