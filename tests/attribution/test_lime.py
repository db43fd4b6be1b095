"""Our LIME equals the lime package's weighted ridge on the same samples, and is deterministic."""

import numpy as np
import pytest

from shatterbox.attribution import explain
from shatterbox.attribution.parts import lime_fit, lime_masks, lime_weights

TEXT = "Our friendly guide spoke five languages and was wonderfully helpful"


def _lime_package_samples(predict, text: str, samples: int):
    from lime import lime_text
    explainer = lime_text.LimeTextExplainer(random_state=0)
    indexed = lime_text.IndexedString(text, bow=True, split_expression=explainer.split_expression)
    data, probs, distances = explainer._LimeTextExplainer__data_labels_distances(indexed, predict, samples)
    return explainer, indexed, data, probs, distances


@pytest.mark.slow
def test_same_kernel_as_lime(sentiment):
    explainer, _, data, _, distances = _lime_package_samples(sentiment.predict, TEXT, 300)
    assert np.allclose(lime_weights(data.astype(bool)), explainer.base.kernel_fn(distances), atol=1e-12)


@pytest.mark.slow
def test_same_coefficients_and_ranks_as_lime_on_the_same_samples(sentiment):
    explainer, indexed, data, probs, distances = _lime_package_samples(sentiment.predict, TEXT, 1000)
    n = indexed.num_words()
    _, theirs, _, _ = explainer.base.explain_instance_with_data(data, probs, distances, 1, n, feature_selection="auto")
    theirs = dict(theirs)
    ours = lime_fit(data.astype(bool), probs).coef[:, 1]
    assert np.allclose(ours, [theirs[i] for i in range(n)], atol=1e-8)
    assert list(np.argsort(-ours)) == sorted(range(n), key=lambda i: -theirs[i])


def test_sampling_follows_lime():
    masks = lime_masks(10, 4000, seed=3)
    removed = 10 - masks[1:].sum(axis=1)
    assert masks[0].all() and removed.min() == 1 and removed.max() == 10
    counts = np.bincount(removed, minlength=11)[1:]
    assert counts.min() > 300  # k uniform over 1..n
    assert np.allclose(masks[1:].mean(axis=0), masks[1:].mean(), atol=0.03)  # no word favoured


@pytest.mark.slow
def test_deterministic_for_a_seed(sentiment):
    a = explain(sentiment, TEXT, method="lime", samples=300, seed=7)
    b = explain(sentiment, TEXT, method="lime", samples=300, seed=7)
    assert np.array_equal(a.values, b.values)
    assert a.evaluations <= 302
