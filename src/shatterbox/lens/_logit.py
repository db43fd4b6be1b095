"""The logit lens (and the tuned lens on one text): every layer's residual stream read through the model's own final norm
and unembedding; and the classifier lens for encoders: a pooled classifier head read at every layer."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from shatterbox.errors import DrawnAndShownByRender, InputError
from shatterbox.lens._readout import LayerReading, kl_to_final, read_layer, readout
from shatterbox.models import LoadedModel
from shatterbox.options import LENS
from shatterbox.patching import Site, collecting
from shatterbox.trace import encode

LOGIT_BYTES = 128 << 20  # logits of one group of layers read through the unembedding together (peak memory: a few times this)

if TYPE_CHECKING:
    from shatterbox.classifiers import Classifier
    from shatterbox.lens._tuned import TunedLens


@dataclass
class LensResult(DrawnAndShownByRender):
    """What every layer predicts at every position of one text, next to the model's own final prediction.

    ``layers`` are hidden states (0 = embeddings .. n = the last block's output, which the lens reads exactly as the model
    does); arrays are [layers, positions]: ``rank`` of the final prediction in the layer's distribution (0 = it is the
    top token), its ``prob``, ``kl`` = KL(final || layer) in nats; ``top`` [layers][positions] lists of (token, prob).

    Examples:
        >>> r = LensResult("logit", "m", "a b", ["a", "b"], [0, 1], ["b", "c"], [[[("x", 0.5)]] * 2] * 2,
        ...                np.array([[3, 1], [0, 0]]), np.array([[0.1, 0.2], [0.9, 0.8]]), np.array([[2.0, 1.0], [0.0, 0.0]]))
        >>> r.agreement.tolist(), r.mean_kl.tolist(), r.first_layer()
        ([0.0, 1.0], [1.5, 0.0], [1, 1])
    """

    lens: str
    model: str
    text: str
    tokens: list[str]
    layers: list[int]
    predicted: list[str]
    top: list[list[list[tuple[str, float]]]]
    rank: np.ndarray
    prob: np.ndarray
    kl: np.ndarray
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> np.ndarray:
        """Per layer: the share of positions whose top token is the final prediction."""
        return (self.rank == 0).mean(axis=1)

    @property
    def mean_kl(self) -> np.ndarray:
        """Per layer: KL(final || layer) averaged over positions (nats)."""
        return self.kl.mean(axis=1)

    def first_layer(self) -> list[int | None]:
        """Per position: the first layer from which the final prediction stays the top token (``None``: only the last)."""
        stays = np.flip(np.cumprod(np.flip(self.rank == 0, 0), 0), 0).astype(bool)  # [layers, positions]: top from here on
        return [self.layers[int(col.argmax())] if col.any() else None for col in stays.T]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict: no NaN)."""
        return {"lens": self.lens, "model": self.model, "text": self.text, "tokens": self.tokens, "layers": self.layers,
                "predicted": self.predicted, "rank": self.rank.astype(int).tolist(), "prob": _floats(self.prob), "kl": _floats(self.kl),
                "top": [[[[t, round(float(p), 6)] for t, p in cell] for cell in row] for row in self.top],
                "agreement": _floats(self.agreement), "mean_kl": _floats(self.mean_kl), "first_layer": self.first_layer(),
                "seconds": round(self.seconds, 4), "notes": list(self.notes)}

    def to_json(self, **kwargs: Any) -> str:
        """The result as strict JSON."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_csv(self) -> str:
        """One row per layer and position: token, final prediction, the layer's top token, rank, probability, KL."""
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["lens", "layer", "position", "token", "final prediction", "layer top token", "layer top probability", "rank", "probability", "kl"])
        for i, layer in enumerate(self.layers):
            for p, token in enumerate(self.tokens):
                best = self.top[i][p][0]
                w.writerow([self.lens, layer, p, token, self.predicted[p], best[0], f"{best[1]:.6g}", int(self.rank[i, p]),
                            f"{self.prob[i, p]:.6g}", f"{self.kl[i, p]:.6g}"])
        return out.getvalue()


def _floats(a: np.ndarray) -> list:
    return np.round(np.nan_to_num(np.asarray(a, dtype=float), nan=0.0, posinf=0.0, neginf=0.0), 6).tolist()


