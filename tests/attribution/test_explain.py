"""explain(): every kind of target, every method, the result object, and every bad input."""

import json
import re

import numpy as np
import pytest
import transformers as tf

import shatterbox as sb
from shatterbox.attribution import ALL_METHODS, Attribution, Comparison, ValueGame, chapter_game, explain, make_game, plan
from shatterbox.classifiers import from_model, sentiment, zero_shot
from shatterbox.errors import BudgetTooSmall, EmptyText, InputError, NotAClassifier, TextTooLong, UnknownLabel

TEXT = "I love playing chess with my friends."


def _efficient(a: Attribution) -> bool:
    return bool(np.abs(a.values.sum(axis=0) - (a.prediction - a.base)).max() <= 1e-5)


@pytest.mark.slow
def test_default_target_is_the_shipped_sentiment_classifier():
    a = explain(text=TEXT)
    assert a.labels == ["negative", "positive"] and a.label_name == "positive"
    assert a.method == "exact" and a.evaluations == 2**8 and _efficient(a)
    assert a.top(1)[0][0] == "love"


@pytest.mark.parametrize("family", ["bert", "distilbert", "gpt2"])
def test_a_classifier_by_folder(classifier_dirs, family):
    a = explain(classifier_dirs[family], "the cat sat on the mat")
    assert a.words == ["the", "cat", "sat", "on", "the", "mat"] and _efficient(a)
    assert a.masking == ("delete" if family == "gpt2" else "mask")


def test_a_pipeline_gives_the_same_values_as_its_model(classifier_dirs):
    path = classifier_dirs["bert"]
    pipe = tf.pipeline("text-classification", model=tf.AutoModelForSequenceClassification.from_pretrained(path), tokenizer=tf.AutoTokenizer.from_pretrained(path))
    a = explain(pipe, "the cat sat on the mat", label="happy")
    b = explain(path, "the cat sat on the mat", label="happy")
    assert a.labels == ["sad", "neutral", "happy"] and a.label_name == "happy"
    assert np.allclose(a.values, b.values, atol=1e-6)


@pytest.mark.slow
def test_a_callable_on_strings(sentiment):
    a = explain(sentiment.predict, "The soup was cold and bland.", output_names=["neg", "pos"])
    b = explain(sentiment, "The soup was cold and bland.", masking="delete")
    assert a.labels == ["neg", "pos"] and a.masking == "delete"
    assert np.allclose(a.values, b.values, atol=1e-5)


def test_a_value_game_and_the_chapter():
    a = explain(chapter_game())
    assert a.units == "value" and round(a.values[1, 0], 3) == 0.875


