"""Activation patching: shatterbox's batched sweeps against the naive loop (one forward pass per patched run) and against
nnsight doing the same patches one at a time, on Gemma 3 270M, same prompt, same numbers; attribution patching against
exact patching; and the causal head ranking of the shipped sentiment classifier over WordNet sentences beside the head
finder's attention-pattern ranking. One run, one process.

    pip install -e ".[decoder,bench]"
    python bench/patching.py [--heads-texts 500] [--naive-sample 0] [--out docs/img/patching-gemma.html]

``--naive-sample N`` times the naive loop and nnsight on N cells chosen evenly (0: every cell) and scales their time to
the full sweep; every timed cell's value is compared with the batched sweep's.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import shatterbox as sb
from shatterbox.patching import (LanguageModelTarget, Site, ablate, attribution_patch, causal_heads, collecting, intervening,
                                 pair_texts, patch, replace)

CLEAN = "In my grandfather's old atlas on the shelf, the page says the capital of France is"  # 20 tokens with <bos>
CORRUPT = CLEAN.replace("France", "Poland")


def naive(target, pair, sites_positions, source):
    """One forward pass per patched run (the loop a user writes with hooks), batch of one."""
    out = []
    base = pair.corrupt
    tokens = base.inputs["input_ids"].shape[1]
    for site, position in sites_positions:
        value = torch.zeros(tokens, source[site].shape[-1])
        value[position] = source[site][position]
        with torch.inference_mode(), intervening(target.model, [[replace(site, value, [position])]], tokens):
            out.append(float(target.score(base.inputs).metric[0]))
    return np.array(out)


def with_nnsight(target, pair, cells, head_dim):
    """The same patches through nnsight, one trace per patched run (its documented pattern)."""
    import nnsight

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nnsight.NNsight(target.model.model)
    answer = target.answer_ids[0]
    clean, corrupt = pair.clean.inputs, pair.corrupt.inputs
    saved = {}
    with torch.inference_mode():
        with model.trace(**clean):
            for i in range(len(model.model.layers)):
                saved[i] = model.model.layers[i].self_attn.o_proj.input.save()
        out = []
        for layer, head, position in cells:
            cols = slice((head - 1) * head_dim, head * head_dim)
            with model.trace(**corrupt):
                model.model.layers[layer - 1].self_attn.o_proj.input[:, position, cols] = saved[layer - 1][:, position, cols]
                logits = model.output.logits.save()
            out.append(float(torch.log_softmax(logits[0, -1].float(), -1)[answer]))
    return np.array(out)


def informative(a, b) -> int:
    """Cells that enter PatchResult.agreement (either effect not 0)."""
    from shatterbox.patching import MOVES

    return int(((np.abs(a.effect) > MOVES) | (np.abs(b.effect) > MOVES)).sum())


def gemma_sweeps(args) -> None:
    model = sb.load("gemma-3-270m")
    target = LanguageModelTarget(model, answer=" Paris")
    pair = pair_texts(target, CLEAN, CORRUPT)
    n = pair.clean.scored
    print(f"Gemma 3 270M, prompt of {n} tokens; clean/corrupted: ...{CLEAN[-30:]!r} / ...{CORRUPT[-30:]!r}; metric log p(' Paris')")
    for component, positions in (("head", "each"), ("hidden", "each")):
        started = time.perf_counter()
        batched = patch(CLEAN, CORRUPT, target, component=component, positions=positions)
        t_batched = time.perf_counter() - started
        sites = [Site(component, layer, unit) for layer in batched.layers for unit in (batched.units or [None])]
        cells = [(s, p) for s in sites for p in range(n)]
        pick = np.arange(len(cells)) if not args.naive_sample else np.unique(np.linspace(0, len(cells) - 1, args.naive_sample).astype(int))
        with torch.inference_mode(), collecting(model, sites) as found:
            target.score(pair.clean.inputs)
        source = {s: found[s][0] for s in sites}
        started = time.perf_counter()
        loop = naive(target, pair, [cells[i] for i in pick], source)
        t_naive = (time.perf_counter() - started) * len(cells) / len(pick)
        diff = np.abs(loop - batched.values.ravel()[pick]).max()
        print(f"  {component} x position: {len(cells):,} patched runs; batched {t_batched:.1f} s ({batched.forward_passes} passes), "
              f"naive loop {t_naive:.1f} s{'' if len(pick) == len(cells) else f' (scaled from {len(pick)} runs)'}: "
              f"{t_naive / t_batched:.1f}x faster; largest difference {diff:.1e}")
        if component == "head":
            head_dim = model.model.config.head_dim
            sub = pick[:: max(1, len(pick) // 60)]
            started = time.perf_counter()
            theirs = with_nnsight(target, pair, [(cells[i][0].layer, cells[i][0].unit, cells[i][1]) for i in sub], head_dim)
            t_nn = (time.perf_counter() - started) * len(cells) / len(sub)
            print(f"  nnsight 0.8, one trace per patch ({len(sub)} runs timed, scaled): {t_nn:.1f} s, {t_nn / t_batched:.1f}x our time; "
                  f"largest difference {np.abs(theirs - batched.values.ravel()[sub]).max():.1e}")
        started = time.perf_counter()
        approx = attribution_patch(CLEAN, CORRUPT, target, component=component, positions=positions)
        t_approx = time.perf_counter() - started
        print(f"  attribution patching: {t_approx:.2f} s ({t_batched / t_approx:.0f}x faster than batched exact, {t_naive / t_approx:.0f}x than the "
              f"naive loop); Spearman with exact {batched.agreement(approx):.3f} over the {informative(batched, approx)} cells where either moves the output")
        top = ", ".join(f"{c.get('layer')}/{c.get('head', '-')}/{c.get('position')} {c['effect']:.2f}" for c in batched.ranking(5))
        print(f"  largest effects (layer/head/position effect): {top}")


def gemma_page(out: str) -> None:
    """The layer x head map (every position at once), exact and attribution, as the docs show it."""
    from shatterbox.render.patching import patch_page
    from shatterbox.patching import sweep

    model = sb.load("gemma-3-270m")
    exact, approx = sweep("The capital of France is", "The capital of Poland is", model, answer=" Paris", component="head")
    with open(out, "w", encoding="utf-8") as f:
        f.write(patch_page(exact, approx))
    print(f"wrote {out}: 'The capital of France is' / '... Poland is', heads (all positions): largest "
          + "; ".join(f"L{c['layer']} H{c['head']} {c['effect']:.2f}" for c in exact.ranking(4)) + f"; Spearman {exact.agreement(approx):.3f}")


def head_ranking(args) -> None:
    from shatterbox.classifiers.sentiment import sentiment
    from shatterbox.corpus import load_corpus, sample_indices
    from shatterbox.heads import head_stats
    from shatterbox.trace import capture_batch

    texts = list(load_corpus("wordnet").texts)
    texts = [texts[i] for i in sample_indices(len(texts), args.heads_texts, seed=0)]
    clf = sentiment()
    started = time.perf_counter()
    result = ablate(texts, clf, component="head", how="mean")
    t_ablate = time.perf_counter() - started
    started = time.perf_counter()
    stats = head_stats(capture_batch(clf.model, texts))
    t_stats = time.perf_counter() - started
    joined = causal_heads(stats, result)
    print(f"causal head ranking, shipped sentiment classifier, {len(texts)} WordNet sentences, mean ablation of each of 72 heads: "
          f"{t_ablate:.1f} s ({result.forward_passes} passes); attention-pattern statistics {t_stats:.1f} s")
    print(f"  Spearman(pattern score, ablation drop) = {joined.spearman:.3f}: {joined.note}")
    print("  top 5 causal: " + "; ".join(f"L{r['layer']} H{r['head']} {r['kind']} drop {r['ablation drop']:+.4f} (pattern rank {r['pattern rank']})"
                                         for r in joined.rows[:5]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--heads-texts", type=int, default=500)
    parser.add_argument("--naive-sample", type=int, default=0)
    parser.add_argument("--out", default=None, help="Also write the Gemma layer x head page here.")
    args = parser.parse_args()
    torch.manual_seed(0)
    gemma_sweeps(args)
    if args.out:
        gemma_page(args.out)
    head_ranking(args)


if __name__ == "__main__":
    main()
