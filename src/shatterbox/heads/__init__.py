"""Head finder: per-layer, per-head statistics over one text or a corpus, and the heads worth a look.

Every statistic is an average over attending tokens (rows) and over texts, in [0, 1]:

==============  ===============================================================================
``entropy``     row entropy / log(number of keys it may see): 0 = one key, 1 = uniform (broad)
``special``     attention mass on special tokens ([CLS], [SEP], <s>, ...): no-op heads
``punct``       attention mass on punctuation tokens
``prev``        mass on the previous token (positional head)  } averaged over the same rows: those
``self``        mass on the token itself                        } with a previous and a next token,
``next``        mass on the next token (positional head)      } so prev + self + next <= 1
``agreement``   share of rows whose strongest key has the head's usual relation
                (special / punctuation / previous / self / next / other), across all texts
==============  ===============================================================================

Examples:
    >>> from shatterbox import load, capture_batch
    >>> stats = head_stats(capture_batch(load(), ["The cat sat.", "Dogs bark loudly!"]))
    >>> stats.values["entropy"].shape
    (6, 12)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from shatterbox.attention import NUMBERING
from shatterbox.trace.stats import is_punct, row_stats
from shatterbox.trace import Trace
from shatterbox.errors import InputError

__all__ = ["DELIMITER", "KIND_EXPLANATIONS", "HeadRow", "HeadStats", "RELATIONS", "STATS", "head_stats"]

DELIMITER = 0.6  # a head with this much of its mass on special tokens and punctuation is a delimiter (no-op) head
STATS = ("entropy", "special", "punct", "prev", "self", "next", "agreement")
RELATIONS = ("special", "punct", "prev", "self", "next", "other")
KIND_EXPLANATIONS = {
    "entropy": "0 = focused on one token, 1 = spread evenly (softmax blurs the picture)",
    "special": "mass on special tokens: a head parking its attention there is close to a no-op",
    "punct": "mass on punctuation",
    "prev": "mass on the previous token: a positional head",
    "self": "mass on the token itself",
    "next": "mass on the next token: a positional head",
    "agreement": "how often the strongest key has the head's usual relation, across texts",
}


def _trace_stats(trace: Trace) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Row-averaged statistics [L, H] of one trace, and each row's relation code [L, H, T]."""
    a = trace.attentions
    n = trace.n_tokens
    punct = np.array([is_punct(lab) and not s for lab, s in zip(trace.labels, trace.special)])
    rows = row_stats(a, np.isfinite(trace.scores), trace.special, punct)
    # prev, self and next are shares of the same rows: those with both a previous and a next token
    # (the first has no previous one, the last no next one); so the three never sum above 1
    inner = slice(1, n - 1) if n >= 3 else slice(0, n)
    means = {k: np.nan_to_num(v[..., inner]).mean(-1) if k in ("prev", "self", "next") else v.mean(-1) for k, v in rows.items()}
    idx = np.arange(n)
    top = a.argmax(-1)
    relation = np.full(top.shape, RELATIONS.index("other"))
    relation[punct[top]] = RELATIONS.index("punct")
    relation[trace.special[top]] = RELATIONS.index("special")
    # a positional relation wins over the kind of token it lands on
    relation[top == idx + 1] = RELATIONS.index("next")
    relation[top == idx] = RELATIONS.index("self")
    relation[top == idx - 1] = RELATIONS.index("prev")
    return means, relation


@dataclass
class HeadRow:
    """One head in the ranking: its numbers (layer/head from 1), kind, score and a one-line reason."""

    layer: int
    head: int
    kind: str
    score: float
    reason: str


