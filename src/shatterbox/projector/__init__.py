"""The projector: 2-D maps (PCA, UMAP) of sentence or token vectors at any layer, read from the store,
each with its faithfulness to the full space, aligned across layers so points stay comparable.

Faithfulness, next to every map: trustworthiness@k (scikit-learn; 1 = no false neighbours in the
map) and k-NN recall@k (the share of each point's k nearest neighbours in the full space that are
also among its k nearest on the map). Layer maps are aligned to the previous layer's by an
orthogonal Procrustes rotation (with reflection and one scale), which moves no point relative to
another, so a map's faithfulness is unchanged by it.

Examples:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 10)) * np.r_[5, 3, np.ones(8)]
    >>> m = project(x, "pca")
    >>> m.coords.shape, round(m.trustworthiness, 2) > 0.5
    ((200, 2), True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from shatterbox.errors import InputError, moved_names
from shatterbox.options import PROJECT
from shatterbox.store import Store

PROJECTIONS = ("pca", "umap")

__all__ = ["PROJECTIONS", "Map", "Points", "align_maps", "factor_values", "knn_recall", "point_vectors", "map_store", "predictions", "project", "reads_store", "project_layers", "sentence_points",
           "token_points", "trustworthiness"]


@dataclass
class Map:
    """One 2-D map of ``n`` points: coordinates and how faithful they are to the full space."""

    layer: int | None
    method: str
    coords: np.ndarray  # [n, 2]
    trustworthiness: float
    recall: float
    k: int
    seconds: float


@dataclass
class Points:
    """What is mapped: one row per sentence (or token), its text, the token's characters, and labels to colour by."""

    level: str
    sentence_ids: np.ndarray
    positions: np.ndarray  # -1 at sentence level
    texts: list[str]
    spans: np.ndarray  # [n, 2] characters of the token in its sentence ([-1, -1] at sentence level)
    labels: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)  # numeric colourings (e.g. confidence)


def knn_recall(x: np.ndarray, y: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's ``k`` nearest neighbours in ``x`` that are among its ``k`` nearest in ``y``.

    Examples:
        >>> x = np.arange(6.0)[:, None]
        >>> knn_recall(x, x * 3, k=2), knn_recall(x, x[::-1] ** 3, k=2) < 1
        (1.0, True)
    """
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(x) - 1)
    near_x = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(return_distance=False)  # each point itself excluded
    near_y = NearestNeighbors(n_neighbors=k).fit(y).kneighbors(return_distance=False)
    hits = [len(set(a) & set(b)) for a, b in zip(near_x, near_y)]
    return float(np.mean(hits) / k)


def trustworthiness(x: np.ndarray, y: np.ndarray, k: int = 10, *, block: int = 256) -> float:
    """Trustworthiness@k of the map ``y`` of ``x`` (Venna & Kaski; the value scikit-learn's
    ``sklearn.manifold.trustworthiness`` gives), computed a block of rows at a time: memory stays
    at ``block`` × n instead of scikit-learn's n × n distance and rank matrices (3.2 GB at 20,000 points).

    Examples:
        >>> from sklearn import manifold
        >>> x = np.random.default_rng(0).normal(size=(40, 5))
        >>> bool(abs(trustworthiness(x, x[:, :2], k=5) - manifold.trustworthiness(x, x[:, :2], n_neighbors=5)) < 1e-12)
        True
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x)
    x = x if x.dtype == np.float64 else x.astype(np.float32)  # float32 vectors: float32 distances, as scikit-learn
    n = len(x)
    near_y = NearestNeighbors(n_neighbors=k).fit(y).kneighbors(return_distance=False)  # [n, k], each point itself excluded
    squared = (x * x).sum(1)
    penalty = 0.0
    for start in range(0, n, block):
        stop = min(n, start + block)
        d = squared[start:stop, None] - 2 * (x[start:stop] @ x.T) + squared[None, :]
        d[np.arange(stop - start), np.arange(start, stop)] = np.inf  # a point is not its own neighbour
        dj = np.take_along_axis(d, near_y[start:stop], axis=1)
        ranks = (d[:, :, None] < dj[:, None, :]).sum(1) + 1  # rank of each map neighbour in the full space
        penalty += float(np.maximum(ranks - k, 0).sum())
    return 1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))


