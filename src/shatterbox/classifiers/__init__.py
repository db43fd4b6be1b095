"""Text classifiers shatterbox can explain: Hugging Face classifiers, pooled heads, zero-shot prototypes.

A :class:`Classifier` is a loaded model plus how its output becomes class scores. Every
attribution method calls it on token ids (or input embeddings) it built itself, so a masked
text is never re-tokenised.

Examples:
    >>> from shatterbox.classifiers import zero_shot
    >>> clf = zero_shot(["sports", "cooking"])
    >>> clf.labels
    ['sports', 'cooking']
    >>> clf.predict(["He scored a goal in the final minute."]).argmax(axis=1).tolist()
    [0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from shatterbox._batching import chunks
from shatterbox.trace import encode
from shatterbox.errors import InputError, NotAClassifier, UnknownLabel
from shatterbox.models import LoadedModel, has_language_model_head, load

__all__ = ["Classifier", "NextTokenHead", "PooledHead", "embed", "from_model", "mean_pool", "next_token", "resolve_label", "zero_shot"]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` [batch, token, dim] over the tokens the mask keeps (sentence-transformers pooling).

    Examples:
        >>> mean_pool(torch.ones(1, 3, 2), torch.tensor([[1, 1, 0]])).tolist()
        [[1.0, 1.0]]
    """
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


class PooledHead(nn.Module):
    """A linear classifier over the L2-normalised mean-pooled last hidden state.

    Examples:
        >>> head = PooledHead(torch.eye(2), torch.zeros(2))
        >>> head(torch.tensor([[3.0, 4.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """Class logits [batch, labels] of pooled sentence vectors [batch, dim]."""
        return self.linear(nn.functional.normalize(pooled, dim=-1))


DECODER_TEMPLATE = "\nIn one word, this text is"  # what a decoder reads after the text before naming a label


class NextTokenHead(nn.Module):
    """Zero-shot classification by a decoder: after the text and a fixed ``suffix`` (never masked), the logits of
    each label's first token, read at the last position. Works on token ids and on input embeddings (gradients).

    Examples:
        >>> head = NextTokenHead(torch.tensor([5, 7]), torch.tensor([3]))
        >>> head.label_ids.tolist(), head.suffix_ids.tolist()
        ([5, 7], [3])
    """

    def __init__(self, label_ids: torch.Tensor, suffix_ids: torch.Tensor) -> None:
        super().__init__()
        self.label_ids, self.suffix_ids = label_ids, suffix_ids

    def logits(self, loaded: LoadedModel, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Label logits [batch, labels]: the suffix is written right after each text's last token."""
        from shatterbox.models import language_model_parts

        body, head, cap = language_model_parts(loaded)
        embed = loaded.model.get_input_embeddings()
        mask = inputs["attention_mask"]
        x = inputs["inputs_embeds"] if "inputs_embeds" in inputs else embed(inputs["input_ids"])
        b, w = mask.shape
        s = len(self.suffix_ids)
        lengths = mask.sum(dim=1).long()
        out = torch.cat([x, x.new_zeros(b, s, x.shape[-1])], dim=1)
        where = lengths[:, None] + torch.arange(s)[None, :]  # [b, s]
        out = out.scatter(1, where[:, :, None].expand(-1, -1, x.shape[-1]), embed(self.suffix_ids)[None].expand(b, -1, -1).to(x.dtype))
        keep = (torch.arange(w + s)[None, :] < (lengths + s)[:, None]).to(mask.dtype)
        hidden = body(inputs_embeds=out, attention_mask=keep).last_hidden_state
        last = hidden[torch.arange(b), lengths + s - 1]
        logits = last @ head.weight[self.label_ids].T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[self.label_ids]
        return cap * torch.tanh(logits / cap) if cap else logits