@dataclass
class HeadStats:
    """Statistics of every head over ``n_texts`` texts; ``values[name]`` is [layer, head] (0-based arrays)."""

    model: str
    n_texts: int
    values: dict[str, np.ndarray]

    @property
    def shape(self) -> tuple[int, int]:
        """(layers, heads)."""
        return self.values["entropy"].shape  # type: ignore[return-value]

    def kind(self, layer: int, head: int) -> str:
        """What a head mostly does: delimiter, previous-token, next-token, self, broad, or content (layer/head from 1)."""
        v = {k: float(arr[layer - 1, head - 1]) for k, arr in self.values.items()}
        if v["special"] + v["punct"] >= DELIMITER:
            return "delimiter (no-op)"
        for name, label in (("prev", "previous-token"), ("next", "next-token"), ("self", "self")):
            if v[name] >= 0.5:
                return label
        if v["entropy"] >= 0.9:
            return "broad (near-uniform)"
        return "content"

    @property
    def score(self) -> np.ndarray:
        """The ranking score [layer, head]: (1 - entropy) x (1 - special - punct) x agreement."""
        v = self.values
        return (1 - v["entropy"]) * np.clip(1 - v["special"] - v["punct"], 0, 1) * v["agreement"]

    def ranking(self, top: int | None = None) -> list[HeadRow]:
        """Heads most worth inspecting first: focused, consistent, and not parked on delimiters.

        score = (1 - entropy) x (1 - special - punct) x agreement; delimiter (no-op) heads come after
        every other head whatever their score.
        """
        v, score = self.values, self.score
        delimiter = (v["special"] + v["punct"]) >= DELIMITER
        order = np.lexsort((-score.ravel(), delimiter.ravel()))
        rows = []
        for flat in order[:top]:
            li, hi = np.unravel_index(flat, score.shape)
            kind = self.kind(li + 1, hi + 1)
            reason = (
                f"entropy {v['entropy'][li, hi]:.2f}, delimiters {v['special'][li, hi] + v['punct'][li, hi]:.2f}, "
                f"prev/self/next {v['prev'][li, hi]:.2f}/{v['self'][li, hi]:.2f}/{v['next'][li, hi]:.2f}, "
                f"agreement {v['agreement'][li, hi]:.2f}" + (" (over the rows of one text: give more texts for agreement across texts)" if self.n_texts == 1 else "")
            )
            rows.append(HeadRow(int(li) + 1, int(hi) + 1, kind, float(score[li, hi]), reason))
        return rows

    def to_table(self, top: int | None = None):
        """The ``top`` ranked heads (all by default) as a pyarrow table: rank, layer, head (from 1), kind,
        score and every statistic — what ``shatterbox heads --format csv`` prints.

        Examples:
            >>> from shatterbox import capture, load
            >>> t = head_stats([capture(load(), "I love chess.")]).to_table(3)
            >>> t.column_names[:5], t.num_rows
            (['rank', 'layer', 'head', 'kind', 'score'], 3)
        """
        import pyarrow as pa

        rows = self.ranking(top)
        columns = {"rank": list(range(1, len(rows) + 1)), "layer": [r.layer for r in rows], "head": [r.head for r in rows],
                   "kind": [r.kind for r in rows], "score": [round(r.score, 6) for r in rows]}
        for name, values in self.values.items():
            columns[name] = [round(float(values[r.layer - 1, r.head - 1]), 6) for r in rows]
        return pa.table(columns)

    def to_dict(self, top: int | None = None) -> dict:
        """JSON-ready dict: the ``top`` ranked heads, the kind counts, and every statistic [layer][head]."""
        return {
            "model": self.model,
            "texts": self.n_texts,
            "numbering": NUMBERING,
            "summary": self.summary(),
            "explain": KIND_EXPLANATIONS,
            "ranking": [r.__dict__ for r in self.ranking(top)],
            "score": self.score.round(6).tolist(),
            "stats": {k: v.round(6).tolist() for k, v in self.values.items()},
        }

    def summary(self) -> dict[str, int]:
        """How many heads are of each kind."""
        counts: dict[str, int] = {}
        layers, heads = self.shape
        for li in range(1, layers + 1):
            for hi in range(1, heads + 1):
                k = self.kind(li, hi)
                counts[k] = counts.get(k, 0) + 1
        return counts


def head_stats(traces: Sequence[Trace]) -> HeadStats:
    """Average the head statistics of ``traces`` (all from one model).

    Examples:
        >>> from shatterbox import capture, load
        >>> s = head_stats([capture(load(), "Transformers possess surprising emerging features.")])
        >>> sorted(s.values) == sorted(STATS)
        True
    """
    traces = list(traces)
    if not traces:
        raise InputError("no texts to analyse: give at least one sentence")
    shapes = {t.attentions.shape[:2] for t in traces}
    if len(shapes) != 1:
        raise InputError("the traces come from models of different sizes: analyse one model at a time")
    per_text, relations = zip(*(_trace_stats(t) for t in traces))
    values = {k: np.mean([p[k] for p in per_text], axis=0) for k in per_text[0]}
    rel = np.concatenate(relations, axis=-1)  # [L, H, all rows]
    counts = np.stack([(rel == r).sum(-1) for r in range(len(RELATIONS))], axis=-1)
    values["agreement"] = counts.max(-1) / rel.shape[-1]
    return HeadStats(model=traces[0].model, n_texts=len(traces), values=values)