@pytest.mark.slow
def test_zero_shot_labels_as_words_and_as_prototypes():
    clf = zero_shot(["sports", "politics", "cooking"])
    a = explain(clf, "The striker scored twice in the final")
    assert a.label_name == "sports" and _efficient(a)
    proto = zero_shot({"praise": ["This is excellent."], "complaint": ["This is awful."]})
    assert explain(proto, "The food was awful and cold").label_name == "complaint"
    with pytest.raises(InputError, match="at least two distinct"):
        zero_shot(["only"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["exact", "sampled", "kernel", "owen", "lime", "ig", "gradxinput", "rollout"])
def test_every_method_gives_scored_per_word_values(method):
    a = explain(text=TEXT, method=method, samples=200)
    assert a.method == method and a.values.shape == (8, 2)
    planned = dict(plan(make_game(sentiment.on(sb.load()), TEXT), method, samples=200))[method]
    assert a.faithfulness is not None and a.seconds > 0
    assert 3 <= a.evaluations <= planned + 2  # the plan, plus the text and the empty coalition the values are anchored to
    if method == "exact":
        assert a.evaluations == 2**8
    if method in ("exact", "sampled", "kernel", "owen", "ig"):
        assert np.abs(a.values.sum(axis=0) - (a.prediction - a.base)).max() <= (1e-5 if method != "ig" else 0.01)
    if method == "sampled":
        assert a.error.shape == a.values.shape and "permutation pairs" in a.notes[0]


@pytest.mark.slow
def test_long_texts_switch_to_sampling_and_stay_deterministic():
    text = "The whole experience was a pleasure, from booking to check out, and I would stay here again."
    a, b = explain(text=text), explain(text=text)
    assert a.method == "sampled" and np.array_equal(a.values, b.values) and a.evaluations <= 4000
    assert _efficient(a)


@pytest.mark.slow
def test_method_all_compares_on_one_text():
    c = explain(text=TEXT, method="all", samples=200)
    assert isinstance(c, Comparison) and [a.method for a in c.attributions] == ["exact", *ALL_METHODS[1:]]
    rows = c.rows()
    assert all(r["comprehensiveness"] is not None and len(r["top"]) == 3 for r in rows)
    assert json.loads(c.to_json())["rows"][0]["method"] == "exact"
    assert 'data-sb-plot="comparison"' in sb.to_html(c) and 'data-sb-plot="attribution"' not in sb.to_html(c)


@pytest.mark.slow
def test_json_and_html():
    a = explain(text="I <b>love</b> chess & tea", method="exact")
    data = json.loads(a.to_json())
    assert data["words"] == a.words and data["label_name"] == "positive" and data["label"] == a.label
    assert len(data["faithfulness"]["deletion"]) == len(a.words) + 1 and data["evaluations"] == a.evaluations
    page = sb.to_html(a)
    assert "<b>" not in page and "\\u003cb\\u003e" in page and "\\u0026" in page
    assert re.search(r"(src|href)\s*=|url\(|import\(|fetch\(", page) is None  # nothing fetched: the page works offline
    assert sb.fragment(a).startswith('<div class="sb-plots">')


@pytest.mark.slow
def test_label_by_name_number_and_unknown():
    assert explain(text=TEXT, label="negative").label_name == "negative"
    assert explain(text=TEXT, label=0).label_name == "negative"
    with pytest.raises(UnknownLabel, match="'negative', 'positive'"):
        explain(text=TEXT, label="neutral")


def test_bad_inputs_have_one_clear_message(default_model):
    with pytest.raises(NotAClassifier, match="no classification head.*zero_shot="):
        explain(default_model, TEXT)
    with pytest.raises(NotAClassifier):
        from_model("default")
    with pytest.raises(InputError, match="single word"):
        explain(text="chess")
    with pytest.raises(EmptyText):
        explain(text="   ")
    with pytest.raises(TextTooLong):
        explain(text="good " * 600)
    with pytest.raises(BudgetTooSmall, match="65,536 model evaluations.*method='sampled'"):
        explain(text=" ".join(["good"] * 16), method="exact")
    with pytest.raises(BudgetTooSmall, match="too small"):
        explain(text=TEXT, method="sampled", budget=5)
    with pytest.raises(InputError, match="unknown method"):
        explain(text=TEXT, method="magic")
    with pytest.raises(InputError, match="needs a model"):
        explain(ValueGame(["a", "b"], lambda m: m.sum(axis=1)), method="ig")
    with pytest.raises(InputError, match="cannot explain"):
        explain(42, TEXT)


@pytest.mark.slow
def test_precision_not_reached_is_reported():
    a = explain(text="The whole experience was a pleasure from booking to check out", method="sampled", precision=1e-4, budget=300)
    assert any("not reached" in n for n in a.notes) and a.evaluations <= 300


def test_pairs_is_the_quick_mode():
    text = "The whole experience was a pleasure from booking to check out"
    two = explain(text=text, pairs=2)
    assert two.method == "sampled" and two.evaluations == 2 + 2 * 2 * (len(two.words) - 1)
    assert two.error is not None and _efficient(two) and not any("not reached" in n for n in two.notes)
    one = explain(text=text, pairs=1)
    assert one.error is None and one.evaluations == 2 + 2 * (len(one.words) - 1)
    with pytest.raises(InputError, match="at least 1"):
        explain(text=text, pairs=0)
    with pytest.raises(InputError, match="does not apply to method='lime'"):
        explain(text=text, method="lime", pairs=2)


def test_top_word_labels_tell_repeats_and_punctuation_apart():
    words = ["the", "cat", "sat", ",", "the", "dog", ",", "ran"]
    weights = np.array([0.05, 0.1, 0.0, 0.3, 0.4, 0.2, 0.25, -0.1])
    a = explain(ValueGame(words, lambda m: m @ weights), method="exact")
    assert a.top_labels(4) == ["the#2", '","#1', '","#2', "dog"]  # the comparison table's "top words" read so
    comparison = explain(ValueGame(words, lambda m: m @ weights), method="all")
    assert comparison.rows()[0]["top"] == ["the#2", '","#1', '","#2']
