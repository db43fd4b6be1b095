"""Probes: from which layer a property is readable, measured with control tasks (Hewitt & Liang 2019).

A probe is a small classifier trained on one layer's representations to predict a property. High
accuracy alone can mean the probe learned the task itself, so every accuracy comes with a *control
task*: each word type gets a random label drawn from the property's label distribution, fixed for
all its occurrences; a probe can only learn it by memorising word identity. Selectivity = accuracy
minus control accuracy, per fold, with 95 % intervals over folds. Run the same probes on a store
harvested with random weights (``shatterbox harvest --random-weights SEED``) for the baseline every
probing result needs.

Token properties come from the WordNet corpus's example sentences: the headword's part of speech
(``pos``), its supersense (``supersense``, WordNet's lexicographer file) and its sense among the
word's senses (``sense``); the probe reads the headword's first piece. Sentence properties
(``level="sentence"``) read any label column of the store's corpus, mean-pooled over the sentence's
tokens (special tokens left out).

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 3, 600); words = np.array([f"w{i % 150}" for i in range(600)])
    >>> x = {1: rng.normal(size=(600, 8)), 2: np.c_[labels, rng.normal(size=(600, 7))]}
    >>> result = probe_arrays(x, labels, words, folds=3)
    >>> [round(r.accuracy, 2) > 0.9 for r in result.layers]
    [False, True]
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from shatterbox.errors import InputError, deprecated
from shatterbox.options import PROBE
from shatterbox.store import Store

PROPERTIES = {"pos": "pos", "supersense": "supersense", "sense": "synset"}  # token property -> corpus column
KINDS = ("linear", "mlp")
MIN_CLASS = 5  # a class needs this many examples (and at least one per fold) to be probed

__all__ = ["KINDS", "PROPERTIES", "Examples", "LayerScore", "ProbeResult", "available", "class_directions", "control_labels", "examples", "features",
           "make_probe", "probe", "probe_arrays"]


@dataclass
class Examples:
    """Labelled examples of one property in a store: the rows to read and their gold labels."""

    property: str
    level: str
    sentence_ids: np.ndarray
    positions: np.ndarray  # the token read (token level); -1 at sentence level
    words: np.ndarray  # the word type (lower-cased) each example is about; the sentence id at sentence level
    labels: np.ndarray  # class names
    dropped: dict = field(default_factory=dict)  # rare classes left out: name -> count


@dataclass
class LayerScore:
    """One layer: accuracies over folds (mean and 95 % half-interval) for the task and its control."""

    layer: int
    accuracy: float
    accuracy_ci: float
    control: float
    control_ci: float
    selectivity: float
    selectivity_ci: float
    folds: list[float]
    control_folds: list[float]
    over_baseline: float = 0.0  # accuracy - the stronger of the control task and the majority class
    flag: str = ""  # why the layer's result is weak ("" when it beats both baselines)
    note: str = ""  # how to read it when the control task scores below the majority class (selectivity overstated)


@dataclass
class ProbeResult:
    """Per-layer scores of one probe kind on one property, with what the scores are relative to."""

    property: str
    level: str
    kind: str
    n_examples: int
    n_classes: int
    majority: float  # accuracy of always answering the most frequent class
    chance_control: float  # agreement of control and task labels (about the sum of squared class shares)
    layers: list[LayerScore]
    seconds: float
    model: str = ""
    dropped: dict = field(default_factory=dict)

    def best(self) -> LayerScore:
        """The layer with the largest margin over the stronger of the control task and the majority class."""
        return max(self.layers, key=lambda s: s.over_baseline)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict."""
        return asdict(self)


def control_labels(words: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Hewitt & Liang's control task: one label per word type, drawn from the labels' distribution.

    Every occurrence of a type gets the same control label, so the control is learnable only by
    memorising types; over many types its distribution follows the task's.

    Examples:
        >>> control_labels(np.array(["a", "b", "a"]), np.array(["x", "y", "x"]), seed=1).tolist()[0::2]  # both "a"s alike
        ['x', 'x']
    """
    words, labels = np.asarray(words), np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    types, inverse = np.unique(words, return_inverse=True)
    drawn = np.random.default_rng(seed).choice(len(classes), size=len(types), p=counts / counts.sum())
    return classes[drawn[inverse]]


def make_probe(kind: str = "linear", *, seed: int = 0):
    """A scikit-learn probe: standardised features into logistic regression (``linear``) or into one
    hidden layer of 256 ReLU units (``mlp``, Adam, early stopping on 10 % of the training fold).

    Examples:
        >>> type(make_probe("mlp")[-1]).__name__
        'MLPClassifier'
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "linear":
        head = LogisticRegression(C=0.5, max_iter=300, tol=1e-3)
    elif kind == "mlp":
        head = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, early_stopping=True, max_iter=200, random_state=seed)
    else:
        raise InputError(f"unknown probe kind {kind!r}: use one of {', '.join(KINDS)}")
    return make_pipeline(StandardScaler(), head)


