"""Zero-shot classification by a decoder: next-token probabilities of the label words after the text and a template."""

import numpy as np
import pytest
import torch

from shatterbox.attribution import explain
from shatterbox.classifiers import NextTokenHead, next_token, zero_shot
from shatterbox.errors import InputError


def test_label_logits_equal_a_plain_forward_of_text_and_template(tiny_models):
    """Oracle: the model's own logits at the last position of tokenizer(text) + tokenizer(template), one text at a
    time (no padding), restricted to the labels' first tokens; batched texts of different lengths and the
    embeddings path (used by gradients) give the same numbers."""
    model = tiny_models["gemma3-window"]
    clf = zero_shot(["the", "and"], model)
    assert isinstance(clf.head, NextTokenHead) and clf.pooling == "last"
    texts = ["the model reads", "every word and attends to the others"]
    got = clf.predict(texts)
    tok = model.tokenizer
    for text, row in zip(texts, got):
        ids = tok(text)["input_ids"] + clf.head.suffix_ids.tolist()
        with torch.no_grad():
            logits = model.model(input_ids=torch.tensor([ids])).logits[0, -1, clf.head.label_ids]
        np.testing.assert_allclose(row, torch.softmax(logits.double(), -1).numpy(), atol=1e-5)
    enc = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        by_ids = clf.logits({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        by_embeds = clf.logits({"inputs_embeds": model.model.get_input_embeddings()(enc["input_ids"]), "attention_mask": enc["attention_mask"]})
    np.testing.assert_allclose(by_ids.numpy(), by_embeds.numpy(), atol=1e-6)


def test_labels_must_start_with_different_tokens(tiny_models):
    with pytest.raises(InputError, match="must start with different tokens"):
        next_token(["the", "there"], tiny_models["gemma3-window"])


@pytest.mark.slow
def test_gemma_classifies_sentiment_and_topic_and_explains_by_deleting_words(gemma):
    sentiment = zero_shot(["positive", "negative"], gemma)
    texts = ["What a wonderful day, I loved every minute.", "The food was cold and the staff were rude.",
             "A dull, boring film.", "Brilliant acting and a moving story."]
    assert sentiment.predict(texts).argmax(axis=1).tolist() == [0, 1, 1, 0]
    topic = zero_shot(["sports", "politics", "cooking"], gemma)
    topics = ["The striker scored twice in the final.", "The senate passed the budget bill.", "Stir the sauce and add garlic."]
    assert topic.predict(topics).argmax(axis=1).tolist() == [0, 1, 2]
    a = explain(sentiment, texts[1], method="exact")
    assert a.masking == "delete" and a.top(1)[0][0] == "rude"
    np.testing.assert_allclose(a.values[:, a.label].sum(), a.prediction[a.label] - a.base[a.label], atol=1e-6)
