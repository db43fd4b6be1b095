"""Sense-labelled WordNet examples of ambiguous words: gold labels for polysemy analyses."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shatterbox.corpus import Corpus, CorpusError, wordnet_corpus

SENSES_SIZE = 5000  # sentences of the shipped "wordnet-senses" corpus


def sense_words(corpus: Corpus, *, min_examples: int = 3, min_senses: int = 2) -> dict[str, int]:
    """Words whose WordNet examples mark at least ``min_senses`` senses with ``min_examples`` examples each
    -> their number of such senses (most senses first).

    Examples:
        >>> words = sense_words(wordnet_corpus())
        >>> words["heavy"], "bank" in words
        (5, False)
    """
    require_senses(corpus.table.column_names)
    table = corpus.table.filter(pc.equal(corpus.table.column("kind"), "example"))
    words = _lowered(table)
    counts: dict[str, dict[str, int]] = {}
    for word, synset in zip(words, table.column("synset").to_pylist()):
        if word:
            counts.setdefault(word, {}).setdefault(synset, 0)
            counts[word][synset] += 1
    kept = {w: sum(n >= min_examples for n in by.values()) for w, by in counts.items()}
    return dict(sorted(((w, n) for w, n in kept.items() if n >= min_senses), key=lambda kv: (-kv[1], kv[0])))


def sense_corpus(size: int = SENSES_SIZE, *, min_examples: int = 3, min_senses: int = 2, seed: int = 0) -> Corpus:
    """A WordNet corpus of ``size`` sentences holding every example of the ambiguous words of
    :func:`sense_words` (gold senses for the polysemy table), filled up with a seeded sample of the rest.

    Examples:
        >>> c = sense_corpus(3000)
        >>> len(c), "synset" in c.table.column_names
        (3000, True)
    """
    wordnet = wordnet_corpus()
    words = set(sense_words(wordnet, min_examples=min_examples, min_senses=min_senses))
    chosen = np.array([i for i, w in enumerate(_lowered(wordnet.table)) if w in words], dtype=np.int64)
    rest = np.setdiff1d(np.arange(len(wordnet)), chosen)
    extra = np.random.default_rng(seed).choice(rest, size=max(0, size - len(chosen)), replace=False)
    rows = np.sort(np.concatenate([chosen, extra]))[: max(size, len(chosen))]
    return Corpus(wordnet.select(rows).table, "wordnet-senses")


def _lowered(table: pa.Table) -> list[str]:
    """The sense-bearing word of each row, lower-cased ("" where the example marks none)."""
    return [str(w).lower() if w else "" for w in table.column("word").to_pylist()]


def require_senses(columns: list[str]) -> None:
    """A clear error unless the columns carry WordNet's sense labels (kind, synset, word, start)."""
    missing = [c for c in ("kind", "synset", "word", "start") if c not in columns]
    if missing:
        raise CorpusError(f"this corpus has no sense labels (missing {', '.join(missing)}): use the shipped corpus "
                          "wordnet-senses (e.g. shatterbox harvest wordnet-senses --out stores/senses)")
