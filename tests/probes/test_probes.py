"""Probes against planted ground truth, scikit-learn, and the control task's definition."""

import numpy as np
import pytest

from shatterbox.errors import InputError
from shatterbox.probes import control_labels, examples, make_probe, probe, probe_arrays


def planted(n_types: int = 200, per_type: int = 4, seed: int = 0):
    """Labels mostly fixed per word type (like a part of speech). Layer 3 carries the label in one
    dimension; layer 4 carries only the word's identity; layers 1, 2 and 5 are noise."""
    rng = np.random.default_rng(seed)
    type_label = rng.integers(0, 3, n_types)
    words = np.repeat(np.arange(n_types), per_type)
    labels = type_label[words].copy()
    flip = rng.random(len(words)) < 0.1  # some types occur with another label, as "run" does
    labels[flip] = rng.integers(0, 3, flip.sum())
    n, d = len(words), 16
    x = {layer: rng.normal(size=(n, d)) for layer in (1, 2, 5)}
    x[3] = np.c_[labels + 0.1 * rng.normal(size=n), rng.normal(size=(n, d - 1))]
    identity = rng.normal(size=(n_types, 256))  # wide enough for a linear probe to tell every type apart
    x[4] = identity[words] + 0.05 * rng.normal(size=(n, 256))
    return x, labels.astype(str), words.astype(str)


def test_a_planted_property_is_found_at_its_layer_only():
    x, labels, words = planted()
    result = probe_arrays(x, labels, words, folds=5)
    by = {s.layer: s for s in result.layers}
    assert by[3].accuracy > 0.95 and by[3].selectivity > 0.45 and by[3].selectivity - by[3].selectivity_ci > 0.4
    for layer in (1, 2, 5):
        assert abs(by[layer].selectivity) < 0.1 and by[layer].accuracy < result.majority + 0.1, layer
    # word identity: the probe reads the task through memorised types, and the control just as well
    assert by[4].accuracy > result.majority + 0.2 and by[4].control > result.majority + 0.2 and by[4].selectivity < by[3].selectivity - 0.2
    assert result.best().layer == 3


@pytest.mark.slow
def test_the_mlp_probe_finds_it_too():
    x, labels, words = planted(seed=1)
    result = probe_arrays({3: x[3], 5: x[5]}, labels, words, kind="mlp", folds=3)
    assert result.layers[0].accuracy > 0.9 and result.layers[0].selectivity > 0.4 and abs(result.layers[1].selectivity) < 0.1


def test_accuracy_equals_scikit_learns_cross_validation():
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, labels, words = planted(n_types=80)
    result = probe_arrays({3: x[3]}, labels, words, folds=4, seed=7)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=7)
    expected = cross_val_score(make_probe("linear", seed=7), x[3], labels, cv=folds)
    np.testing.assert_allclose(result.layers[0].folds, expected)
    assert result.layers[0].accuracy_ci == pytest.approx(2.7764451 * expected.std(ddof=1) / 2, rel=1e-5)  # t(0.975, 3)


def test_control_labels_keep_the_distribution_and_differ_from_the_task():
    rng = np.random.default_rng(3)
    words = rng.integers(0, 5000, 40_000).astype(str)
    share = np.array([0.5, 0.3, 0.15, 0.05])
    labels = np.array(list("abcd"))[rng.choice(4, size=len(words), p=share)]
    control = control_labels(words, labels, seed=0)
    got = np.array([(control == c).mean() for c in "abcd"])
    assert np.abs(got - share).sum() / 2 < 0.03  # total variation distance from the task's distribution
    agreement = (control == labels).mean()
    assert abs(agreement - (share**2).sum()) < 0.02 and agreement < 0.5  # not the task run again
    same_type = {}
    for w, c in zip(words, control):
        assert same_type.setdefault(w, c) == c  # one label per word type
    assert not np.array_equal(control_labels(words, labels, seed=1), control)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest

    return harvest(load_corpus("wordnet", limit=400, seed=3), tmp_path_factory.mktemp("probe"), layers="0,3")


@pytest.mark.slow
def test_store_examples_are_the_headwords(small_store):
    found = examples(small_store, "pos")
    sentences = {r["id"]: r for r in small_store.sentences().to_pylist()}
    assert len(found.labels) > 50
    for sid, pos, word, label in list(zip(found.sentence_ids, found.positions, found.words, found.labels))[:30]:
        row = sentences[int(sid)]
        token = small_store.query(f"select token, char_start, char_end from tokens where sentence_id = {int(sid)} and position = {int(pos)}").to_pylist()[0]
        assert row["pos"] == label and row["word"].lower() == word
        assert token["char_start"] == row["start"] and row["text"][row["start"]:row["end"]].lower().startswith(token["token"].lstrip("#"))


def test_probe_on_a_store_reads_every_layer(small_store):
    result = probe(small_store, "pos", folds=3)
    assert [s.layer for s in result.layers] == [0, 3] and result.model == "default"
    assert result.layers[1].accuracy > result.majority + 0.1  # a contextual layer knows the headword's part of speech
    sentence = probe(small_store, "kind", level="sentence", folds=3)  # gloss or example sentence, from mean-pooled states
    assert sentence.n_classes == 2 and sentence.layers[1].accuracy > sentence.majority


@pytest.mark.parametrize("kwargs,message", [
    (dict(property="colour"), "unknown token property 'colour'"),
    (dict(property="pos", layers=[9]), "no hidden states of layer 9"),
    (dict(property="pos", kind="forest"), "unknown probe kind 'forest'"),
    (dict(property="nothing", level="sentence"), "no label column 'nothing'"),
    (dict(property="pos", level="paragraph"), "unknown level 'paragraph'"),
    (dict(property="pos", folds=1), "folds must be between 2 and 20"),
])
def test_bad_input_is_one_clear_error(small_store, kwargs, message):
    with pytest.raises(InputError, match=message):
        probe(small_store, **kwargs)


def test_a_property_with_one_class_is_refused():
    x = {1: np.zeros((20, 3))}
    with pytest.raises(InputError, match="1 class in these examples"):
        probe_arrays(x, np.array(["a"] * 20), np.arange(20).astype(str))


def test_a_sample_leaves_out_the_classes_it_makes_rare(small_store):
    full = examples(small_store, "supersense")
    sample = examples(small_store, "supersense", limit=120, seed=2)
    classes, counts = np.unique(sample.labels, return_counts=True)
    assert len(sample.labels) <= 120 and counts.min() >= 5 and sample.dropped  # rare in the sample: listed, not probed
    assert set(classes) <= set(full.labels)
    probe(small_store, "supersense", limit=120, seed=2, folds=5)  # no fold without a class