def class_directions(probe) -> dict[str, np.ndarray]:
    """Each class's direction in the raw feature space of a fitted linear probe (:func:`make_probe`): its logistic
    regression weights divided by the scaler's scales; a binary probe's one row points to its second class, and its
    negation to the first.

    Examples:
        >>> rng = np.random.default_rng(0); x = rng.normal(size=(200, 3)) * [1.0, 10.0, 1.0]; y = np.where(x[:, 1] > 0, "b", "a")
        >>> d = class_directions(make_probe().fit(x, y))
        >>> sorted(d), int(np.argmax(np.abs(d["b"]))), bool(np.allclose(d["a"], -d["b"]))
        (['a', 'b'], 1, True)
    """
    scaler, head = probe[0], probe[-1]
    weights = head.coef_ / scaler.scale_
    classes = [str(c) for c in head.classes_]
    if weights.shape[0] == 1:
        return {classes[1]: weights[0], classes[0]: -weights[0]}
    return dict(zip(classes, weights))


def _interval(values: Sequence[float]) -> float:
    """Half-width of the 95 % t-interval of the mean of ``values``."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def _folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))


def _check_labels(labels: np.ndarray, folds: int) -> None:
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise InputError(f"the property has {len(classes)} class{'es' if len(classes) != 1 else ''} in these examples: a probe needs at least two "
                         "(choose another property, or a store whose corpus has more than one label)")
    if counts.min() < folds:
        raise InputError(f"class {classes[counts.argmin()]!r} has {counts.min()} examples, fewer than the {folds} folds: lower folds={folds} or drop it", parameter="folds")
    if not 2 <= folds <= 20:
        raise InputError(f"folds must be between 2 and 20 (got {folds})")


def probe_arrays(x: dict[int, np.ndarray], labels: np.ndarray, words: np.ndarray, *, kind: str = PROBE.kind, folds: int = PROBE.folds,
                 seed: int = PROBE.seed, progress: Callable[[int, int], None] | None = None,
                 on_layer: Callable[[int], None] | None = None) -> ProbeResult:
    """Probe every layer's features ``x[layer]`` [n, d] for ``labels``, and the control task of ``words``.

    The task and its control use the same stratified folds (seeded), so selectivity is a paired
    difference per fold. ``progress(done, total)`` is called after each probe fitted (layers × folds × 2: the task
    and its control); an exception it raises stops the run.
    """
    if on_layer is not None:
        deprecated("probe(on_layer=...)", "probe(progress=...), called with (done, total) after every fit")
    start = time.perf_counter()
    labels, words = np.asarray(labels), np.asarray(words)
    _check_labels(labels, folds)
    control = control_labels(words, labels, seed=seed)
    splits = _folds(labels, folds, seed)
    classes, counts = np.unique(labels, return_counts=True)
    scores, done, total = [], 0, 2 * len(x) * len(splits)
    if progress is not None:
        progress(0, total)
    for layer in sorted(x):
        task_acc, control_acc = [], []
        for train, test in splits:
            for target, out in ((labels, task_acc), (control, control_acc)):
                model = make_probe(kind, seed=seed).fit(x[layer][train], target[train])
                out.append(float((model.predict(x[layer][test]) == target[test]).mean()))
                done += 1
                if progress is not None:
                    progress(done, total)
        diff = np.subtract(task_acc, control_acc)
        score = LayerScore(layer, float(np.mean(task_acc)), _interval(task_acc), float(np.mean(control_acc)), _interval(control_acc),
                           float(diff.mean()), _interval(diff), task_acc, control_acc)
        scores.append(_judged(score, float(counts.max() / counts.sum())))
        if on_layer is not None:
            on_layer(layer)
    return ProbeResult(property="", level="", kind=kind, n_examples=len(labels), n_classes=len(classes),
                       majority=float(counts.max() / counts.sum()), chance_control=float((control == labels).mean()),
                       layers=scores, seconds=time.perf_counter() - start)


def _judged(s: LayerScore, majority: float) -> LayerScore:
    """``s`` with its accuracy over the stronger baseline (control task or majority class), a flag when it does not beat
    that baseline, and a note when the control task scores below the majority class (selectivity then overstates what
    the layer encodes: read the margin over the majority instead).

    Examples:
        >>> _judged(LayerScore(0, 0.387, 0.02, 0.28, 0.02, 0.107, 0.03, [], []), 0.389).flag
        'accuracy 0.387 ± 0.020 is not above the majority class (0.389)'
        >>> s = _judged(LayerScore(3, 0.878, 0.007, 0.393, 0.006, 0.485, 0.007, [], []), 0.423)
        >>> s.flag, s.note
        ('', 'control below the majority class: +0.455 over the majority, not +0.485')
    """
    s.over_baseline = s.accuracy - max(s.control, majority)
    if s.accuracy - s.accuracy_ci <= majority:
        s.flag = f"accuracy {s.accuracy:.3f} ± {s.accuracy_ci:.3f} is not above the majority class ({majority:.3f})"
    elif s.over_baseline - s.selectivity_ci <= 0:
        s.flag = f"{s.over_baseline:+.3f} ± {s.selectivity_ci:.3f} over the stronger of the control task and the majority class"
    if s.control < majority and not s.flag:
        s.note = f"control below the majority class: {s.over_baseline:+.3f} over the majority, not {s.selectivity:+.3f}"
    return s


def examples(store: Store, property: str, *, level: str = PROBE.level, limit: int | None = None, seed: int = PROBE.seed) -> Examples:
    """The labelled examples of ``property`` in ``store`` (at most ``limit``, a seeded sample).

    Token level: ``pos``, ``supersense`` or ``sense`` of each corpus sentence's headword (the
    WordNet corpus marks it with ``word``, ``start`` and ``end``); ``sense`` keeps words with at
    least two senses. Sentence level: any label column of the corpus. Classes with fewer than
    ``MIN_CLASS`` examples are left out (listed in ``dropped``).

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=200, seed=1), tempfile.mkdtemp(), layers="1")
        >>> e = examples(s, "pos")
        >>> len(e.labels) > 20, set(e.labels) <= {"noun", "verb", "adj", "adv"}
        (True, True)
    """
    names = store.sentences().schema.names
    if level == "token":
        if property not in PROPERTIES:
            raise InputError(f"unknown token property {property!r}: use one of {', '.join(PROPERTIES)} (or level='sentence' with a label column)", parameter="level")
        if not {"word", "start", "end", PROPERTIES[property]} <= set(names):
            raise InputError(f"the store's corpus has no headword marks ({', '.join(sorted({'word', 'start', 'end'} - set(names)))} missing): "
                             "token probes need the WordNet corpus (harvest wordnet) or a corpus with word/start/end columns")
        table = _token_examples(store, PROPERTIES[property])
        sentence_ids, positions = table.column("sentence_id").to_numpy(), table.column("position").to_numpy()
        words, labels = np.array(table.column("word").to_pylist(), dtype=object), np.array(table.column("label").to_pylist(), dtype=object)
        if property == "sense":
            keep = _several_senses(words, labels)
            sentence_ids, positions, words, labels = sentence_ids[keep], positions[keep], words[keep], labels[keep]
    elif level == "sentence":
        if property not in names or property in ("id", "text"):
            usable = [n for n in names if n not in ("id", "text", "start", "end", "offset")]
            raise InputError(f"the store's corpus has no label column {property!r}: it has {', '.join(usable) or 'none'}")
        table = store.query(f'select id, "{property}" as label from sentences where "{property}" is not null order by id')
        sentence_ids = table.column("id").to_numpy()
        positions = np.full(len(sentence_ids), -1)
        labels = np.array([str(v) for v in table.column("label").to_pylist()], dtype=object)
        words = sentence_ids.astype(str).astype(object)
    else:
        raise InputError(f"unknown level {level!r}: token or sentence")
    order = np.arange(len(labels))
    if limit is not None and len(order) > limit:  # sample first: the rare classes are counted in what is probed
        order = np.sort(np.random.default_rng(seed).choice(order, size=limit, replace=False))
    kept, dropped = _common_classes(labels[order])
    order = order[kept]
    return Examples(property, level, sentence_ids[order], positions[order], words[order], labels[order], dropped)


def _token_examples(store: Store, column: str):
    """One row per corpus sentence with a headword: its first non-special piece, the word and the label."""
    return store.query(
        "with heads as ("
        "  select t.sentence_id, min(t.position) as position from tokens t join sentences s on s.id = t.sentence_id"
        "  where s.start >= 0 and not t.special and t.char_start < s.\"end\" and t.char_end > s.start group by t.sentence_id)"
        f" select h.sentence_id, h.position, lower(s.word) as word, s.\"{column}\" as label"
        " from heads h join sentences s on s.id = h.sentence_id order by h.sentence_id"
    )


def _several_senses(words: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Examples of words seen with at least two senses, each of those senses at least MIN_CLASS times."""
    pairs, counts = np.unique(np.stack([words.astype(str), labels.astype(str)]), axis=1, return_counts=True)
    good = pairs[:, counts >= MIN_CLASS]
    types, per_type = np.unique(good[0], return_counts=True)
    rich = set(types[per_type >= 2])
    good_pairs = {(w, l) for w, l in zip(*good) if w in rich}
    return np.array([(w, l) in good_pairs for w, l in zip(words, labels)], dtype=bool)


