"""The attention computation of one query token, shown step by step from the captured vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shatterbox.trace import Trace
from shatterbox.attention._table import result_header
from shatterbox.errors import InputError


def softmax(scores: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis; ``-inf`` entries get probability 0.

    Examples:
        >>> softmax(np.array([0.0, 0.0, -np.inf])).tolist()
        [0.5, 0.5, 0.0]
    """
    shifted = scores - np.max(scores, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class AttentionSteps:
    """q . k_j, the scaling, the mask, the softmax, and the model's own attention for one query token.

    Attributes:
        dots: q . k_j for every key j (float64).
        scaled: dots * scaling (scaling = 1/sqrt(d_k) for standard attention), then soft-capped
            (``softcap * tanh(x / softcap)``) where the model caps its scores (Gemma 2).
        blocked: keys the mask forbids (causal models, padding).
        probs: softmax of the scaled scores with blocked keys at -inf (our computation).
        model_probs: the attention the model itself produced.
    """

    model: str
    layer: int
    head: int
    query_index: int
    query_label: str
    key_labels: list[str]
    query: np.ndarray
    keys: np.ndarray
    dots: np.ndarray
    scaling: float
    scaled: np.ndarray
    blocked: np.ndarray
    probs: np.ndarray
    model_probs: np.ndarray
    softcap: float | None = None

    @property
    def d_k(self) -> int:
        """Size of the query and key vectors of one head."""
        return int(self.query.shape[-1])

    @property
    def max_abs_diff(self) -> float:
        """Largest |our softmax - model's attention| over the keys."""
        return float(np.max(np.abs(self.probs - self.model_probs)))

    def to_dict(self) -> dict:
        """JSON-ready dict of every step."""
        return {
            **result_header(self),
            "query_token": self.query_label,
            "query_index": self.query_index,
            "d_k": self.d_k,
            "scaling": self.scaling,
            "softcap": self.softcap,
            "keys": [
                {
                    "token": label,
                    "q_dot_k": float(d),
                    "scaled": None if b else float(s),
                    "softmax": float(p),
                    "model": float(m),
                }
                for label, d, s, b, p, m in zip(
                    self.key_labels, self.dots, self.scaled, self.blocked, self.probs, self.model_probs
                )
            ],
            "max_abs_diff": self.max_abs_diff,
        }



def attention_steps(trace: Trace, layer: int, head: int, query: int | str) -> AttentionSteps:
    """Recompute ``layer``/``head``'s attention for one query token from its captured q and k.

    ``query`` is a token index, or a word (its first piece is used).

    Examples:
        >>> from shatterbox import capture, load
        >>> s = attention_steps(capture(load(), "Transformers possess features"), 1, 1, "possess")
        >>> s.max_abs_diff < 1e-5
        True
    """
    li, hi = trace.head_index(layer, head)
    if isinstance(query, str) and not query.strip().isdigit():
        index = int(np.flatnonzero(trace.word_index == trace.find_word(query))[0])
    else:
        index = int(query)
        if not 0 <= index < trace.n_tokens:
            raise InputError(f"token index {index} is out of range: this text has tokens 0-{trace.n_tokens - 1}")
    q = trace.queries[li, hi, index].astype(np.float64)
    k = trace.keys[li, hi].astype(np.float64)
    dots = k @ q
    scaling = float(trace.scaling[li])
    scaled = dots * scaling
    if trace.softcap:
        scaled = trace.softcap * np.tanh(scaled / trace.softcap)
    blocked = np.isneginf(trace.scores[li, hi, index])
    probs = softmax(np.where(blocked, -np.inf, scaled))
    return AttentionSteps(
        model=trace.model,
        layer=int(layer),
        head=int(head),
        query_index=index,
        query_label=trace.labels[index],
        key_labels=list(trace.labels),
        query=q,
        keys=k,
        dots=dots,
        scaling=scaling,
        scaled=scaled,
        blocked=blocked,
        probs=probs,
        model_probs=trace.attentions[li, hi, index].astype(np.float64),
        softcap=trace.softcap,
    )
