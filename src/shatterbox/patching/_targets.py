"""What a causal experiment measures: a classifier's label or a language model's next tokens, as one number per row.

A target turns texts into model inputs (the one tokenization helper, :func:`shatterbox.trace.encode`) and a batch of
forward passes into :class:`Scores`: the metric per row plus what the model predicted there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from shatterbox.classifiers import Classifier, PooledHead, resolve_label
from shatterbox.errors import InputError
from shatterbox.models import LoadedModel, has_language_model_head, language_model_parts
from shatterbox.trace import encode

CLASSIFIER_MEASURES = ("logit_diff", "logit", "prob", "kl")
LM_MEASURES = ("logprob", "logit_diff", "kl")


@dataclass
class Scores:
    """Per row: ``metric``, the top label or token ``top`` and its probability ``top_prob``."""

    metric: np.ndarray
    top: np.ndarray
    top_prob: np.ndarray

    @staticmethod
    def join(parts: list["Scores"]) -> "Scores":
        """One :class:`Scores` of several batches, in order."""
        return Scores(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("metric", "top", "top_prob")))


@dataclass
class Prepared:
    """One text ready for the model: inputs [1, tokens], its tokens, each token's word (``None`` for special
    tokens) and ``scored`` (the number of leading tokens an intervention may touch: the prompt, not an appended answer)."""

    inputs: dict[str, torch.Tensor]
    tokens: list[str]
    words: list[int | None]
    scored: int


class Target:
    """Base of :class:`ClassifierTarget` and :class:`LanguageModelTarget`."""

    model: LoadedModel
    measure: str
    reference: torch.Tensor | None = None
    expandable: bool = False  # a one-row input widened inside the model (see patching.widening) gives one output per row

    def prepare(self, text: str) -> Prepared:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def score(self, inputs: dict[str, torch.Tensor]) -> Scores:
        """The metric of every row of ``inputs``, with each row's top prediction and its probability."""
        metric, top, top_prob = self.forward(inputs)
        return Scores(_np(metric), _np(top), _np(top_prob))

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def top_name(self, top: int) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, model: LoadedModel, text: str, answer_ids: list[int] | None = None) -> Prepared:
        enc = encode(model, [text])
        inputs = enc.model_inputs(model.forward_keys)
        words = enc.batch.word_ids(0)
        scored = int(inputs["input_ids"].shape[1])
        tokens = model.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist())
        if answer_ids and len(answer_ids) > 1:  # the answer's tokens but its last are read as inputs
            extra = torch.tensor([answer_ids[:-1]])
            inputs = {**inputs, "input_ids": torch.cat([inputs["input_ids"], extra], dim=1),
                      "attention_mask": torch.cat([inputs["attention_mask"], torch.ones_like(extra)], dim=1)}
            inputs.pop("token_type_ids", None)
        return Prepared(inputs, tokens, list(words), scored)