def logit_lens(model: LoadedModel, text: str, *, k: int = LENS.k, tuned: "TunedLens | None" = None) -> LensResult:
    """Read ``text``'s residual stream after every block through the decoder's final norm and unembedding (soft cap
    included): the ``k`` top tokens per layer and position, and the rank, probability and KL of the final prediction.
    With ``tuned`` (a fitted :class:`TunedLens` of the same model), each layer is translated first (the tuned lens).

    Examples:
        >>> from shatterbox.models import load
        >>> r = logit_lens(load("gemma-3-270m"), "The capital of France is")  # doctest: +SKIP
        >>> r.predicted[-1], int(r.rank[-1, -1])  # doctest: +SKIP
        ('▁Paris', 0)
    """
    if not 1 <= k <= 100:
        raise InputError(f"k={k} is out of range: give 1 to 100 top tokens", parameter="k")
    started = time.perf_counter()
    head = readout(model)
    if tuned is not None:
        tuned.check_model(model)
    enc = encode(model, [text])
    n = int(enc.lengths[0])
    inputs = {key: value[:, :n] for key, value in enc.model_inputs(model.forward_keys).items()}
    layers = list(range(model.n_layers + 1))
    with torch.inference_mode():
        with collecting(model, [Site("hidden", h) for h in layers]) as found:
            final = model.model(**inputs).logits[0].float()
        final_logp = torch.log_softmax(final, dim=-1)
        states = [found[Site("hidden", h)][0] if tuned is None else tuned.translate(found[Site("hidden", h)][0], h) for h in layers]
        readings = _read_layers(head, states, final_logp, k)
    tok = model.tokenizer
    ids = inputs["input_ids"][0].tolist()
    names = {int(i): s for i, s in zip(*_unique_tokens(tok, readings, final_logp))}
    top = [[[(names[int(i)], float(p)) for i, p in zip(r.top_ids[pos], r.top_probs[pos])] for pos in range(n)] for r in readings]
    result = LensResult(
        lens="tuned" if tuned is not None else "logit", model=model.name, text=text, tokens=tok.convert_ids_to_tokens(ids), layers=layers,
        predicted=[names[int(i)] for i in final_logp.argmax(dim=-1)], top=top,
        rank=torch.stack([r.rank for r in readings]).numpy(), prob=torch.stack([r.prob for r in readings]).double().numpy(),
        kl=torch.stack([r.kl for r in readings]).double().numpy(), seconds=time.perf_counter() - started,
    )
    if tuned is None and result.kl[-1].max() > 1e-4:
        result.notes.append(f"the lens at the last layer differs from the model's own output (KL {result.kl[-1].max():.2g}): "
                            "this model's output head is not norm + unembedding; read the table with care")
    return result


