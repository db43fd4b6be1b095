"""The shipped sentiment classifier: data, reproducible training, held-out accuracy, shipped weights."""

import numpy as np
import torch

from shatterbox.classifiers import embed, mean_pool, resolve_label
from shatterbox.classifiers.sentiment import LABELS, dataset, sentiment, split, train
from shatterbox.models import load


def test_dataset_is_large_balanced_and_clean():
    texts, y = dataset()
    assert len(texts) >= 400 and len(set(texts)) == len(texts)
    assert abs(int(y.sum()) - len(y) / 2) < 0.05 * len(y)
    assert all(t.strip() == t and t for t in texts)
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) == 1 and max(lengths) >= 20


def test_split_is_stratified_and_seeded():
    texts, y = dataset()
    tr, te = split(len(texts), y)
    assert not set(tr) & set(te) and len(tr) + len(te) == len(texts)
    assert np.array_equal(split(len(texts), y)[1], te)
    assert abs(y[te].mean() - y.mean()) < 0.02


def test_training_reproduces_the_shipped_head_and_generalises():
    result = train(seed=0)
    shipped = sentiment().head.linear
    assert torch.allclose(result.classifier.head.linear.weight, shipped.weight, atol=1e-5)
    assert torch.allclose(result.classifier.head.linear.bias, shipped.bias, atol=1e-5)
    assert result.test_accuracy >= 0.88 and result.n_test >= 100
    assert result.seconds < 60


def test_shipped_classifier_on_held_out_sentences():
    texts, y = dataset()
    _, te = split(len(texts), y)
    predicted = sentiment().predict([texts[i] for i in te]).argmax(axis=1)
    assert (predicted == y[te]).mean() >= 0.88
    assert sentiment().labels == LABELS


def test_pooling_matches_sentence_transformers_recipe():
    m = load()
    enc = m.tokenizer(["a cat", "a much longer sentence here"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = m.model(**enc).last_hidden_state
    manual = [hidden[i, : int(enc["attention_mask"][i].sum())].mean(0) for i in range(2)]
    assert torch.allclose(mean_pool(hidden, enc["attention_mask"]), torch.stack(manual), atol=1e-6)
    v = embed(m, ["a cat", "a much longer sentence here"])
    assert torch.allclose(v, torch.nn.functional.normalize(torch.stack(manual), dim=-1), atol=1e-5)


def test_predict_accepts_empty_texts_as_the_all_masked_input():
    p = sentiment().predict(["", "great"])
    assert p.shape == (2, 2) and np.allclose(p.sum(axis=1), 1.0)


def test_resolve_label():
    assert resolve_label("POSITIVE", LABELS, np.array([0.2, 0.8])) == 1
    assert resolve_label("1", LABELS, np.array([0.9, 0.1])) == 1