def _common_classes(labels: np.ndarray) -> tuple[np.ndarray, dict]:
    classes, counts = np.unique(labels.astype(str), return_counts=True)
    rare = {str(c): int(n) for c, n in zip(classes, counts) if n < MIN_CLASS}
    return np.array([str(l) not in rare for l in labels], dtype=bool), rare


def available(store: Store) -> list[dict]:
    """What ``store`` can be probed for: each token property and each label column of its corpus (sentence level), with
    its examples and classes, or ``why`` it cannot be probed (fewer than two classes with ``MIN_CLASS`` examples).

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=200, seed=1), tempfile.mkdtemp(), layers="1")
        >>> {a["property"]: a["why"] is None for a in available(s) if a["level"] == "token"}
        {'pos': True, 'supersense': True, 'sense': False}
    """
    names = store.sentences().schema.names
    asked = [(p, "token") for p in PROPERTIES] + [(n, "sentence") for n in names if n not in ("id", "text", "start", "end", "offset", "word", "lemmas")]
    found = []
    for prop, level in asked:
        try:
            e = examples(store, prop, level=level)
            classes, why = len(set(e.labels)), None
            if classes < 2:
                why = (f"{classes} class{'' if classes == 1 else 'es'} with {MIN_CLASS} examples or more in this store"
                       + (": needs words with two senses, as in the wordnet-senses corpus" if prop == "sense" else ""))
            found.append({"property": prop, "level": level, "examples": len(e.labels), "classes": classes, "why": why})
        except InputError as exc:
            found.append({"property": prop, "level": level, "examples": 0, "classes": 0, "why": str(exc)})
    return found