def project(x: np.ndarray, method: str = "pca", *, seed: int = 0, k: int = 10, layer: int | None = None,
            neighbours: int = 15) -> Map:
    """A 2-D map of ``x`` [n, d] by ``pca`` (scikit-learn) or ``umap`` (umap-learn, seeded: the same map every run).

    Examples:
        >>> x = np.random.default_rng(1).normal(size=(50, 4))
        >>> project(x, "pca").coords[:2].round(3).tolist() == project(x, "pca").coords[:2].round(3).tolist()
        True
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 5:
        raise InputError(f"a map needs at least 5 points (got {len(x)}): choose more sentences or tokens")
    start = time.perf_counter()
    if method == "pca":
        from sklearn.decomposition import PCA

        coords = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "umap":
        import warnings

        import umap

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)  # seeded UMAP runs on one thread, as it should
            coords = umap.UMAP(n_components=2, n_neighbors=min(neighbours, len(x) - 1), random_state=seed).fit_transform(x)
    else:
        raise InputError(f"unknown projection {method!r}: use one of {', '.join(PROJECTIONS)}")
    seconds = time.perf_counter() - start
    k = min(k, (len(x) - 1) // 2)
    return Map(layer, method, np.asarray(coords, dtype=np.float64), trustworthiness(x, coords, k),
               knn_recall(x, coords, k), k, seconds)


def align_maps(coords: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``coords`` rotated (reflection allowed), scaled and shifted onto ``reference`` (orthogonal Procrustes):
    distances between points keep their ratios, so the map's faithfulness does not change.

    Examples:
        >>> ref = np.random.default_rng(2).normal(size=(30, 2))
        >>> turned = ref @ np.array([[0.0, -1.0], [1.0, 0.0]]) * 3 + 5
        >>> np.allclose(align_maps(turned, ref), ref)
        True
    """
    from scipy.linalg import orthogonal_procrustes

    a, b = coords - coords.mean(0), reference - reference.mean(0)
    rotation, _ = orthogonal_procrustes(a, b)
    turned = a @ rotation
    scale = float((turned * b).sum() / max((turned * turned).sum(), 1e-12))
    return turned * scale + reference.mean(0)


def project_layers(vectors: dict[int, np.ndarray], method: str = "pca", *, seed: int = 0, k: int = 10,
                   progress: Callable[[int, int], None] | None = None) -> list[Map]:
    """One map per layer, each aligned to the previous layer's, so a point moves only as its vector does;
    ``progress(done, total)`` after each layer."""
    maps: list[Map] = []
    for layer in sorted(vectors):
        m = project(vectors[layer], method, seed=seed, k=k, layer=layer)
        if maps:
            m.coords = align_maps(m.coords, maps[-1].coords)
        maps.append(m)
        if progress is not None:
            progress(len(maps), len(vectors))
    return maps


def map_store(store: Store, *, method: str = PROJECT.method, level: str = PROJECT.level, pool: str = PROJECT.pool,
              layers: Sequence[int] | None = None, limit: int | None = PROJECT.limit, seed: int = PROJECT.seed, classifier=None, factors=None, factor: int | None = None,
              ablate: tuple[int, int] | None = None, progress: Callable[[int, int], None] | None = None) -> tuple[Points, list[Map]]:
    """The whole projector pipeline over ``store``: sample points (``level`` sentence or token, ``limit`` seeded),
    optionally colour them by ``classifier``'s prediction and confidence, by ``factor`` of ``factors``, and (sentences)
    by how far each sentence's embedding moves when head ``ablate`` = (layer, head) is mean-ablated in it — the causal
    reading of the map; then one aligned map per hidden layer (``layers``: all by default); ``progress(done, total)``
    counts the sentences ablated (with ``ablate``), then the layers mapped.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=30), tempfile.mkdtemp(), layers="1,2")
        >>> points, maps = map_store(s, limit=20)
        >>> len(points.texts), [m.layer for m in maps]
        (20, [1, 2])
    """
    if method not in PROJECTIONS:
        raise InputError(f"unknown projection {method!r}: use one of {', '.join(PROJECTIONS)}")
    if level not in ("sentence", "token"):
        raise InputError(f"unknown level {level!r}: sentence or token")
    if pool not in ("mean", "first"):
        raise InputError(f"unknown pooling {pool!r}: mean or first")
    if (factors is None) != (factor is None):
        raise InputError("factors and factor go together: the factors fitted on this store and the factor whose code colours the points")
    chosen = list(layers) if layers else store.layers()
    points = (sentence_points if level == "sentence" else token_points)(store, limit=limit, seed=seed)
    if classifier is not None:
        labels, confidence = predictions(store, points, classifier)
        points.labels["prediction"], points.values["confidence"] = labels, confidence
    if factors is not None:
        name, values = factor_values(factors, factor, store, points)
        points.values[name] = values
    if ablate is not None:
        points.values[f"ablating L{ablate[0]} H{ablate[1]}"] = _ablation_values(store, points, ablate, progress)
    return points, project_layers(point_vectors(store, points, chosen, pool=pool), method, seed=seed, progress=progress)


