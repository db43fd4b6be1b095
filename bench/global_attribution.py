"""Corpus-level attribution: shatterbox's corpus run against shap's Partition explainer over the same texts, same
model, same run. Both give a global word ranking (mean effect of a word per text it occurs in, positive label);
each ranking is compared (Spearman) with the one from exact Shapley values (all 2^n coalitions) on the same short
texts, over the words that occur in at least 3 of them.

    python bench/global_attribution.py [--texts 200]

Texts: WordNet example sentences of 4 to 8 words (seeded sample). Masking: [MASK] per token on both sides (shap's
Text masker with collapse_mask_token=False); shap's token values are summed into the same words.

Then where the time goes, and what a 20x speed-up would allow: the model's seconds per masked text (float32 and
bfloat16) against this machine's matrix-multiply rate, the number of model evaluations that 1/20 of shap's time buys,
and a replay of Shapley estimators on every text's exact coalition values (no model in the loop; the same
evaluations the exact reference made): how close each comes to the exact ranking at how many evaluations.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from scipy.stats import spearmanr

from shatterbox.attribution import kernel_shap, make_game, owen_values, shapley_exact, shapley_sampled
from shatterbox.attribution.parts import coalitions, evaluate_together
from shatterbox.classifiers.sentiment import sentiment
from shatterbox.corpus import load_corpus
from shatterbox.global_attribution import KERNEL_PER_WORD, CorpusSettings, explain_corpus, word_table


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


def coalition_values(classifier, texts: list[str], label: int = 1) -> tuple[list[list[str]], list[np.ndarray], float]:
    """Each text's words and the label's probability for every coalition (row m: bit i set = word i present), and the
    tokens per masked text ([CLS] and [SEP] included), averaged over those evaluations."""
    games = [make_game(classifier, t) for t in texts]
    masks = [coalitions(g.n) for g in games]
    evaluate_together(games, masks)
    tokens = sum(len(g.token_word) * len(m) for g, m in zip(games, masks)) / sum(len(m) for m in masks)
    return [g.words for g in games], [g(m)[:, label] for g, m in zip(games, masks)], tokens


def seconds_per_evaluation(classifier, texts: list[str], dtype: str) -> float:
    """Seconds per masked text for every coalition of ``texts``, scored in shared forward passes (the corpus run's path)."""
    games = [make_game(classifier, t, dtype=dtype) for t in texts]
    masks = [coalitions(g.n) for g in games]
    start = time.perf_counter()
    evaluate_together(games, masks)
    return (time.perf_counter() - start) / sum(len(m) for m in masks)


def matmul_rate(dtype: torch.dtype, hidden: int, inner: int, rows: int = 2048, repeats: int = 30) -> float:
    """This machine's FLOP/s on the encoder's feed-forward matrix product [rows, hidden] @ [hidden, inner]."""
    a, b = torch.randn(rows, hidden, dtype=dtype), torch.randn(hidden, inner, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * rows * hidden * inner * repeats / (time.perf_counter() - start)


def flops_per_token(model) -> float:
    """Multiply-adds of the encoder layers' linear maps per token, times two (attention scores excluded: short texts)."""
    return 2 * sum(m.weight.numel() for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layer." in name)


def lookup(v: np.ndarray, n: int, seen: set):
    """A value function reading the coalitions' stored values; counts the distinct coalitions asked for."""
    def value(masks: np.ndarray) -> np.ndarray:
        codes = (np.asarray(masks, dtype=np.int64) << np.arange(n)).sum(axis=1)
        seen.update(codes.tolist())
        return v[codes]
    return value


def shap_kernel(v: np.ndarray, n: int, samples: int, seen: set, seed: int) -> np.ndarray:
    """shap's own KernelExplainer on the stored game (background: nobody present; explained: everybody)."""
    import shap

    np.random.seed(seed)
    explainer = shap.KernelExplainer(lambda z: lookup(v, n, seen)(np.rint(z)), np.zeros((1, n)))
    return np.asarray(explainer.shap_values(np.ones((1, n)), nsamples=samples, l1_reg=False, silent=True)).reshape(n)


def replay(words: list[list[str]], values: list[np.ndarray], estimator, seeds: int = 3) -> tuple[float, list[dict]]:
    """Mean distinct evaluations (all texts) and the word rankings of ``estimator(v, n, seen, seed) -> values``, one per seed."""
    rankings, spent = [], []
    for seed in range(seeds):
        effects: dict[str, list[float]] = {}
        total = 0
        for ws, v in zip(words, values):
            seen: set = set()
            phi = estimator(v, len(ws), seen, seed)
            total += len(seen)
            in_text: dict[str, float] = {}
            for w, x in zip(ws, phi):
                in_text[w.lower()] = in_text.get(w.lower(), 0.0) + float(x)
            for w, x in in_text.items():
                effects.setdefault(w, []).append(x)
        rankings.append({w: (float(np.mean(x)), len(x)) for w, x in effects.items()})
        spent.append(total)
    return float(np.mean(spent)), rankings


ESTIMATORS = {
    "exact (all 2^n coalitions)": lambda v, n, seen, seed: shapley_exact(lookup(v, n, seen), n).values[:, 0],
    **{f"permutation sampling, {p} pair{'s' if p > 1 else ''}": (lambda p: lambda v, n, seen, seed: shapley_sampled(
        lookup(v, n, seen), n, precision=0.0, budget=2 + 2 * p * (n - 1), min_pairs=p, seed=seed).values[:, 0])(p) for p in (1, 2, 4)},
    **{f"Kernel SHAP (ours), {k} per word": (lambda k: lambda v, n, seen, seed: kernel_shap(
        lookup(v, n, seen), n, evaluations=k * n, seed=seed).values[:, 0])(k) for k in (3, 4, 6, 8)},
    "Owen values, balanced tree": lambda v, n, seen, seed: owen_values(lookup(v, n, seen), n).values[:, 0],
    **{f"shap KernelSHAP, {k}n samples": (lambda k: lambda v, n, seen, seed: shap_kernel(v, n, k * n, seen, seed))(k) for k in (2, 4, 8)},
}


def budget_report(classifier, texts: list[str], reference: dict, shap_seconds: float, shap_rho: float) -> None:
    """Print the forward pass's cost against the matrix-multiply rate, what 20x shap's speed allows, and the replay."""
    model = classifier.model.model
    words, values, tokens = coalition_values(classifier, texts)
    sample = texts[: max(1, len(texts) // 5)]
    per_eval = {d: seconds_per_evaluation(classifier, sample, d) for d in ("float32", "bfloat16")}
    flops = flops_per_token(model) * tokens
    hidden, inner = model.config.hidden_size, model.config.intermediate_size
    rates = {"float32": matmul_rate(torch.float32, hidden, inner), "bfloat16": matmul_rate(torch.bfloat16, hidden, inner)}
    for d in per_eval:
        print(f"{d}: {per_eval[d] * 1e3:.2f} ms per masked text ({tokens:.1f} tokens), {flops / per_eval[d] / 1e9:.0f} GFLOP/s = "
              f"{flops / per_eval[d] / rates[d]:.0%} of this machine's {d} matrix-multiply rate ({rates[d] / 1e9:.0f} GFLOP/s)")
    allowed = shap_seconds / 20 / per_eval["bfloat16"]
    print(f"1/20 of shap's {shap_seconds:.1f} s buys at most {allowed:,.0f} bfloat16 evaluations ({allowed / len(texts):.1f} a text, "
          f"{np.mean([len(w) for w in words]):.1f} words), before any other cost")
    print(f"{'replayed estimator (3 seeds)':40s} {'evaluations':>11s} {'Spearman vs exact':>18s} {'within 20x':>10s}")
    best = None
    for name, estimator in ESTIMATORS.items():
        spent, rankings = replay(words, values, estimator, seeds=1 if name.startswith(("exact", "Owen")) else 3)
        rho = float(np.mean([agreement(r, reference)[0] for r in rankings]))
        fits = spent <= allowed
        print(f"{name:40s} {spent:11,.0f} {rho:18.3f} {'yes' if fits else 'no':>10s}")
        if fits and (best is None or rho > best[1]):
            best = (name, rho)
    if best:
        print(f"best within the 20x budget: {best[0]}, Spearman {best[1]:.3f} (shap Partition: {shap_rho:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--budget-only", action="store_true", help="only the forward-cost and estimator replay part (shap timed once)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")
    classifier = sentiment()
    texts = short_texts(args.texts)
    classifier.predict(texts[:8])  # warm up
    exact = explain_corpus(texts, classifier, settings=CorpusSettings(method="exact", pairs=None, score=False))
    reference = ranking_from_table(word_table(exact, by="word"))
    print(f"{len(texts)} texts of 4-8 words; exact Shapley reference: {exact.texts.column('evaluations').to_numpy().sum():,} model evaluations, "
          f"{exact.seconds_per_text() * len(texts):.1f} s")
    rows = []
    ranking, seconds, calls = shap_ranking(classifier, texts)
    rows.append(("shap Partition (default max_evals)", seconds, calls, *agreement(ranking, reference)))
    runs = [("sampled", 1, False, "float32"), ("sampled", 1, True, "float32"), ("sampled", 2, False, "float32"), ("sampled", 2, False, "bfloat16"),
            ("sampled", 4, False, "float32"), ("sampled", 4, False, "bfloat16"), ("sampled", 4, True, "float32"),
            ("kernel", None, False, "float32"), ("kernel", None, False, "bfloat16"), ("kernel", None, True, "float32")]
    for method, pairs, score, dtype in runs[:0] if args.budget_only else runs:
        start = time.perf_counter()
        run = explain_corpus(texts, classifier, settings=CorpusSettings(method=method, pairs=pairs, score=score, dtype=dtype))
        took = time.perf_counter() - start
        name = (f"shatterbox --pairs {pairs}" if method == "sampled" else f"shatterbox --method kernel ({KERNEL_PER_WORD}/word)")
        name += (" --bf16" if dtype == "bfloat16" else "") + (" + faithfulness" if score else "")
        rows.append((name, took, int(run.texts.column("evaluations").to_numpy().sum()), *agreement(ranking_from_table(word_table(run, by="word")), reference)))
    base = rows[0][1]
    print(f"{'tool':40s} {'seconds':>8s} {'texts scored':>13s} {'Spearman vs exact':>18s} {'words':>6s} {'speed-up vs shap':>17s}")
    for name, took, calls, rho, n in rows:
        print(f"{name:40s} {took:8.1f} {calls:13,d} {rho:18.3f} {n:6d} {base / took:16.1f}x")
    print()
    budget_report(classifier, texts, reference, shap_seconds=base, shap_rho=rows[0][3])


if __name__ == "__main__":
    main()
