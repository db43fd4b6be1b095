"""Maps against scikit-learn and umap-learn, faithfulness by hand, alignment, predictions against the classifier."""

import numpy as np
import pytest

from shatterbox.errors import InputError
from shatterbox.projector import align_maps, knn_recall, point_vectors, predictions, project, project_layers, sentence_points, token_points


def spread(n=120, d=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(4, 0.5, d)


def test_pca_coordinates_equal_scikit_learns():
    from sklearn.decomposition import PCA
    from sklearn.manifold import trustworthiness

    x = spread()
    m = project(x, "pca")
    np.testing.assert_allclose(m.coords, PCA(n_components=2).fit_transform(x.astype(np.float32)), atol=1e-4)
    assert m.trustworthiness == pytest.approx(trustworthiness(x.astype(np.float32), m.coords, n_neighbors=10))


@pytest.mark.slow
def test_umap_is_seeded_and_deterministic():
    x = spread(n=150)
    a, b, c = project(x, "umap", seed=3), project(x, "umap", seed=3), project(x, "umap", seed=4)
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.allclose(a.coords, c.coords)
    assert a.trustworthiness > project(x, "pca").trustworthiness - 0.1  # a fair map of the same points


def test_knn_recall_by_hand():
    x = np.array([[0.0], [1.0], [3.0], [7.0], [15.0]])
    assert knn_recall(x, x * 2 + 1, k=1) == 1.0
    y = np.array([[0.0], [10.0], [3.0], [7.0], [15.0]])  # point 1 moved next to point 3 and 4
    # nearest in x: 0->1, 1->0, 2->1, 3->2, 4->3; in y: 0->2, 1->3, 2->0, 3->1, 4->1 -> no hit in five
    assert knn_recall(x, y, k=1) == 0.0
    random = np.random.default_rng(0).normal(size=(200, 2))
    assert knn_recall(spread(200), random, k=10) < 0.15  # a map that ignores the data keeps few neighbours


def test_alignment_undoes_rotation_reflection_and_scale_and_keeps_faithfulness():
    x = spread()
    m = project(x, "pca")
    turned = (m.coords @ np.array([[0.0, 1.0], [1.0, 0.0]])) * 2.5 - 7  # a reflection, scaled and shifted
    np.testing.assert_allclose(align_maps(turned, m.coords), m.coords, atol=1e-8)
    maps = project_layers({1: x, 2: x @ np.diag(np.r_[-1, np.ones(11)])})  # the same cloud, one axis flipped
    np.testing.assert_allclose(maps[1].coords, maps[0].coords, atol=1e-6)
    assert maps[1].trustworthiness == pytest.approx(maps[0].trustworthiness)


def test_too_few_points_and_unknown_methods_are_clear_errors():
    with pytest.raises(InputError, match="at least 5 points"):
        project(np.zeros((3, 4)), "pca")
    with pytest.raises(InputError, match="unknown projection 'tsne'"):
        project(spread(), "tsne")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, default_model):
    from shatterbox.corpus import Corpus
    from shatterbox.store import harvest

    texts = ["What a wonderful, happy day.", "I hated every minute of it.", "The soup was cold and bland.", "A delightful little film.",
             "Terrible service, never again.", "We loved the garden.", "It broke after one week.", "Brilliant and warm.", "<b>bold</b> move"]
    return harvest(Corpus.from_texts(texts), tmp_path_factory.mktemp("proj") / "s", model=default_model, layers="0,6")


def test_predictions_from_the_store_equal_the_classifier(small_store, monkeypatch):
    from shatterbox.classifiers import zero_shot

    clf = zero_shot({"good": ["I loved it."], "bad": ["I hated it."]})
    points = sentence_points(small_store)
    probs = clf.predict(points.texts)
    monkeypatch.setattr(type(clf), "predict", lambda *a, **k: pytest.fail("the store answers: the model must not run"))
    labels, confidence = predictions(small_store, points, clf)
    assert labels == [clf.labels[k] for k in probs.argmax(1)] and set(labels) == {"good", "bad"}
    np.testing.assert_allclose(confidence, probs.max(1), atol=1e-4)