def _ablation_values(store: Store, points: Points, head: tuple[int, int], progress: Callable[[int, int], None] | None) -> np.ndarray:
    """Each sentence's embedding change when ``head`` (layer, head) is mean-ablated in it."""
    from shatterbox.patching import Site, sentence_effects

    if points.level != "sentence":
        raise InputError("colouring by an ablated head reads whole sentences: use level='sentence'", parameter="ablate")
    return sentence_effects(store, Site("head", int(head[0]), int(head[1])), points.texts, progress=progress)


def _sample(ids: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or len(ids) <= limit:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=limit, replace=False))


def sentence_points(store: Store, *, limit: int | None = PROJECT.limit, seed: int = PROJECT.seed) -> Points:
    """The store's sentences (a seeded sample of at most ``limit``) with every label column of the corpus."""
    table = store.sentences()
    ids = _sample(table.column("id").to_numpy(), limit, seed)
    rows = table.filter(np.isin(table.column("id").to_numpy(), ids))
    labels = {name: [str(v) for v in rows.column(name).to_pylist()] for name in rows.schema.names
              if name not in ("id", "text", "start", "end", "offset")}
    n = rows.num_rows
    return Points("sentence", rows.column("id").to_numpy(), np.full(n, -1), rows.column("text").to_pylist(), np.full((n, 2), -1), labels)


def token_points(store: Store, *, limit: int | None = PROJECT.limit, seed: int = PROJECT.seed) -> Points:
    """A seeded sample of the store's non-special tokens, labelled by their word and their sentence's label columns."""
    extra = [n for n in store.sentences().schema.names if n not in ("id", "start", "end", "offset", "word")]
    chosen = "".join(f', s."{n}"' for n in extra)
    rows = store.query(f"select t.sentence_id, t.position, t.word, t.char_start, t.char_end{chosen} "
                       "from tokens t join sentences s on s.id = t.sentence_id where not t.special order by t.sentence_id, t.position")
    keep = _sample(np.arange(rows.num_rows), limit, seed)
    rows = rows.take(keep)
    labels = {"word": [str(w).lower() for w in rows.column("word").to_pylist()]}
    labels |= {name: [str(v) for v in rows.column(name).to_pylist()] for name in rows.schema.names
               if name not in ("sentence_id", "position", "word", "char_start", "char_end", "text")}
    spans = np.c_[rows.column("char_start").to_numpy(), rows.column("char_end").to_numpy()]
    return Points("token", rows.column("sentence_id").to_numpy(), rows.column("position").to_numpy(), rows.column("text").to_pylist(), spans, labels)


def point_vectors(store: Store, points: Points, layers: Sequence[int], *, pool: str = "mean") -> dict[int, np.ndarray]:
    """Each layer's vectors of ``points``: the sentence pooled by ``pool`` (mean over all its tokens, as
    sentence-transformers embed, or first), or the token's own."""
    out = {}
    for layer in store.require_hidden(layers):
        column = f"hidden_{layer}"
        if points.level == "sentence":
            out[layer] = store.sentence_vectors(column, points.sentence_ids, pool=pool)
        else:
            out[layer] = store.token_vectors(column, points.sentence_ids, points.positions)
    return out