class ClassifierTarget(Target):
    """A classifier's ``label`` (default: the clean text's prediction) measured as ``logit_diff`` (its logit minus the
    largest other label's), ``logit``, ``prob`` or ``kl`` (divergence of the label distribution from the reference run's).

    Examples:
        >>> from shatterbox.classifiers.sentiment import sentiment
        >>> t = ClassifierTarget(sentiment(), label="positive")
        >>> s = t.score(t.prepare("A wonderful film.").inputs)
        >>> float(s.metric[0]) > 0, t.top_name(int(s.top[0]))
        (True, 'positive')
    """

    def __init__(self, classifier: Classifier, *, label: str | int | None = None, measure: str = "logit_diff") -> None:
        if measure not in CLASSIFIER_MEASURES:
            raise InputError(f"unknown measure {measure!r} for a classifier: choose one of {', '.join(CLASSIFIER_MEASURES)}", parameter="measure")
        self.classifier, self.model, self.measure = classifier, classifier.model, measure
        self.label = None if label is None else resolve_label(label, classifier.labels)
        self.reference = None
        # a pooled head (mean over the mask, broadcast) or a first-token head reads every row; heads that index rows by
        # the input's batch size (a decoder's last token, a suffix) do not
        self.expandable = isinstance(classifier.head, PooledHead) or (classifier.head is None and classifier.pooling == "first")

    def prepare(self, text: str) -> Prepared:
        """The text's inputs, tokens and words."""
        return self._prepare(self.model, text)

    def fix_label(self, logits: torch.Tensor) -> None:
        """Take the label from a clean run's logits when none was given."""
        if self.label is None:
            self.label = int(logits[0].argmax())

    def forward(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The metric of every row of ``inputs`` (a tensor, differentiable), its top label and that label's probability."""
        logits = self.classifier.logits(inputs).float()
        self.fix_label(logits)
        logp = torch.log_softmax(logits, dim=-1)
        label = self.label
        if self.measure == "logit":
            metric = logits[:, label]
        elif self.measure == "prob":
            metric = logp[:, label].exp()
        elif self.measure == "kl":
            metric = _kl(self.reference, logp)
        else:
            others = logits.clone()
            others[:, label] = float("-inf")
            metric = logits[:, label] - others.max(dim=1).values
        probs = logp.exp()
        return metric, probs.argmax(dim=1), probs.max(dim=1).values

    def log_probs(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log-probabilities [rows, labels] (the reference of ``kl``)."""
        return torch.log_softmax(self.classifier.logits(inputs).float(), dim=-1)

    def describe(self) -> str:
        """What is measured, in words."""
        name = "the predicted label" if self.label is None else repr(self.classifier.labels[self.label])
        return {"logit_diff": f"logit of {name} minus the largest other", "logit": f"logit of {name}", "prob": f"probability of {name}",
                "kl": "KL divergence of the label distribution from the clean run's"}[self.measure]

    def top_name(self, top: int) -> str:
        """A label's name."""
        return self.classifier.labels[top]


class LanguageModelTarget(Target):
    """A language model's continuation: ``logprob`` of ``answer`` (all its tokens), ``logit_diff`` between the first
    tokens of ``answer`` and ``wrong``, or ``kl`` (next-token distribution against the reference run's).

    Examples:
        >>> LanguageModelTarget.__name__
        'LanguageModelTarget'
    """

    def __init__(self, model: LoadedModel, *, answer: str | None = None, wrong: str | None = None, measure: str | None = None) -> None:
        self.model = model
        self.body, self.head, self.cap = language_model_parts(model)
        measure = measure or ("logit_diff" if wrong else "logprob" if answer else "kl")
        if measure not in LM_MEASURES:
            raise InputError(f"unknown measure {measure!r} for a language model: choose one of {', '.join(LM_MEASURES)}", parameter="measure")
        if measure in ("logprob", "logit_diff") and not answer:
            raise InputError(f"measure {measure!r} needs the answer whose tokens are scored (e.g. answer=' Paris')", parameter="answer")
        if measure == "logit_diff" and not wrong:
            raise InputError("measure 'logit_diff' needs a wrong answer to compare with (e.g. wrong=' Rome')", parameter="wrong")
        self.measure = measure
        tok = model.tokenizer
        self.answer_ids = tok(answer, add_special_tokens=False)["input_ids"] if answer else []
        self.wrong_ids = tok(wrong, add_special_tokens=False)["input_ids"] if wrong else []
        if answer is not None and not self.answer_ids:
            raise InputError("the answer has no tokens: give the words the model should continue with", parameter="answer")
        self.answer, self.wrong = answer, wrong
        self.reference = None
        self.expandable = True

    def prepare(self, text: str) -> Prepared:
        """The prompt's inputs (with the answer's tokens but its last appended, for a many-token ``logprob``)."""
        return self._prepare(self.model, text, self.answer_ids if self.measure == "logprob" else None)

    def _scored(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[1, k] positions whose next token is scored: the prompt's last token, then (``logprob``) every answer token but
        the last; broadcast over the rows (which may outnumber the inputs' when a pass is widened)."""
        width = inputs["input_ids"].shape[1]
        k = len(self.answer_ids) if self.measure == "logprob" else 1
        return torch.arange(width - k, width)[None, :]

    def _logits(self, inputs: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
        hidden = self.body(**{k: v for k, v in inputs.items() if k != "token_type_ids"}).last_hidden_state
        rows = torch.arange(hidden.shape[0])[:, None]
        logits = self.head(hidden[rows, positions]).float()  # [rows, k, vocab]
        return self.cap * torch.tanh(logits / self.cap) if self.cap else logits

    def forward(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The metric of every row of ``inputs`` (all rows of the same length), the top next token and its probability."""
        logp = torch.log_softmax(self._logits(inputs, self._scored(inputs)), dim=-1)  # [rows, k, vocab]
        first = logp[:, 0]
        if self.measure == "logprob":
            ids = torch.tensor(self.answer_ids)
            metric = logp.gather(2, ids[None, :, None].expand(logp.shape[0], -1, 1))[..., 0].sum(dim=1)
        elif self.measure == "logit_diff":
            metric = first[:, self.answer_ids[0]] - first[:, self.wrong_ids[0]]
        else:
            metric = _kl(self.reference, first)
        return metric, first.argmax(dim=1), first.max(dim=1).values.exp()

    def log_probs(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Next-token log-probabilities [rows, vocab] after the prompt (the reference of ``kl``)."""
        return torch.log_softmax(self._logits(inputs, self._scored(inputs)[:, :1]), dim=-1)[:, 0]

    def describe(self) -> str:
        """What is measured, in words."""
        return {"logprob": f"log-probability of {self.answer!r}", "logit_diff": f"logit of {self.answer!r} minus {self.wrong!r}",
                "kl": "KL divergence of the next-token distribution from the clean run's"}[self.measure]

    def top_name(self, top: int) -> str:
        """A token's text."""
        return self.model.tokenizer.decode([int(top)])


def _kl(reference: torch.Tensor | None, logp: torch.Tensor) -> torch.Tensor:
    """KL(reference || p) per row; ``reference`` [1, K] log-probabilities."""
    if reference is None:
        raise InputError("the kl measure needs the clean run's distribution first", parameter="measure")
    ref = reference.to(logp.dtype)
    return (ref.exp() * (ref - logp)).sum(dim=-1)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy() if t.is_floating_point() else t.detach().numpy()


def word_positions(model: LoadedModel, text: str, word: str) -> list[int]:
    """The token positions of every occurrence of ``word`` in ``text`` (case-insensitive), for an intervention on a word.

    Examples:
        >>> from shatterbox.models import load
        >>> word_positions(load(), "The film was not bad, not at all.", "not")
        [4, 7]
    """
    enc = encode(model, [text])
    ids, offsets = enc.batch.word_ids(0), enc.batch["offset_mapping"][0].tolist()
    spans: dict[int, list[int]] = {}
    for i, w in enumerate(ids):
        if w is not None:
            spans.setdefault(w, [offsets[i][0], offsets[i][1]])[1] = offsets[i][1]
    found = {w for w, (a, b) in spans.items() if text[a:b].strip().lower() == word.strip().lower()}
    if not found:
        words = ", ".join(dict.fromkeys(text[a:b] for a, b in spans.values()))
        raise InputError(f"{word!r} is not a word of the text: choose one of {words}", parameter="word")
    return [i for i, w in enumerate(ids) if w in found]


def make_target(target: Any = None, *, label: str | int | None = None, answer: str | None = None, wrong: str | None = None,
                measure: str | None = None) -> Target:
    """A :class:`Target` from what a user gives: ``None`` or ``"sentiment"`` (the shipped classifier), a
    :class:`~shatterbox.classifiers.Classifier`, a model name, folder or :class:`~shatterbox.models.LoadedModel` (a
    language model when it has a head and ``answer`` or a measure is given, else its classification head).

    Examples:
        >>> make_target(None, label="negative").describe()
        "logit of 'negative' minus the largest other"
    """
    from shatterbox.models import load

    if isinstance(target, Target):
        return target
    if target is None or (isinstance(target, str) and target.strip().lower() == "sentiment"):
        from shatterbox.classifiers.sentiment import sentiment

        target = sentiment()
    if isinstance(target, str):
        target = load(target)
    if isinstance(target, LoadedModel):
        if has_language_model_head(target):
            if label is not None:
                raise InputError("a language model is measured by answer=, wrong= or measure='kl', not by a label", parameter="label")
            return LanguageModelTarget(target, answer=answer, wrong=wrong, measure=measure)
        from shatterbox.classifiers import from_model

        target = from_model(target)
    if isinstance(target, Classifier):
        if answer is not None or wrong is not None:
            raise InputError("a classifier is measured by label=NAME, not by an answer: leave the answer out, or give a decoder model",
                             parameter="answer")
        return ClassifierTarget(target, label=label, measure=measure or "logit_diff")
    raise InputError(f"cannot measure a {type(target).__name__}: give a classifier, a model name or folder, or nothing "
                     "(the shipped sentiment classifier)", parameter="target")