def features(store: Store, found: Examples, layer: int) -> np.ndarray:
    """[examples, d] hidden states of ``layer`` for ``found``: the headword's token, or the sentence's mean over its tokens."""
    column = f"hidden_{store.require_hidden([layer])[0]}"
    if found.level == "token":
        return store.token_vectors(column, found.sentence_ids, found.positions)
    return store.sentence_vectors(column, found.sentence_ids, special=False)


def probe(store: Store, property: str, *, level: str = PROBE.level, kind: str = PROBE.kind, layers: Sequence[int] | None = None,
          folds: int = PROBE.folds, limit: int | None = None, seed: int = PROBE.seed, progress: Callable[[int, int], None] | None = None,
          on_layer: Callable[[int], None] | None = None) -> ProbeResult:
    """Probe ``property`` at every hidden layer of ``store`` (or ``layers``), with its control task.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=300, seed=2), tempfile.mkdtemp(), layers="0,6")
        >>> r = probe(s, "pos", folds=3)
        >>> [x.layer for x in r.layers], r.layers[1].accuracy > r.majority
        ([0, 6], True)
    """
    if kind not in KINDS:
        raise InputError(f"unknown probe kind {kind!r}: use one of {', '.join(KINDS)}")
    chosen = store.require_hidden(layers)
    found = examples(store, property, level=level, limit=limit, seed=seed)
    x = {layer: features(store, found, layer) for layer in chosen}
    result = probe_arrays(x, found.labels.astype(str), found.words.astype(str), kind=kind, folds=folds, seed=seed,
                          progress=progress, on_layer=on_layer)
    result.property, result.level, result.model, result.dropped = property, level, store.model, found.dropped
    return result
