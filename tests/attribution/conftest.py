"""Tiny randomly initialised sequence classifiers of several families, saved to disk like real checkpoints."""

import pytest
import transformers as tf

import shatterbox as sb
from tests.conftest import SMALL, gpt2_tokenizer, save_models

LABELS = {0: "sad", 1: "neutral", 2: "happy"}


def classifier_specs():
    bert_tok = lambda: sb.load().tokenizer  # noqa: E731
    return {
        "bert": (lambda: tf.BertForSequenceClassification(tf.BertConfig(**SMALL, num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})), bert_tok),
        "distilbert": (lambda: tf.DistilBertForSequenceClassification(tf.DistilBertConfig(n_layers=2, n_heads=4, dim=32, hidden_dim=48, num_labels=2)), bert_tok),
        "gpt2": (lambda: tf.GPT2ForSequenceClassification(tf.GPT2Config(n_layer=2, n_head=4, n_embd=32, n_inner=48, vocab_size=400, n_positions=64, num_labels=2, pad_token_id=0)), gpt2_tokenizer),
    }


@pytest.fixture(scope="session")
def classifier_dirs(tmp_path_factory):
    return save_models(classifier_specs(), tmp_path_factory.mktemp("classifiers"))


@pytest.fixture(scope="session")
def sentiment():
    from shatterbox.classifiers.sentiment import sentiment

    return sentiment()
