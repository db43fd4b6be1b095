"""Worked case: where the shipped sentiment classifier reads negation. Activation patching between minimal pairs of its
own challenge set ("The movie was not bad." / "The movie was very bad.": the negator replaced by an intensifier of as
many tokens, kept when the prediction flips), then the heads it finds confirmed by ablation over the whole challenge set
against random heads.

    python bench/negation.py [--top 3] [--controls 20] [--out docs/img/patching-negation.html]
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np
import torch

from shatterbox.classifiers.sentiment import challenge, sentiment
from shatterbox.patching import Site, intervening, make_target, pair_texts, patch, patch_report, replace, site_means
from shatterbox.errors import InputError

NEGATORS = re.compile(r"\b(not|never|no)\b", re.IGNORECASE)
SWAP = {"not": "very", "never": "always", "no": "a"}


def pairs(texts: list[str]) -> list[tuple[str, str]]:
    """Each text with one negator, and the same text with it swapped for an intensifier."""
    out = []
    for t in texts:
        found = NEGATORS.findall(t)
        if len(found) == 1:
            word = found[0]
            swap = SWAP[word.lower()]
            out.append((t, NEGATORS.sub(swap.capitalize() if word[0].isupper() else swap, t)))
    return out


def accuracy_with(clf, texts, labels, sites, means) -> float:
    """Accuracy on ``texts`` with every site in ``sites`` set to its mean together."""
    target = make_target(clf)
    right = 0
    for text, label in zip(texts, labels):
        inputs = target.prepare(text).inputs
        with torch.inference_mode(), intervening(clf.model, [[replace(s, means[s]) for s in sites]], inputs["input_ids"].shape[1]):
            right += int(int(clf.probabilities(inputs)[0].argmax()) == int(label))
    return right / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--controls", type=int, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    clf = sentiment()
    texts, labels, kinds = challenge()
    texts = np.array(texts, dtype=object)
    started = time.perf_counter()
    kept, hidden, heads, roles = [], [], [], []
    for clean, corrupt in pairs(list(texts)):
        p = clf.predict([clean, corrupt]).argmax(axis=1)
        if p[0] == p[1]:
            continue
        try:
            h = patch(clean, corrupt, clf, component="hidden")
        except InputError:
            continue
        kept.append((clean, corrupt))
        hidden.append(h)
        heads.append(patch(clean, corrupt, clf, component="head"))
        negator = next(i for i, lab in enumerate(h.positions) if "→" in lab)
        roles.append(negator)
    print(f"{len(kept)} minimal pairs of the challenge set whose prediction flips (of {len(pairs(list(texts)))} with one negator); "
          f"{time.perf_counter() - started:.1f} s for their {sum(x.rows + y.rows for x, y in zip(hidden, heads)):,} patched runs")
    layers = hidden[0].layers
    by_role = {"[CLS]": [], "the negator": [], "the word after it": [], "the rest": []}
    for h, n in zip(hidden, roles):
        e = h.effect
        by_role["[CLS]"].append(e[:, 0])
        by_role["the negator"].append(e[:, n])
        by_role["the word after it"].append(e[:, n + 1])
        rest = [j for j in range(1, e.shape[1]) if j not in (n, n + 1)]
        by_role["the rest"].append(e[:, rest].max(axis=1))
    print("residual stream, denoising effect by position (mean over pairs; 'the rest': the largest other position):")
    print("  hidden state  " + "  ".join(f"{l:>5}" for l in layers))
    for role, rows in by_role.items():
        print(f"  {role:<18}" + "  ".join(f"{v:5.2f}" for v in np.mean(rows, axis=0)))
    mean_heads = np.mean([x.effect for x in heads], axis=0)  # [layer, head]
    order = np.argsort(-mean_heads.ravel())
    top = [Site("head", int(i // mean_heads.shape[1]) + 1, int(i % mean_heads.shape[1]) + 1) for i in order[: args.top]]
    print("heads, denoising effect (mean over pairs): " + "; ".join(f"{s.label} {mean_heads[s.layer - 1, s.unit - 1]:.2f}" for s in
                                                                    [Site("head", int(i // 12) + 1, int(i % 12) + 1) for i in order[:8]]))
    negated = np.array([bool(NEGATORS.search(t)) for t in texts])
    texts = np.array(texts, dtype=object)
    all_heads = [Site("head", l, h) for l in range(1, 7) for h in range(1, 13)]
    means = site_means(clf.model, list(texts), all_heads)
    base_neg = accuracy_with(clf, texts[negated], labels[negated], [], means)
    base_rest = accuracy_with(clf, texts[~negated], labels[~negated], [], means)
    top_neg = accuracy_with(clf, texts[negated], labels[negated], top, means)
    top_rest = accuracy_with(clf, texts[~negated], labels[~negated], top, means)
    rng = np.random.default_rng(0)
    controls = []
    for _ in range(args.controls):
        pick = [all_heads[i] for i in rng.choice(len(all_heads), size=args.top, replace=False)]
        controls.append((accuracy_with(clf, texts[negated], labels[negated], pick, means),
                         accuracy_with(clf, texts[~negated], labels[~negated], pick, means)))
    controls = np.array(controls)
    print(f"challenge set, {negated.sum()} sentences with a negator and {(~negated).sum()} without: accuracy {base_neg:.3f} / {base_rest:.3f}; "
          f"mean-ablating the top {args.top} heads together ({', '.join(s.label for s in top)}): {top_neg:.3f} / {top_rest:.3f}; "
          f"{args.top} random heads ({args.controls} draws): {controls[:, 0].mean():.3f} / {controls[:, 1].mean():.3f} "
          f"(lowest {controls[:, 0].min():.3f} / {controls[:, 1].min():.3f})")
    if args.out:
        from shatterbox.render.patching import patch_page

        first = kept[0]
        exact = patch(first[0], first[1], clf, component="head", positions="each")
        from shatterbox.patching import attribution_patch

        approx = attribution_patch(first[0], first[1], clf, component="head", positions="each")
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(patch_page(exact, approx))
        print(f"wrote {args.out} ({first[0]!r} / {first[1]!r}; {patch_report(exact, approx)['agreement']:.3f} rank agreement)")


if __name__ == "__main__":
    main()