def _read_layers(head, states: list[torch.Tensor], final_logp: torch.Tensor, k: int) -> list:
    """Every layer's reading, several layers per unembedding: the unembedding's weights (670 MB for Gemma) are read once
    per group of layers instead of once per layer, with the group's logits bounded by :data:`LOGIT_BYTES`."""
    n, vocabulary = final_logp.shape
    per = max(1, LOGIT_BYTES // max(n * vocabulary * 4, 1))
    readings = []
    for start in range(0, len(states), per):
        group = states[start:start + per]
        logits = head.logits(torch.cat(group))
        both = read_layer(logits, final_logp.repeat(len(group), 1), k)
        readings += [LayerReading(*(field[i * n:(i + 1) * n] for field in (both.top_ids, both.top_probs, both.rank, both.prob, both.kl)))
                     for i in range(len(group))]
    return readings


def _unique_tokens(tok, readings, final_logp) -> tuple[list[int], list[str]]:
    """Every token id shown, and its text (one tokenizer call)."""
    ids = sorted({int(i) for r in readings for i in r.top_ids.flatten()} | {int(i) for i in final_logp.argmax(dim=-1)})
    return ids, tok.convert_ids_to_tokens(ids)


def lens_of(model: "LoadedModel | Classifier", text: str, *, lens: str = LENS.lens, k: int = LENS.k,
            tuned: "TunedLens | str | None" = None) -> "LensResult | ClassifierLensResult":
    """One text read at every layer by the ``lens`` the front ends offer: ``logit`` and ``tuned`` (``tuned``: a fitted
    :class:`TunedLens` or its file) on a decoder, ``classifier`` on a classifier with a pooled head (the default encoder
    stands for the shipped sentiment classifier).

    Examples:
        >>> from shatterbox.models import load
        >>> lens_of(load(), "A wonderful film.", lens="classifier").predicted[-1]
        'positive'
        >>> lens_of(load(), "A wonderful film.", lens="tuned")
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: the tuned lens needs a fitted lens: tuned=FILE (from shatterbox lens fit STORE)
    """
    from shatterbox.classifiers import Classifier

    if lens not in ("logit", "tuned", "classifier"):
        raise InputError(f"unknown lens {lens!r}: choose logit, tuned or classifier", parameter="lens")
    if lens == "classifier":
        return classifier_lens(model if isinstance(model, Classifier) else _classifier_of(model), text)
    if lens == "tuned" and tuned is None:
        raise InputError("the tuned lens needs a fitted lens: tuned=FILE (from shatterbox lens fit STORE)", parameter="tuned")
    if isinstance(tuned, (str, Path)):
        from shatterbox.lens._tuned import TunedLens

        tuned = TunedLens.load(tuned)
    return logit_lens(model, text, k=k, tuned=tuned if lens == "tuned" else None)


def _classifier_of(model: LoadedModel) -> "Classifier":
    """The default encoder's shipped sentiment classifier, or the model's own classification head."""
    from shatterbox.classifiers import from_model
    from shatterbox.models import DEFAULT_MODEL

    if model.name == DEFAULT_MODEL:
        from shatterbox.classifiers.sentiment import on

        return on(model)
    return from_model(model)


@dataclass
class ClassifierLensResult(DrawnAndShownByRender):
    """A pooled classifier head read at every layer of one text: ``probs`` [layers, labels], ``kl`` [layers] to the final
    layer, the label each layer predicts and the final label's rank and probability.

    Examples:
        >>> r = ClassifierLensResult("m", "clf", "t", ["neg", "pos"], [0, 1], np.array([[0.6, 0.4], [0.1, 0.9]]), np.array([0.4, 0.0]))
        >>> r.predicted, r.rank.tolist()
        (['neg', 'pos'], [1, 0])
    """

    model: str
    classifier: str
    text: str
    labels: list[str]
    layers: list[int]
    probs: np.ndarray
    kl: np.ndarray
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def predicted(self) -> list[str]:
        """The label each layer predicts."""
        return [self.labels[int(i)] for i in self.probs.argmax(axis=1)]

    @property
    def rank(self) -> np.ndarray:
        """Per layer: the final label's rank (0 = predicted)."""
        final = int(self.probs[-1].argmax())
        return (self.probs > self.probs[:, [final]]).sum(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"lens": "classifier", "model": self.model, "classifier": self.classifier, "text": self.text, "labels": self.labels,
                "layers": self.layers, "probs": _floats(self.probs), "kl": _floats(self.kl), "predicted": self.predicted,
                "rank": self.rank.tolist(), "seconds": round(self.seconds, 4), "notes": list(self.notes)}

    def to_json(self, **kwargs: Any) -> str:
        """Strict JSON."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_csv(self) -> str:
        """One row per layer: predicted label, each label's probability, KL to the final layer."""
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["layer", "predicted", *[f"p({x})" for x in self.labels], "kl"])
        for i, layer in enumerate(self.layers):
            w.writerow([layer, self.predicted[i], *[f"{p:.6g}" for p in self.probs[i]], f"{self.kl[i]:.6g}"])
        return out.getvalue()


def classifier_lens(classifier: "Classifier", text: str) -> ClassifierLensResult:
    """The classifier's pooled head applied to every layer's mean-pooled hidden state (the logit lens of an encoder
    classifier): at which layer does the sentence's label become readable by the head the model was trained with?

    Examples:
        >>> from shatterbox.classifiers.sentiment import sentiment
        >>> r = classifier_lens(sentiment(), "The film was not bad at all.")
        >>> r.predicted[-1], len(r.layers)
        ('positive', 7)
    """
    from shatterbox.classifiers import PooledHead, mean_pool

    if not isinstance(classifier.head, PooledHead):
        raise InputError(f"the classifier lens reads a pooled head, and {classifier.name!r} has none: use the shipped sentiment "
                         "classifier (classifier='sentiment'), or the logit lens for a decoder", parameter="classifier")
    started = time.perf_counter()
    model = classifier.model
    enc = encode(model, [text])
    n = int(enc.lengths[0])
    inputs = {key: value[:, :n] for key, value in enc.model_inputs(model.forward_keys).items()}
    layers = list(range(model.n_layers + 1))
    with torch.inference_mode(), collecting(model, [Site("hidden", h) for h in layers]) as found:
        final = classifier.logits(inputs)[0].float()
        logits = torch.stack([classifier.head(mean_pool(found[Site("hidden", h)], inputs["attention_mask"]))[0].float() for h in layers])
    logp = torch.log_softmax(logits, dim=-1)
    result = ClassifierLensResult(model.name, classifier.name, text, list(classifier.labels), layers, logp.exp().double().numpy(),
                                  kl_to_final(logp[-1:].expand_as(logp), logp).double().numpy(), time.perf_counter() - started)
    if float((logits[-1] - final).abs().max()) > 1e-4:
        result.notes.append("the head at the last layer differs from the classifier's own output: read the table with care")
    return result
