"""Hidden states read from a store for fitting: a seeded token sample, split by sentence, centred and scaled per layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from shatterbox.errors import InputError
from shatterbox.store import Store

HELDOUT_MOD = 1000


@dataclass
class LayerVectors:
    """Per layer: training and held-out vectors [n, d] (centred, scaled) and their tokens.

    The same tokens appear at every layer (row ``i`` of every layer is one token), held-out
    tokens come from held-out sentences, and ``mean``/``scale`` undo the normalisation:
    ``raw = vectors * scale + mean``.
    """

    layers: list[int]
    train: dict[int, np.ndarray]
    heldout: dict[int, np.ndarray]
    mean: dict[int, np.ndarray]
    scale: dict[int, float]
    train_tokens: pa.Table
    heldout_tokens: pa.Table
    extra: dict = field(default_factory=dict)

    def stacked(self, part: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """All layers' vectors of ``part`` stacked [layers × n, d], with each row's layer."""
        source = self.train if part == "train" else self.heldout
        x = np.concatenate([source[l] for l in self.layers])
        return x, np.repeat(self.layers, [len(source[l]) for l in self.layers])


def hidden_layers(store: Store) -> list[int]:
    """Layers whose hidden states the store holds (0 = embeddings)."""
    return store.layers("hidden")


def layer_vectors(store: Store, layers: list[int] | None = None, *, max_tokens: int = 50_000, heldout: float = 0.1,
                  seed: int = 0, special: bool = False) -> LayerVectors:
    """Read ``hidden_L`` of ``layers`` for a seeded sample of at most ``max_tokens`` tokens.

    Sentences whose seeded hash falls in the ``heldout`` fraction give the held-out tokens; special
    tokens ([CLS], [SEP]; their norms dwarf the rest) are left out unless ``special=True``. Each
    layer is centred on its training mean and scaled so that a vector's mean squared norm is ``d``.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=40), tempfile.mkdtemp(), layers="1,2")
        >>> v = layer_vectors(s, max_tokens=300)
        >>> v.layers, v.train[1].shape[1], len(v.train[1]) == len(v.train[2])
        ([1, 2], 384, True)
    """
    chosen = store.require_hidden(layers)
    if not 0 <= heldout < 1:
        raise InputError(f"heldout must be in [0, 1) (got {heldout})")
    where = None if special else "not special"
    total = int(store.sql(f"select count(*) from tokens{' where ' + where if where else ''}").fetchall()[0][0])
    if total == 0:
        raise InputError("the store has no (non-special) tokens to fit on: harvest a corpus with text")
    keep_p = min(1.0, max_tokens / total)
    raw: dict[int, np.ndarray] = {}
    tokens = None
    for layer in chosen:
        rng = np.random.default_rng(seed)  # same draws for every layer: the same tokens
        parts, metas = [], []
        for meta, values in store.batches(f"hidden_{layer}", where):
            pick = rng.random(len(values)) < keep_p
            parts.append(values[pick])
            metas.append(meta.filter(pa.array(pick)))
        raw[layer] = np.concatenate(parts)
        tokens = tokens or pa.concat_tables(metas)
    held = _heldout_mask(tokens.column("sentence_id").to_numpy(), heldout, seed)
    if held.all() or (not held.any() and heldout > 0):
        held = np.zeros(len(held), bool)
        held[-max(1, len(held) // 10):] = heldout > 0  # too few sentences to split by hash: last tenth
    out = LayerVectors(chosen, {}, {}, {}, {}, tokens.filter(pa.array(~held)), tokens.filter(pa.array(held)))
    for layer in chosen:
        train = raw[layer][~held]
        mean = train.mean(0)
        scale = float(np.sqrt(((train - mean) ** 2).sum(1).mean() / train.shape[1])) or 1.0
        out.mean[layer], out.scale[layer] = mean.astype(np.float32), scale
        out.train[layer] = ((train - mean) / scale).astype(np.float32)
        out.heldout[layer] = ((raw[layer][held] - mean) / scale).astype(np.float32)
    return out


def heldout_sentences(store: Store, *, heldout: float = 0.1, seed: int = 0, limit: int | None = None) -> np.ndarray:
    """Ids of the store's sentences that :func:`layer_vectors` holds out with the same ``heldout`` and ``seed`` (the
    first ``limit`` of them): texts no factor was fitted on.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=200), tempfile.mkdtemp(), layers="1")
        >>> ids = heldout_sentences(s)
        >>> 5 < len(ids) < 40
        True
    """
    ids = np.sort(store.sentences().column("id").to_numpy())
    chosen = ids[_heldout_mask(ids, heldout, seed)]
    return chosen if limit is None else chosen[:limit]


def heldout_texts(store: Store, *, heldout: float = 0.1, seed: int = 0, limit: int | None = None) -> list[str]:
    """The texts of :func:`heldout_sentences` (blank ones left out), or one clear error when there are none.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> len(heldout_texts(harvest(load_corpus("wordnet", limit=200), tempfile.mkdtemp(), layers="1"), limit=3))
        3
    """
    ids = heldout_sentences(store, heldout=heldout, seed=seed, limit=limit)
    if not len(ids):
        raise InputError("the store has no held-out sentences to score on: harvest more sentences")
    table = store.sentences(f"id in ({', '.join(str(int(i)) for i in ids)})")
    return [t for t in table.column("text").to_pylist() if t and t.strip()]


def _heldout_mask(sentence_id: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Whether each row's sentence is held out (a seeded hash of its id)."""
    mixed = (sentence_id.astype(np.uint64) * np.uint64(2654435761) + np.uint64(seed * 97 + 13)) % np.uint64(2**32)
    return (mixed % np.uint64(HELDOUT_MOD)) < np.uint64(int(round(fraction * HELDOUT_MOD)))
