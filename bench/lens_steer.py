"""Lenses and steering on Gemma 3 270M, one run, one process.

Tuned lens: harvest shipped WordNet sentences (every hidden layer), train the translators on this CPU, and print each
layer's held-out KL to the final layer for the logit and the tuned lens, their ratio, top-1 agreement, and the training
time against the 30-minute budget.

Logit lens: shatterbox against the same lens written with nnsight, on 5 prompts (time, largest KL difference, top-5).

Steering: 20 neutral prompts continued with a sentiment direction added at the middle layer, 5 strengths, towards
positive and towards negative, for DiffMean (the shipped target sentences minus the others), a linear probe's weights and
the SAE latent that separates the target sentences best, beside a random direction of the same length and prompting; concept score (the shipped sentiment classifier) and
fluency (the unsteered model's log-probability per token).

    pip install -e ".[decoder,bench]"
    python bench/lens_steer.py [--sentences 2500] [--max-tokens 20000] [--epochs 1] [--out bench-out]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import shatterbox as sb
from shatterbox.corpus import load_corpus
from shatterbox.lens import TUNED_FILE, TunedLens
from shatterbox.steering import FLUENCY_LOSS, MOVES, diffmean, factor_direction, probe_direction, steer
from shatterbox.store import Store, harvest

PROMPTS = [
    "The weather today is", "My neighbour said that", "I went to the market and", "Yesterday the train", "The meeting on Monday",
    "When I opened the door,", "The new library building", "Our teacher told us that", "The report about the town", "At the end of the street",
    "The film I saw last night", "My brother bought a", "The restaurant on the corner", "This morning the bus", "The book on the table",
    "After lunch we", "The hotel room was", "The phone call from my aunt", "The city council decided", "The garden behind the house",
]


def with_nnsight(model, text: str, k: int = 5) -> tuple[list, list]:
    """The logit lens as a user writes it with nnsight (its documented pattern): save every layer's output in one trace,
    then the final norm and unembedding on each; per layer, KL to the final layer and the top-k ids."""
    import warnings

    import nnsight
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = nnsight.NNsight(model.model)
    ids = model.tokenizer(text, return_tensors="pt")["input_ids"]
    saved = {}
    with torch.inference_mode():
        with traced.trace(ids):
            for i in range(model.n_layers):
                saved[i] = traced.model.layers[i].output.save()
            final = traced.lm_head.output.save()
        final_logp = torch.log_softmax(final[0].float(), -1)
        kls, tops = [], []
        for i in range(model.n_layers):
            logp = torch.log_softmax(model.model.lm_head(model.model.model.norm(saved[i][0])).float(), -1)
            kls.append((final_logp.exp() * (final_logp - logp)).sum(-1))
            tops.append(logp.topk(k, -1).indices)
    return kls, tops


def lens_against_nnsight(model, texts: list[str]) -> dict:
    """shatterbox's logit lens and the nnsight version on the same texts: time and the largest KL difference."""
    from shatterbox.lens import logit_lens

    ours = theirs = 0.0
    worst, same_top = 0.0, True
    for text in texts:
        started = time.perf_counter()
        r = logit_lens(model, text)
        ours += time.perf_counter() - started
        started = time.perf_counter()
        kls, tops = with_nnsight(model, text)
        theirs += time.perf_counter() - started
        worst = max(worst, max(float(np.abs(r.kl[i + 1] - kls[i].numpy()).max()) for i in range(model.n_layers)))
        same_top &= all(
            [t for t, _ in r.top[i + 1][p]] == model.tokenizer.convert_ids_to_tokens(tops[i][p].tolist())
            for i in range(model.n_layers) for p in range(len(r.tokens))
        )
    print(f"logit lens, {len(texts)} prompts, every layer and position: shatterbox {ours:.1f} s, nnsight 0.8 {theirs:.1f} s "
          f"({theirs / ours:.2f}x); largest KL difference {worst:.1e} nats; same top-5 tokens everywhere: {same_top}")
    return {"ours_s": ours, "nnsight_s": theirs, "largest_kl_difference": worst, "same_top": same_top}