def predictions(store: Store, points: Points, classifier) -> tuple[list[str], np.ndarray]:
    """The classifier's predicted label and its probability for each point's sentence. A pooled head on the
    encoder the store was harvested with (e.g. zero-shot on the default model) reads the store's last layer
    and the model is not run again; any other classifier (the shipped sentiment classifier has its own
    fine-tuned encoder; a Hugging Face classifier its own head) runs once on each distinct sentence.

    Examples:
        >>> import tempfile
        >>> from shatterbox.classifiers import zero_shot
        >>> from shatterbox.corpus import Corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(Corpus.from_texts(["What a wonderful day.", "This is awful."]), tempfile.mkdtemp(), layers="6")
        >>> predictions(s, sentence_points(s), zero_shot({"good": ["I loved it."], "bad": ["I hated it."]}))[0]
        ['good', 'bad']
    """
    ids, first, inverse = np.unique(points.sentence_ids, return_index=True, return_inverse=True)
    if reads_store(store, classifier):
        probs = _read_predictions(store, ids, classifier)
    else:  # every point carries its sentence's text: each distinct sentence runs once
        probs = classifier.predict([points.texts[i] for i in first])
    probs = probs[inverse]
    best = probs.argmax(1)
    return [classifier.labels[k] for k in best], probs.max(1)


def reads_store(store: Store, classifier) -> bool:
    """Whether ``classifier``'s predictions can be read from ``store`` (a pooled head on the very encoder the
    store was harvested with) instead of running it.

    Examples:
        >>> import tempfile
        >>> from shatterbox.classifiers import zero_shot
        >>> from shatterbox.classifiers.sentiment import sentiment
        >>> from shatterbox.corpus import Corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(Corpus.from_texts(["Fine."]), tempfile.mkdtemp(), layers="6")
        >>> reads_store(s, zero_shot(["good", "bad"])), reads_store(s, sentiment())
        (True, False)
    """
    from shatterbox.store import model_hash

    return classifier.head is not None and model_hash(classifier.model) == store.manifest["model"]["hash"]


def _read_predictions(store: Store, ids: np.ndarray, classifier) -> np.ndarray:
    import torch

    last = f"hidden_{classifier.model.n_layers}"
    if last not in store.columns:
        raise InputError(f"the classifier reads the last layer ({classifier.model.n_layers}), which the store lacks: harvest with layers=all")
    pooled = torch.from_numpy(store.sentence_vectors(last, ids))
    with torch.inference_mode():
        return torch.softmax(classifier.head(pooled), dim=-1).numpy()


def factor_values(factors, factor: int, store: Store, points: Points) -> tuple[str, np.ndarray]:
    """(name, code per point) of ``factor`` of ``factors`` (fitted on ``store``) at the layer where it matters
    most: a token's own code, or its sentence's pooled vector's.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.factors import fit_factors
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=40), tempfile.mkdtemp(), layers="1")
        >>> f = fit_factors(s, n_factors=8, n_epochs=1, max_tokens=300)
        >>> name, values = factor_values(f, 2, s, token_points(s, limit=30))
        >>> name, values.shape
        ('factor 2 (layer 1)', (30,))
    """
    if factors.store.get("key") != store.manifest.get("key"):
        raise InputError("the factors were fitted on another store (or this one was harvested again): fit factors on this store")
    if not 0 <= factor < factors.n_factors:
        raise InputError(f"factor {factor} is out of range: these factors are 0-{factors.n_factors - 1}")
    layer = factors.layers[int(factors.importance_[factor].argmax())]
    hidden = point_vectors(store, points, [layer])[layer]
    return f"factor {factor} (layer {layer})", factors.codes(hidden, layer, units=[factor])[:, factor]


__getattr__ = moved_names(__name__, {"align": "shatterbox.projector:align_maps", "layer_vectors": "shatterbox.projector:point_vectors",
                                     "METHODS": "shatterbox.projector:PROJECTIONS"})
