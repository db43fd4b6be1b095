"""The shipped offline sentiment classifier: a logistic-regression head on the default encoder.

The head is trained on ``data/sentiment.tsv`` (436 hand-written English sentences, positive and
negative, varied domains and lengths, with negations and contrasts) and its weights ship as
``data/sentiment_head.safetensors``. Retrain and check with ``python -m shatterbox.classifiers.sentiment``.

Example:
    >>> clf = sentiment()
    >>> clf.labels
    ['negative', 'positive']
    >>> clf.predict(["The staff were rude and the room was filthy."]).argmax(axis=1).tolist()
    [0]
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from shatterbox.classifiers import Classifier, PooledHead, embed
from shatterbox.models import LoadedModel, load

LABELS = ["negative", "positive"]
HEAD_FILE = "sentiment_head.safetensors"
# Inverse regularisation strength of the logistic regression (chosen on the training split only).
C = 4.0


def dataset() -> tuple[list[str], np.ndarray]:
    """The shipped sentences and their labels (0 negative, 1 positive).

    Example:
        >>> texts, y = dataset()
        >>> len(texts) >= 400, sorted(set(y.tolist()))
        (True, [0, 1])
    """
    with resources.files(__package__).joinpath("data", "sentiment.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["text"] for r in rows], np.array([LABELS.index(r["label"]) for r in rows])


def split(n: int, y: np.ndarray, *, seed: int = 0, test_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, seeded train/held-out split of ``n`` rows: (train indices, test indices).

    Example:
        >>> tr, te = split(8, np.array([0, 1] * 4), test_fraction=0.25)
        >>> len(tr), len(te)
        (6, 2)
    """
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=y)


@dataclass
class Training:
    """A trained head with its accuracy on the training split and on the held-out split."""

    classifier: Classifier
    train_accuracy: float
    test_accuracy: float
    n_train: int
    n_test: int
    seconds: float


def train(*, seed: int = 0, test_fraction: float = 0.25) -> Training:
    """Train the sentiment head on the shipped sentences (deterministic for a given ``seed``).

    Example:
        >>> result = train()
        >>> result.test_accuracy > 0.85
        True
    """
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    encoder = load()
    texts, y = dataset()
    vectors = embed(encoder, texts).numpy().astype(np.float64)
    tr, te = split(len(texts), y, seed=seed, test_fraction=test_fraction)
    model = LogisticRegression(C=C, max_iter=5000, random_state=seed).fit(vectors[tr], y[tr])
    weight = np.zeros((2, vectors.shape[1]))
    weight[1] = model.coef_[0]
    bias = np.array([0.0, model.intercept_[0]])
    head = PooledHead(torch.tensor(weight, dtype=torch.float32), torch.tensor(bias, dtype=torch.float32))
    classifier = Classifier(model=encoder, labels=list(LABELS), head=head, name="sentiment (shipped head on default)")
    return Training(
        classifier=classifier,
        train_accuracy=float(model.score(vectors[tr], y[tr])),
        test_accuracy=float(model.score(vectors[te], y[te])),
        n_train=len(tr),
        n_test=len(te),
        seconds=time.perf_counter() - start,
    )


def _head_path() -> Path:
    return Path(str(resources.files(__package__).joinpath("data", HEAD_FILE)))


def save_head(classifier: Classifier, path: Path | None = None) -> Path:
    """Write ``classifier``'s head weights (safetensors) to ``path`` (default: the shipped file).

    Example:
        >>> import tempfile, os
        >>> path = save_head(sentiment(), Path(tempfile.mkdtemp()) / "head.safetensors")
        >>> sorted(load_file(str(path)))
        ['bias', 'weight']
    """
    path = path or _head_path()
    linear = classifier.head.linear
    save_file({"weight": linear.weight.detach().contiguous(), "bias": linear.bias.detach().contiguous()}, str(path))
    return path


def on(encoder: LoadedModel) -> Classifier:
    """The shipped sentiment head on an already loaded default encoder (no second copy of its weights).

    Example:
        >>> on(load()).labels
        ['negative', 'positive']
    """
    tensors = load_file(str(_head_path()))
    head = PooledHead(tensors["weight"], tensors["bias"])
    return Classifier(model=encoder, labels=list(LABELS), head=head, name="sentiment (shipped head on default)")


@lru_cache(maxsize=1)
def sentiment() -> Classifier:
    """The shipped sentiment classifier (labels ``negative``, ``positive``), loaded once per process.

    Example:
        >>> round(float(sentiment().predict(["I love playing chess with my friends."])[0, 1]), 2) > 0.9
        True
    """
    return on(load())


def main() -> None:  # pragma: no cover - maintenance entry point
    """Retrain the head, print its accuracy and write the shipped weights."""
    result = train()
    path = save_head(result.classifier)
    print(
        f"train accuracy {result.train_accuracy:.3f} ({result.n_train}), held-out accuracy "
        f"{result.test_accuracy:.3f} ({result.n_test}), {result.seconds:.1f} s -> {path}"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
