"""From per-text attributions to per-word effects: counts, means with 95 % intervals, signs, drill-down, diagnostics."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from shatterbox.errors import InputError
from shatterbox.options import RANKING
from shatterbox.global_attribution._run import CorpusRun

BY = ("lemma", "word")


def keys_of(words: Sequence[str], by: str = RANKING.by) -> list[str]:
    """Each word's grouping key: its lemma (:func:`shatterbox.corpus.lemma.lemma`) or its lower-cased form.

    Examples:
        >>> keys_of(["Movies", "loves", "."], "lemma"), keys_of(["Movies"], "word")
        (['movie', 'love', '.'], ['movies'])
    """
    if by not in BY:
        raise InputError(f"unknown grouping {by!r}: lemma or word")
    if by == "word":
        return [w.lower() for w in words]
    from shatterbox.corpus.lemma import lemma

    return [lemma(w) for w in words]


def per_text(run: CorpusRun, by: str = RANKING.by) -> dict[str, np.ndarray]:
    """One effect per (label, key, text): the sum of the key's values in that text (a repeated word counts once, with
    its occurrences summed), with its occurrences and how many of them pushed the label up; sorted by label, key, text."""
    rows = run.rows
    if rows.num_rows == 0:
        raise InputError("the run has no explained text yet: run it (or let it finish a part) first")
    words = rows.column("word")
    unique = pc.unique(words)
    keys = pa.array(keys_of(unique.to_pylist(), by), pa.string()).take(pc.index_in(words, value_set=unique))  # each word type keyed once
    value = rows.column("value")
    table = pa.table({"label": rows.column("label"), "key": keys, "text_id": rows.column("text_id"), "value": value,
                      "up": pc.cast(pc.greater(value, 0), pa.int64()), "abs": pc.abs(value)})
    grouped = table.group_by(["label", "key", "text_id"], use_threads=False).aggregate(
        [("value", "sum"), ("value", "count"), ("up", "sum"), ("abs", "sum")]).sort_by([("label", "ascending"), ("key", "ascending"), ("text_id", "ascending")])
    return {"label": grouped.column("label").to_numpy(zero_copy_only=False), "key": grouped.column("key").to_numpy(zero_copy_only=False),
            "text_id": grouped.column("text_id").to_numpy(), "effect": grouped.column("value_sum").to_numpy(),
            "occurrences": grouped.column("value_count").to_numpy(), "up": grouped.column("up_sum").to_numpy(), "abs": grouped.column("abs_sum").to_numpy()}


def word_table(run: CorpusRun, *, by: str = RANKING.by, min_count: int = 1, confidence: float = 0.95) -> pa.Table:
    """Per label and word (``by`` lemma or lower-cased form): texts, occurrences, mean effect per text with its
    ``confidence`` interval (Student t over texts; the per-text sampling noise is part of the spread it measures),
    mean |value| per occurrence, the share of occurrences that pushed the label up, and the sign consistency
    (|mean| / mean |value| : 1 = always the same sign, near 0 = flips with context), and ``side``: "up" or "down"
    when the mean and its interval lie on that side of zero, "" when the interval crosses zero (the word pushes
    neither way; :func:`top_words` lists it nowhere). Words in fewer than ``min_count`` texts are left out.
    """
    t = per_text(run, by)
    texts = pa.table({"label": t["label"], "key": t["key"], "effect": t["effect"], "square": t["effect"] ** 2, "occurrences": t["occurrences"],
                      "up": t["up"], "abs": t["abs"]})
    g = texts.group_by(["label", "key"], use_threads=False).aggregate(
        [("effect", "sum"), ("effect", "count"), ("square", "sum"), ("occurrences", "sum"), ("up", "sum"), ("abs", "sum")])
    n = g.column("effect_count").to_numpy()
    total = g.column("effect_sum").to_numpy()
    mean = total / n
    var = np.where(n > 1, (g.column("square_sum").to_numpy() - n * mean ** 2) / np.maximum(n - 1, 1), np.nan)
    sd = np.sqrt(np.maximum(var, 0))
    half = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    occ = g.column("occurrences_sum").to_numpy()
    mean_abs = g.column("abs_sum").to_numpy() / occ
    with np.errstate(invalid="ignore", divide="ignore"):
        consistency = np.where(mean_abs > 0, np.abs(total / occ) / mean_abs, np.nan)
    keep = n >= min_count
    table = pa.table({
        "label": g.column("label").filter(pa.array(keep)), "word": g.column("key").filter(pa.array(keep)), "texts": n[keep], "occurrences": occ[keep],
        "mean": mean[keep], "low": (mean - half)[keep], "high": (mean + half)[keep], "sd": sd[keep], "mean_abs": mean_abs[keep],
        "share_up": (g.column("up_sum").to_numpy() / occ)[keep], "consistency": consistency[keep],
    })
    side = np.where(_on_side(table, "up"), "up", np.where(_on_side(table, "down"), "down", ""))
    table = table.append_column("side", pa.array(side.tolist(), pa.string()))
    return table.sort_by([("label", "ascending"), ("mean", "descending"), ("word", "ascending")])


def top_words(table: pa.Table, label: str, *, k: int = RANKING.top, direction: str = "up", min_count: int = RANKING.min_count) -> pa.Table:
    """The ``k`` words that push ``label`` up (largest mean) or down (smallest), among words in ``min_count`` texts or more.

    A word is listed on one side only: its mean, and its 95 % interval where the table has one (``low``, ``high``;
    a word of one text has none), lie on that side of zero. A word whose interval crosses zero pushes neither way.

    Examples:
        >>> t = pa.table({"label": ["p"] * 4, "word": ["a", "b", "c", "d"], "texts": [9, 9, 1, 9], "mean": [0.2, -0.1, 0.9, 0.3],
        ...               "low": [0.1, -0.2, float("nan"), -0.1], "high": [0.3, -0.05, float("nan"), 0.7]})
        >>> top_words(t, "p").column("word").to_pylist(), top_words(t, "p", direction="down").column("word").to_pylist()
        (['a'], ['b'])
    """
    labels = set(table.column("label").to_pylist())
    if label not in labels:
        raise InputError(f"no label {label!r} in the run: its labels are {', '.join(sorted(labels))}")
    if direction not in ("up", "down"):
        raise InputError(f"direction must be up or down, not {direction!r}")
    mask = np.array([(l == label and n >= min_count) for l, n in zip(table.column("label").to_pylist(), table.column("texts").to_pylist())])
    mask &= _on_side(table, direction)
    chosen = table.filter(pa.array(mask))
    ordered = chosen.sort_by([("mean", "descending" if direction == "up" else "ascending")])
    return ordered.slice(0, k)


def _on_side(table: pa.Table, direction: str) -> np.ndarray:
    """Rows whose mean (and interval, where there is one) lies above zero (``up``) or below it (``down``)."""
    sign = 1.0 if direction == "up" else -1.0
    mean = sign * np.asarray(table.column("mean").to_numpy(zero_copy_only=False), dtype=float)
    keep = mean > 0
    if "low" in table.column_names and "high" in table.column_names:
        near = np.asarray(table.column("low" if direction == "up" else "high").to_numpy(zero_copy_only=False), dtype=float) * sign
        keep &= np.isnan(near) | (near > 0)
    return keep


def flips(table: pa.Table, label: str, *, k: int = RANKING.top, min_count: int = RANKING.min_count) -> pa.Table:
    """Words whose effect on ``label`` changes sign with context: lowest sign consistency, then largest spread (words
    that never move the label, all values 0, are not among them)."""
    mask = np.array([(l == label and n >= min_count and a > 0) for l, n, a in
                     zip(table.column("label").to_pylist(), table.column("texts").to_pylist(), table.column("mean_abs").to_pylist())])
    chosen = table.filter(pa.array(mask))
    return chosen.sort_by([("consistency", "ascending"), ("sd", "descending")]).slice(0, k)


def least_faithful(run: CorpusRun, k: int = 10) -> pa.Table:
    """The ``k`` texts whose explanation is least faithful (lowest comprehensiveness: deleting the top words changes
    the prediction least) — the first places to look."""
    texts = run.texts.filter(pa.compute.is_valid(run.texts.column("comprehensiveness")))
    return texts.sort_by([("comprehensiveness", "ascending")]).slice(0, k).select(
        ["text_id", "text", "prediction", "probability", "comprehensiveness", "sufficiency"])


def drill_down(run: CorpusRun, word: str, label: str, *, by: str = RANKING.by, k: int = 5) -> list[dict]:
    """The ``k`` texts where ``word`` moved ``label`` the most (largest |effect|), each with all its words and
    their values for ``label`` (to colour like the single-text plot) and the positions of ``word``.

    Examples:
        >>> run = __import__("shatterbox.global_attribution", fromlist=["x"]).explain_corpus(["I loved it.", "loved and hated"])
        >>> sorted(d["text_id"] for d in drill_down(run, "loved", "positive", by="word"))
        [0, 1]
    """
    target = keys_of([word], by)[0]
    t = per_text(run, by)
    hits = np.flatnonzero((t["key"] == target) & (t["label"] == label))
    if not len(hits):
        raise InputError(f"{word!r} does not occur in the explained texts (for label {label!r})")
    hits = hits[np.argsort(-np.abs(t["effect"][hits]), kind="stable")][:k]
    rows = run.rows
    out = []
    text_ids = rows.column("text_id").to_numpy()
    labels = np.array(rows.column("label").to_pylist(), dtype=object)
    texts = dict(zip(run.texts.column("text_id").to_pylist(), run.texts.to_pylist()))
    for h in hits:
        tid = int(t["text_id"][h])
        mine = np.flatnonzero((text_ids == tid) & (labels == label))
        sub = rows.take(pa.array(mine)).sort_by("position")
        words = sub.column("word").to_pylist()
        out.append({"text_id": tid, "effect": float(t["effect"][h]), "words": words, "values": sub.column("value").to_pylist(),
                    "positions": [i for i, k2 in enumerate(keys_of(words, by)) if k2 == target],
                    "prediction": texts[tid]["prediction"], "probability": texts[tid]["probability"]})
    return out


def dataset_payload(run: CorpusRun, *, by: str = RANKING.by, min_count: int = RANKING.min_count, top: int = RANKING.top,
                    texts_per_word: int = 3) -> dict:
    """Everything the web app's Dataset section shows, JSON-ready: per label the words that push it up and down
    (with intervals and their drill-down texts), the flips, the least faithful texts, what was skipped, the cost.

    Examples:
        >>> from shatterbox.global_attribution import explain_corpus
        >>> d = dataset_payload(explain_corpus(["I loved the film.", "I hated the film."]), min_count=1, top=2)
        >>> sorted(d["labels"]), len(d["words"]["positive"]["up"])
        (['negative', 'positive'], 2)
    """
    table = word_table(run, by=by)
    labels = sorted(set(table.column("label").to_pylist()))
    words: dict[str, dict] = {}
    for label in labels:
        words[label] = {}
        for direction in ("up", "down"):
            rows = top_words(table, label, k=top, direction=direction, min_count=min_count).to_pylist()
            for r in rows:
                r["texts_shown"] = drill_down(run, r["word"], label, by=by, k=texts_per_word)
            words[label][direction] = rows
        words[label]["flips"] = flips(table, label, k=8, min_count=min_count).to_pylist()
    skipped = run.skipped.to_pylist() if run.skipped.num_rows else []
    return {"record": run.record, "by": by, "min_count": min_count, "labels": labels, "words": words, "texts": run.texts.num_rows,
            "seconds_per_text": run.seconds_per_text(), "least_faithful": least_faithful(run, 8).to_pylist(),
            "skipped": {r: sum(1 for s in skipped if s["reason"] == r) for r in sorted({s["reason"] for s in skipped})},
            "problems": sum(1 for p in run.texts.column("problem").to_pylist() if p)}
