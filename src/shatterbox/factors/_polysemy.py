"""Polysemy: a word's sense-labelled occurrences grouped by the factors that fire, scored against the senses."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from shatterbox.corpus import Corpus
from shatterbox.corpus.senses import require_senses, sense_words
from shatterbox.errors import InputError
from shatterbox.store import Store

SHUFFLES = 50  # label shuffles behind the chance level of each word


def occurrences(store: Store, word: str, layer: int) -> tuple[np.ndarray, list[str], pa.Table]:
    """The hidden states [n, d] at ``layer`` of the first token of ``word`` where a WordNet example marks
    its sense, the senses (synsets), and the rows (sentence_id, position, text)."""
    require_senses(store.sentences("false").column_names)
    column = f"hidden_{layer}"
    width = store.width(column)  # a clear error when the layer is not in the store
    query = (
        f"select t.sentence_id, t.position, t.char_start, t.char_end, s.synset, s.text, t.{column} from tokens t join sentences s on s.id = t.sentence_id "
        "where s.kind = 'example' and lower(s.word) = ? and t.char_start = s.start and not t.special order by t.sentence_id"
    )
    table = store.query(query, [word.lower()])
    values = table.column(column).combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, width).astype(np.float32)
    return values, table.column("synset").to_pylist(), table.drop_columns([column])


def polysemy(factors, store: Store, words: list[str] | None = None, *, layer: int | None = None, min_examples: int = 3,
             max_words: int = 12, seed: int = 0) -> pa.Table:
    """Per word: do the factors that fire separate its senses? One row per word.

    For a word with ``k`` senses (each with at least ``min_examples`` marked examples in the store),
    its occurrences are grouped by the ``k`` factors of :func:`factor_groups`; ``factor_ari`` is
    the adjusted Rand index of those groups against the senses.
    ``kmeans_ari`` is the baseline: k-means (k clusters, 10 seeded starts) on the same occurrences'
    hidden states; ``chance_ari`` the mean ARI of the factor groups against shuffled senses.
    ``layer`` defaults to the first fitted layer (low-level factors carry word senses).
    """
    layer = factors.layers[0] if layer is None else layer
    if words is None:
        words = list(sense_words(Corpus(store.sentences(), "store"), min_examples=min_examples))[:max_words]
    rows = [row for row in (_word_row(factors, store, w, layer, min_examples, seed) for w in words) if row]
    if not rows:
        raise InputError(f"no word in the store has two senses with min_examples={min_examples} marked examples each: its corpus needs "
                         "WordNet sense labels (the wordnet-senses corpus), or lower min_examples", parameter="min_examples")
    return pa.Table.from_pylist(rows)


def factor_groups(codes: np.ndarray, k: int, *, common: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` factors that tell a word's occurrences apart, and each occurrence's group.

    Factors active on more than ``common`` of the occurrences mark the word itself, not a sense, and
    are left out; of the rest, the ``k`` with the largest summed codes are kept, and an occurrence
    joins the one whose code, relative to that factor's largest code on the word, is highest
    (group -1 when none fires).

    Examples:
        >>> codes = np.array([[5.0, 1.0, 0.0], [5.0, 0.0, 2.0], [5.0, 2.0, 0.0], [5.0, 0.0, 1.0]])
        >>> top, groups = factor_groups(codes, 2)
        >>> top.tolist(), groups.tolist()
        ([1, 2], [1, 2, 1, 2])
    """
    active = codes > 0
    share = active.mean(0)
    candidates = np.flatnonzero((share <= common) & (active.sum(0) >= 1))
    top = candidates[np.argsort(-codes[:, candidates].sum(0), kind="stable")[:k]]
    if not len(top):
        return top, np.full(len(codes), -1)
    relative = codes[:, top] / codes[:, top].max(0).clip(min=1e-12)
    groups = np.where(relative.max(1) > 0, top[relative.argmax(1)], -1)
    return top, groups


def word_senses(factors, store: Store, word: str, *, layer: int | None = None, min_examples: int = 3, seed: int = 0) -> dict:
    """One word's polysemy row (see :func:`polysemy`) with its occurrences: sentence, the word's characters,
    gold sense and factor group of each — what the Factors tab and ``factors word`` show."""
    layer = factors.layers[0] if layer is None else layer
    found = _word_row(factors, store, word, layer, min_examples, seed, detail=True)
    if found is None:
        raise InputError(f"{word!r} has fewer than two senses with {min_examples} marked examples in this store: try one of "
                         + ", ".join(polysemy(factors, store, layer=layer, max_words=6).column("word").to_pylist()))
    return found


MIN_OCCURRENCES = 20  # below this many sense-labelled occurrences a word's ARI moves too much to be read as a result


def _ari_flag(occurrences: int, ari: float, chance: float) -> str:
    """Why a word's factor-group ARI is not a result ("" when it is one).

    Examples:
        >>> _ari_flag(6, 1.0, 0.0)
        'too few occurrences (6 < 20) for a stable score'
    """
    if occurrences < MIN_OCCURRENCES:
        return f"too few occurrences ({occurrences} < {MIN_OCCURRENCES}) for a stable score"
    if ari <= chance:
        return f"no better than shuffled senses ({ari:.3f} against {chance:.3f})"
    return ""


def _word_row(factors, store: Store, word: str, layer: int, min_examples: int, seed: int, detail: bool = False) -> dict | None:
    hidden, synsets, rows = occurrences(store, word, layer)
    names, counts = np.unique(synsets, return_counts=True)
    keep_senses = set(names[counts >= min_examples])
    if len(keep_senses) < 2:
        return None
    mask = np.array([s in keep_senses for s in synsets])
    hidden, labels = hidden[mask], np.array(synsets)[mask]
    k = len(keep_senses)
    codes = factors.codes(hidden, layer)
    top, groups = factor_groups(codes, k)
    rng = np.random.default_rng(seed)
    chance = float(np.mean([adjusted_rand_score(rng.permutation(labels), groups) for _ in range(SHUFFLES)]))
    normalised = (hidden - factors.mean[layer]) / factors.scale[layer]
    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(normalised)
    row = {
        "word": word, "senses": k, "occurrences": int(mask.sum()), "layer": layer,
        "factor_ari": float(adjusted_rand_score(labels, groups)), "kmeans_ari": float(adjusted_rand_score(labels, clusters)),
        "chance_ari": chance, "factors": [int(f) for f in top], "flag": _ari_flag(int(mask.sum()), float(adjusted_rand_score(labels, groups)), chance),
    }
    if detail:
        kept = rows.filter(pa.array(mask)).to_pylist()
        row["rows"] = [{"sentence_id": r["sentence_id"], "text": r["text"], "start": r["char_start"], "end": r["char_end"],
                        "synset": r["synset"], "group": int(g)} for r, g in zip(kept, groups)]
    return row