def tuned_lens(args, model) -> dict:
    root = Path(args.out) / "gemma-wordnet"
    started = time.perf_counter()
    store = harvest(load_corpus("wordnet", limit=args.sentences, seed=0), root, model=model, layers="all", what="hidden")
    harvest_s = time.perf_counter() - started
    print(f"store: {store.n_sentences:,} WordNet sentences, {store.n_tokens:,} tokens, every hidden layer, {harvest_s:.0f} s (harvest or reuse)")
    lens = TunedLens(epochs=args.epochs, learning_rate=args.learning_rate, batch_tokens=args.batch_tokens, held_out=args.held_out,
                     max_tokens=args.max_tokens, seed=0)
    started = time.perf_counter()
    last = [0.0]

    def tick(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 60:
            last[0] = time.perf_counter()
            print(f"  tuned lens: step {done}/{total}, {last[0] - started:.0f} s", flush=True)

    lens.fit(store, model, checkpoint=root / (TUNED_FILE + ".partial"), progress=tick)
    fit_s = time.perf_counter() - started
    lens.save(root / TUNED_FILE)
    print(f"\ntuned lens: {lens.n_train_:,} training tokens x {args.epochs} epoch(s), fit and held-out scoring {fit_s:.0f} s "
          f"({fit_s / 60:.1f} min; budget 30 min: {'within' if fit_s <= 1800 else 'OVER'})")
    print(f"held-out: {lens.n_held_:,} tokens of {round(args.held_out * store.n_sentences)} sentences never trained on")
    print(f"{'layer':>5} {'logit KL':>9} {'tuned KL':>9} {'ratio':>7} {'logit top-1':>12} {'tuned top-1':>12}")
    for r in lens.scores_:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        print(f"{r['layer']:>5} {r['logit_kl']:9.3f} {r['tuned_kl']:9.3f} {ratio:>7} {r['logit_top1']:12.3f} {r['tuned_top1']:12.3f}")
    ratios = [r["ratio"] for r in lens.scores_[:-1]]
    below = [r["layer"] for r in lens.scores_[:-1] if r["ratio"] < 2]
    print(f"ratio logit/tuned KL over layers 0-{len(ratios) - 1}: min {min(ratios):.2f}x, median {np.median(ratios):.2f}x; "
          + (f"below 2x at layers {below}" if below else "at least 2x at every layer but the last"))
    return {"fit_seconds": fit_s, "scores": lens.scores_, "n_train": lens.n_train_, "n_held": lens.n_held_}


def factor_for_sentiment(args, model, layer: int, wordnet: Store, sentiment: Store, target: str):
    """An SAE fitted on the WordNet store's layer, and its latent whose mean code differs most between the ``target`` and
    the other sentiment sentences (a t statistic), the way a user picks a feature for a concept."""
    from shatterbox.factors import Factors, fit_factors

    path = Path(args.out) / f"sae-{layer}.safetensors"
    if path.is_file():
        factors = Factors.load(path)
    else:
        factors = fit_factors(wordnet, layers=[layer], kind="sae", n_factors=args.sae_factors, k=32, max_tokens=args.max_tokens, seed=0)
        factors.save(path)
    ids = sentiment.sentences().column("id").to_numpy()
    labels = np.array(sentiment.sentences().column("label").to_pylist())
    x = sentiment.sentence_vectors(f"hidden_{layer}", ids, special=False)
    codes = factors.codes(x, layer)
    pos, neg = codes[labels == target], codes[labels != target]
    t = (pos.mean(0) - neg.mean(0)) / np.sqrt(pos.var(0) / len(pos) + neg.var(0) / len(neg) + 1e-12)
    best = int(np.argmax(t))
    print(f"SAE ({args.sae_factors} latents, TopK 32) at layer {layer}: latent {best} separates {target} sentences best (t = {t[best]:.1f})")
    return factor_direction(factors, best, layer)


def steering(args, model, target: str) -> dict:
    layer = args.layer if args.layer is not None else model.n_layers // 2
    other = "negative" if target == "positive" else "positive"
    sentiment = harvest(load_corpus("sentiment"), Path(args.out) / f"gemma-sentiment-{layer}", model=model, layers=str(layer), what="hidden")
    wordnet = Store.open(Path(args.out) / "gemma-wordnet")
    directions = [diffmean(sentiment, layer, "label", target, other), probe_direction(sentiment, "label", layer, target),
                  factor_for_sentiment(args, model, layer, wordnet, sentiment, target)]
    started = time.perf_counter()
    r = steer(model, PROMPTS[: args.prompts], directions, layer=layer, alphas=args.alphas, max_new_tokens=args.tokens, target=target)
    print(f"\nsteering towards {target} at hidden layer {layer}: {len(r.prompts)} prompts, strengths {r.alphas[1:]} x the median residual "
          f"norm, {args.tokens} tokens each, {time.perf_counter() - started:.0f} s; concept = P({target}) by the shipped classifier")
    print(f"{'direction':<38} {'strength':>8} {'concept':>8} {'change':>8} {'fluency':>8} {'loss':>6}  flag")
    for s in r.summary():
        alpha = "prompted" if s["alpha"] is None else f"{s['alpha']:g}"
        print(f"{s['direction'][:38]:<38} {alpha:>8} {s['concept']:8.3f} {s['concept_change']:+8.3f} {s['fluency']:8.3f} {s['fluency_loss']:6.2f}  {s['flag']}")
    print(r.verdict())
    best = {}
    for s in r.summary():
        if s["kind"] in ("none", "prompting") or s["fluency_loss"] is None or s["fluency_loss"] > FLUENCY_LOSS:
            continue
        if s["direction"] not in best or s["concept_change"] > best[s["direction"]]["concept_change"]:
            best[s["direction"]] = s
    print(f"\nbest strength of each direction within a fluency loss of {FLUENCY_LOSS:g} nat per token (target: a change of {MOVES} or more):")
    for name, s in sorted(best.items(), key=lambda kv: -kv[1]["concept_change"]):
        print(f"  {name[:40]:<40} strength {s['alpha']:g}: concept {s['concept_change']:+.3f}, fluency loss {s['fluency_loss']:.2f}"
              + ("  (meets the target)" if s["concept_change"] >= MOVES else ""))
    example = next(i for i, p in enumerate(r.prompts) if p.startswith("The weather"))
    print(f"\n“{r.prompts[example]}”:")
    for row in (x for x in r.rows if x["prompt"] == example):
        alpha = "prompted" if row["alpha"] is None else f"{row['alpha']:g}"
        print(f"  {row['direction'][:30]:<30} {alpha:>8}  {row['concept']:.2f}  {row['text']!r}")
    (Path(args.out) / f"steering-{target}.json").write_text(r.to_json())
    return r.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=2500)
    parser.add_argument("--max-tokens", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--batch-tokens", type=int, default=256)
    parser.add_argument("--held-out", type=float, default=0.05)
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--alphas", default="0.025,0.05,0.075,0.1,0.15")
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--sae-factors", type=int, default=1024)
    parser.add_argument("--skip-lens", action="store_true")
    parser.add_argument("--skip-steering", action="store_true")
    parser.add_argument("--targets", default="positive,negative")
    parser.add_argument("--out", default="bench-out")
    args = parser.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    model = sb.load("gemma-3-270m")
    found = {"nnsight": lens_against_nnsight(model, PROMPTS[:5])}
    if not args.skip_lens:
        found["tuned_lens"] = tuned_lens(args, model)
    if not args.skip_steering:
        for target in args.targets.split(","):
            found[f"steering {target}"] = steering(args, model, target)
    (Path(args.out) / "lens_steer.json").write_text(json.dumps(found, allow_nan=False, default=float))


if __name__ == "__main__":
    main()
