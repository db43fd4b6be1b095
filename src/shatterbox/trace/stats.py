"""Per-row attention statistics, shared by the head finder (one text) and the activation store (a corpus).

For every attending token (row) of every layer and head:

===========  =======================================================================
``entropy``  row entropy / log(number of keys it may see): 0 = one key, 1 = uniform
``special``  mass on special tokens ([CLS], [SEP], <s>, ...)
``punct``    mass on punctuation tokens
``prev``     mass on the previous token (NaN for the first token: it has none)
``self``     mass on the token itself
``next``     mass on the next token (NaN for the last token)
===========  =======================================================================

Examples:
    >>> a = np.array([[[[1.0, 0.0], [0.5, 0.5]]]])          # [layer, head, query, key]
    >>> s = row_stats(a, np.ones((1, 1, 2, 2), bool), np.array([False, False]), np.array([False, False]))
    >>> s["entropy"].round(3).tolist(), s["prev"].tolist()
    ([[[0.0, 1.0]]], [[[nan, 0.5]]])
"""

from __future__ import annotations

import unicodedata

import numpy as np

ROW_STATS = ("entropy", "special", "punct", "prev", "self", "next")


def is_punct(label: str) -> bool:
    """Whether a token label is punctuation only (word-piece marks ignored).

    Examples:
        >>> is_punct("."), is_punct("##,"), is_punct("a.")
        (True, True, False)
    """
    text = label.replace("##", "").strip()
    return bool(text) and all(unicodedata.category(ch).startswith("P") for ch in text)


def row_stats(attentions: np.ndarray, allowed: np.ndarray, special: np.ndarray, punct: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics of the module table, each [..., query] for ``attentions`` [..., query, key].

    ``allowed`` marks the keys each query may see (False where masked); ``special`` and ``punct``
    mark key tokens [key].
    """
    a = attentions.astype(np.float64)
    n = a.shape[-1]
    visible = allowed.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(a > 0, a * np.log(a), 0.0)
        entropy = np.where(visible > 1, -plogp.sum(-1) / np.log(np.maximum(visible, 2)), 0.0) + 0.0
    idx = np.arange(n)
    prev = np.full(a.shape[:-1], np.nan)
    nxt = np.full(a.shape[:-1], np.nan)
    prev[..., 1:] = a[..., idx[1:], idx[:-1]]
    nxt[..., :-1] = a[..., idx[:-1], idx[1:]]
    return {
        "entropy": entropy,
        "special": a[..., special].sum(-1),
        "punct": a[..., punct].sum(-1),
        "prev": prev,
        "self": a[..., idx, idx],
        "next": nxt,
    }
