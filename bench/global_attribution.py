"""Corpus-level attribution: shatterbox's corpus run against shap's Partition explainer over the same texts, same
model, same run. Both give a global word ranking (mean effect of a word per text it occurs in, positive label);
each ranking is compared (Spearman) with the one from exact Shapley values (all 2^n coalitions) on the same short
texts, over the words that occur in at least 3 of them.

    python bench/global_attribution.py [--texts 200]

Texts: WordNet example sentences of 4 to 8 words (seeded sample). Masking: [MASK] per token on both sides (shap's
Text masker with collapse_mask_token=False); shap's token values are summed into the same words.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from scipy.stats import spearmanr

from shatterbox.classifiers.sentiment import sentiment
from shatterbox.corpus import load_corpus
from shatterbox.global_attribution import Settings, explain_corpus, word_table


def short_texts(n: int, seed: int = 0) -> list[str]:
    corpus = load_corpus("wordnet", where={"kind": "example"}, limit=20 * n, seed=seed)
    chosen = [t for t in dict.fromkeys(corpus.texts) if 4 <= len(t.split()) <= 8 and "\"" not in t]
    return chosen[:n]


def ranking_from_table(table, label: str = "positive") -> dict[str, tuple[float, int]]:
    return {r["word"]: (r["mean"], r["texts"]) for r in table.to_pylist() if r["label"] == label}


def shap_ranking(classifier, texts: list[str]) -> tuple[dict[str, tuple[float, int]], float, int]:
    import shap

    calls = [0]

    def f(batch):
        batch = [str(t) for t in batch]
        calls[0] += len(batch)
        return classifier.predict(batch)

    masker = shap.maskers.Text(classifier.tokenizer, mask_token="[MASK]", collapse_mask_token=False)
    explainer = shap.Explainer(f, masker, output_names=classifier.labels, silent=True)
    start = time.perf_counter()
    sv = explainer(texts, silent=True)
    seconds = time.perf_counter() - start
    effects: dict[str, list[float]] = {}
    for i, text in enumerate(texts):
        enc = classifier.tokenizer(text, return_offsets_mapping=True)  # with [CLS] and [SEP]: shap's values have a slot for each
        word_ids = enc.word_ids()
        values = sv.values[i][:, 1]
        assert len(values) == len(word_ids), (text, len(values), len(word_ids))
        per_word: dict[int, float] = {}
        spans: dict[int, list[int]] = {}
        for w, v, (a, b) in zip(word_ids, values, enc["offset_mapping"]):
            if w is None:  # a special token: shap gives it a value too (0 here); not a word
                continue
            per_word[w] = per_word.get(w, 0.0) + float(v)
            spans.setdefault(w, [a, b])[1] = b
        in_text: dict[str, float] = {}
        for w, (a, b) in spans.items():
            key = text[a:b].lower()
            in_text[key] = in_text.get(key, 0.0) + per_word[w]
        for key, v in in_text.items():
            effects.setdefault(key, []).append(v)
    return {k: (float(np.mean(v)), len(v)) for k, v in effects.items()}, seconds, calls[0]


def agreement(ranking: dict, reference: dict, min_texts: int = 3) -> tuple[float, int]:
    words = sorted(w for w in reference if reference[w][1] >= min_texts and w in ranking)
    rho = spearmanr([ranking[w][0] for w in words], [reference[w][0] for w in words]).statistic
    return float(rho), len(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    classifier = sentiment()
    texts = short_texts(args.texts)
    classifier.predict(texts[:8])  # warm up
    exact = explain_corpus(texts, classifier, settings=Settings(method="exact", pairs=None, score=False))
    reference = ranking_from_table(word_table(exact, by="word"))
    print(f"{len(texts)} texts of 4-8 words; exact Shapley reference: {exact.texts.column('evaluations').to_numpy().sum():,} model evaluations, "
          f"{exact.seconds_per_text() * len(texts):.1f} s")
    rows = []
    ranking, seconds, calls = shap_ranking(classifier, texts)
    rows.append(("shap Partition (default max_evals)", seconds, calls, *agreement(ranking, reference)))
    for pairs, score, dtype in [(1, False, "float32"), (1, True, "float32"), (2, False, "float32"), (2, False, "bfloat16"), (2, True, "float32"),
                                (4, False, "float32"), (4, False, "bfloat16"), (4, True, "float32")]:
        start = time.perf_counter()
        run = explain_corpus(texts, classifier, settings=Settings(pairs=pairs, score=score, dtype=dtype))
        took = time.perf_counter() - start
        name = f"shatterbox --pairs {pairs}" + (" --bf16" if dtype == "bfloat16" else "") + (" + faithfulness" if score else "")
        rows.append((name, took, int(run.texts.column("evaluations").to_numpy().sum()), *agreement(ranking_from_table(word_table(run, by="word")), reference)))
    base = rows[0][1]
    print(f"{'tool':40s} {'seconds':>8s} {'texts scored':>13s} {'Spearman vs exact':>18s} {'words':>6s} {'speed-up vs shap':>17s}")
    for name, took, calls, rho, n in rows:
        print(f"{name:40s} {took:8.1f} {calls:13,d} {rho:18.3f} {n:6d} {base / took:16.1f}x")


if __name__ == "__main__":
    main()