def test_the_fine_tuned_sentiment_classifier_runs_once_per_distinct_sentence(small_store, monkeypatch):
    from shatterbox.classifiers.sentiment import sentiment

    clf = sentiment()
    points = token_points(small_store, limit=None)
    expected = clf.predict([small_store.sentences().column("text").to_pylist()[i] for i in points.sentence_ids])
    seen = []
    original = type(clf).predict
    monkeypatch.setattr(type(clf), "predict", lambda self, texts, **k: seen.append(len(texts)) or original(self, texts, **k))
    labels, confidence = predictions(small_store, points, clf)
    assert seen == [9] and len(labels) == len(points.sentence_ids) > 9
    assert labels == [clf.labels[k] for k in expected.argmax(1)]
    np.testing.assert_allclose(confidence, expected.max(1), atol=1e-4)


def test_points_and_vectors_come_from_the_store(small_store):
    points = sentence_points(small_store)
    vectors = point_vectors(small_store, points, [0, 6])
    assert vectors[6].shape == (9, 384) and points.texts[0] == "What a wonderful, happy day."
    first = point_vectors(small_store, points, [6], pool="first")[6]
    cls = small_store.activations("hidden_6", "position = 0")  # the [CLS] rows, in sentence order
    np.testing.assert_allclose(first, cls, atol=1e-6)
    manual = small_store.activations("hidden_6", "sentence_id = 0").mean(0)  # every token, [CLS] and [SEP] included
    np.testing.assert_allclose(vectors[6][0], manual, atol=1e-5)
    tokens = token_points(small_store, limit=20, seed=1)
    assert len(tokens.texts) == 20 and all(t[s:e].lower() == w.lower() or w.startswith("#") for t, (s, e), w in
                                           zip(tokens.texts, tokens.spans, tokens.labels["word"]) if s >= 0)
    assert point_vectors(small_store, tokens, [6])[6].shape == (20, 384)
    with pytest.raises(InputError, match="no hidden states of layer 3"):
        point_vectors(small_store, points, [3])


@pytest.mark.slow
def test_projector_page_in_chromium(tmp_path, small_store, browser):
    from tests.conftest import watch
    from shatterbox.render.projector import projector_page

    points = sentence_points(small_store)
    vectors = point_vectors(small_store, points, [0, 6])
    maps = project_layers(vectors)
    page = tmp_path / "map.html"
    page.write_text(projector_page(points, maps), encoding="utf-8")
    pg = browser.new_page(viewport={"width": 1000, "height": 900})
    errors, _ = watch(pg)
    pg.goto(page.as_uri())
    inked = pg.locator("#sbp-canvas").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let k = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250) k++; return k; }")
    assert inked >= 9 * 4  # nine points of 3 x 3 pixels, at least partly apart
    assert "layer 6" in pg.locator("#sbp-quality").text_content() and f"{maps[1].trustworthiness:.3f}" in pg.locator("#sbp-quality").text_content()
    screen = pg.evaluate("document.getElementById('sbp-root').sbProjector.screen()")
    box = pg.locator("#sbp-canvas").bounding_box()
    hostile = points.texts.index("<b>bold</b> move")
    pg.mouse.move(box["x"] + screen[2 * hostile], box["y"] + screen[2 * hostile + 1])
    assert pg.locator("#sbp-tip").text_content().startswith("<b>bold</b> move") and pg.locator("#sbp-tip b").count() == 0
    pg.mouse.click(box["x"] + screen[2 * hostile], box["y"] + screen[2 * hostile + 1])
    assert pg.locator("#sbp-picked").text_content().startswith("<b>bold</b> move")
    pg.locator("#sbp-layer").fill("0")
    assert "layer 0" in pg.locator("#sbp-quality").text_content()
    assert pg.evaluate("document.getElementById('sbp-root').sbProjector.screen()") != screen
    with pg.expect_download() as download:
        pg.click("#sbp-png")
    assert download.value.suggested_filename == "shatterbox-projector-layer-0.png"
    pg.close()
    assert errors == []


@pytest.mark.parametrize("n,k", [(60, 5), (300, 10), (513, 7)])
def test_trustworthiness_equals_scikit_learns_in_bounded_memory(n, k):
    from sklearn.manifold import trustworthiness as theirs

    from shatterbox.projector import trustworthiness

    x = spread(n=n, seed=n)
    y = x[:, :2] + np.random.default_rng(1).normal(size=(n, 2))
    assert trustworthiness(x, y, k, block=64) == pytest.approx(theirs(x, y, n_neighbors=k), abs=1e-12)