@dataclass
class Classifier:
    """A model whose output is a probability per label.

    ``head`` is ``None`` for a Hugging Face ``...ForSequenceClassification`` model (its own head
    gives the logits); otherwise the model is an encoder and ``head`` maps its mean-pooled,
    normalised last hidden state to logits.
    """

    model: LoadedModel
    labels: list[str]
    head: PooledHead | NextTokenHead | None = None
    name: str = ""
    multi_label: bool = False
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.name = self.name or self.model.name

    @property
    def tokenizer(self):
        """The tokenizer of the underlying model."""
        return self.model.tokenizer

    def logits(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits [batch, labels] for model inputs (``input_ids`` or ``inputs_embeds``, ``attention_mask``, ...)."""
        if isinstance(self.head, NextTokenHead):
            return self.head.logits(self.model, inputs)
        out = self.model.model(**inputs, return_dict=True)
        if self.head is None:
            return out.logits
        return self.head(mean_pool(out.last_hidden_state, inputs["attention_mask"]))

    def probabilities(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Probabilities [batch, labels]: softmax of the logits (sigmoid for a multi-label model)."""
        logits = self.logits(inputs).float()
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)

    @property
    def pooling(self) -> str:
        """Which positions the prediction reads: ``"mean"`` (pooled head), ``"first"`` or ``"last"`` token."""
        if isinstance(self.head, NextTokenHead):
            return "last"
        if self.head is not None:
            return "mean"
        return "last" if getattr(self.model.model.config, "is_decoder", False) or _is_causal_lm(self.model) else "first"

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Probabilities [len(texts), labels], ``batch_size`` texts per forward pass (empty texts allowed).

        Examples:
            >>> from shatterbox.classifiers.sentiment import sentiment
            >>> sentiment().predict(["A wonderful film.", "Not a wonderful film."]).round(1).tolist()
            [[0.0, 1.0], [0.8, 0.2]]
        """
        with torch.inference_mode():
            parts = [self.probabilities(inputs) for inputs in _batches(self.model, texts, batch_size, allow_empty=True)]
        return torch.cat(parts).numpy().astype(np.float64)

    __call__ = predict


def resolve_label(label: str | int | None, labels: Sequence[str], probabilities: np.ndarray | None = None) -> int:
    """Index of ``label`` among ``labels`` (a name, case-insensitive, or a number from 0); ``None``: the top one
    of ``probabilities`` (needed only then).

    Examples:
        >>> resolve_label("Positive", ["negative", "positive"], np.array([0.9, 0.1]))
        1
        >>> resolve_label(None, ["negative", "positive"], np.array([0.9, 0.1]))
        0
    """
    if label is None:
        if probabilities is None:
            raise ValueError("resolve_label(None, ...) needs the probabilities to pick the top label")
        return int(np.argmax(probabilities))
    if isinstance(label, (int, np.integer)) or (isinstance(label, str) and label.strip().isdigit()):
        if 0 <= int(label) < len(labels):
            return int(label)
    else:
        folded = [str(x).lower() for x in labels]
        if label.strip().lower() in folded:
            return folded.index(label.strip().lower())
    raise UnknownLabel(label, list(labels))


def _batches(model: LoadedModel, texts: Sequence[str], batch_size: int, *, allow_empty: bool = False):
    """Model inputs for ``texts``, ``batch_size`` at a time (the one tokenization helper, chunked)."""
    texts = list(texts)
    for rows in chunks(len(texts), batch_size):
        yield encode(model, texts[rows], allow_empty=allow_empty).model_inputs(model.forward_keys)


def next_token(labels: Sequence[str], model: LoadedModel | str, *, template: str = DECODER_TEMPLATE) -> Classifier:
    """Zero-shot classification by a decoder: the probability of each label word as the next token after the text
    and ``template`` (renormalised over the labels). ``zero_shot`` picks this for any model with a language-model head.

    Examples:
        >>> clf = next_token(["positive", "negative"], "gemma-3-270m")  # doctest: +SKIP
        >>> clf.predict(["What a wonderful day!"]).argmax(axis=1).tolist()  # doctest: +SKIP
        [0]
    """
    loaded = load(model) if isinstance(model, str) else model
    tok = loaded.tokenizer
    firsts = [tok(" " + str(x).strip(), add_special_tokens=False)["input_ids"][:1] for x in labels]
    if any(not f for f in firsts) or len({f[0] for f in firsts}) != len(firsts):
        raise InputError("zero-shot labels on a decoder must start with different tokens: choose other label words")
    suffix = tok(template, add_special_tokens=False)["input_ids"]
    names = [str(x).strip() for x in labels]
    return Classifier(
        model=loaded,
        labels=names,
        head=NextTokenHead(torch.tensor([f[0] for f in firsts]), torch.tensor(suffix, dtype=torch.long)),
        name=f"zero-shot({', '.join(names)}) on {loaded.name}",
        notes=[f"zero-shot on a decoder: next-token probability of each label word after the text and {template!r}, "
               "renormalised over the labels"],
    )


def _is_causal_lm(model: LoadedModel) -> bool:
    return model.model.config.model_type in {"gpt2", "gpt_neo", "gptj", "llama", "mistral", "qwen2", "opt", "bloom", "gpt_neox", "phi", "gemma"}


def from_model(model: LoadedModel | str) -> Classifier:
    """The classifier of a Hugging Face ``...ForSequenceClassification`` model (name, folder or loaded).

    Examples:
        >>> from_model("default")
        Traceback (most recent call last):
        ...
        shatterbox.errors.NotAClassifier: model 'default' (BertModel) has no classification head: ...
    """
    loaded = load(model) if isinstance(model, str) else model
    kind = type(loaded.model).__name__
    if not kind.endswith("ForSequenceClassification"):
        raise NotAClassifier(
            f"model {loaded.name!r} ({kind}) has no classification head: give a sequence-classification model "
            "(model=DIR of a ...ForSequenceClassification checkpoint), no model to use the shipped "
            "sentiment classifier, or classify by similarity with zero_shot=LABEL,LABEL"
        )
    config = loaded.model.config
    labels = [str(config.id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels)]
    return Classifier(model=loaded, labels=labels, multi_label=config.problem_type == "multi_label_classification")


def embed(model: LoadedModel, texts: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
    """L2-normalised mean-pooled sentence vectors [len(texts), dim] (how all-MiniLM-L6-v2 embeds sentences).

    Examples:
        >>> v = embed(load(), ["a cat", "a dog"])
        >>> v.shape, round(float(v[0].norm()), 4)
        (torch.Size([2, 384]), 1.0)
    """
    parts = []
    with torch.inference_mode():
        for inputs in _batches(model, texts, batch_size):
            hidden = model.model(**inputs, return_dict=True).last_hidden_state
            parts.append(nn.functional.normalize(mean_pool(hidden, inputs["attention_mask"]), dim=-1))
    return torch.cat(parts)


def zero_shot(
    labels: Sequence[str] | Mapping[str, Sequence[str]],
    model: LoadedModel | str = "default",
    *,
    scale: float = 20.0,
) -> Classifier:
    """A classifier by similarity: the text's sentence vector against one prototype vector per label.

    ``labels`` is a list of label words (each is its own prototype) or a mapping from label to
    prototype sentences (their mean vector is the prototype). Logits are ``scale`` x cosine similarity.

    Examples:
        >>> clf = zero_shot({"positive": ["I loved it."], "negative": ["I hated it."]})
        >>> clf.predict(["What a great day"]).argmax(axis=1).tolist()
        [0]
    """
    loaded = load(model) if isinstance(model, str) else model
    prototypes = dict(labels) if isinstance(labels, Mapping) else {str(x): [str(x)] for x in labels}
    names = [str(x).strip() for x in prototypes]
    if len(names) < 2 or any(not x for x in names) or len(set(names)) != len(names):
        raise InputError("zero-shot classification needs at least two distinct, non-empty labels, e.g. zero_shot=sports,politics", parameter="zero_shot")
    if has_language_model_head(loaded):
        return next_token(names, loaded)
    vectors = torch.stack([embed(loaded, list(prototypes[x]) or [x]).mean(dim=0) for x in prototypes])
    weight = scale * nn.functional.normalize(vectors, dim=-1)
    return Classifier(
        model=loaded,
        labels=names,
        head=PooledHead(weight, torch.zeros(len(names))),
        name=f"zero-shot({', '.join(names)}) on {loaded.name}",
        notes=[f"zero-shot: {scale:g} x cosine similarity to each label's prototype vector"],
    )
