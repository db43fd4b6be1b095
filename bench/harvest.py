"""Harvest throughput vs a plain batched Hugging Face forward pass, and peak memory vs corpus size.

Same sentences (a seeded sample of the shipped WordNet corpus), same model weights, same process:

* plain, corpus order: ``AutoModel`` (its default SDPA attention), 32 sentences per batch in corpus
  order, ``output_hidden_states=True`` -- what a user's loop usually looks like;
* plain, length-sorted: the same forward on length-sorted batches of the same token budget that
  harvest uses -- the fastest plain forward we know on this CPU;
* harvest: ``shatterbox.store.harvest`` with the hidden states of every layer (embeddings + 6 layers)
  written to Parquet shards, end to end (hashing the model and corpus, tokenizing, aligning words,
  writing and fsyncing the shards).

Peak RSS is measured in a fresh subprocess per corpus size (``resource.getrusage``), so it covers
the whole harvest and nothing else.

    python bench/harvest.py [--sentences 2000] [--rss 2000,20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from transformers import AutoModel

import shatterbox as sb
from shatterbox.corpus import load_corpus
from shatterbox.models import default_model_path
from shatterbox.store import BATCH_TOKENS, harvest


def plain_forward(model, tokenizer, texts: list[str], order: np.ndarray, groups: list[np.ndarray]) -> int:
    """Run ``model`` on each group of rows of ``order``; returns the real (unpadded) tokens seen."""
    tokens = 0
    with torch.inference_mode():
        for group in groups:
            batch = tokenizer([texts[i] for i in order[group]], padding=True, truncation=True, max_length=512, return_tensors="pt")
            model(**batch, output_hidden_states=True)
            tokens += int(batch["attention_mask"].sum())
    return tokens


def token_budget_groups(lengths: np.ndarray, budget: int) -> list[np.ndarray]:
    groups, start = [], 0
    while start < len(lengths):
        stop = start + 1
        while stop < len(lengths) and lengths[stop] * (stop - start + 1) <= budget:
            stop += 1
        groups.append(np.arange(start, stop))
        start = stop
    return groups


def rate(fn) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = fn()
    return tokens / (time.perf_counter() - start), tokens


def peak_rss(sentences: int) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of a harvest of ``sentences`` sentences in a fresh process."""
    code = (
        "import resource, sys, tempfile, time; from shatterbox.corpus import load_corpus; from shatterbox.store import harvest;"
        f"c = load_corpus('wordnet', limit={sentences}, seed=0); t = time.perf_counter();"
        "harvest(c, tempfile.mkdtemp(dir=sys.argv[1]), what='hidden');"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t)"
    )
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--rss", default="2000,20000")
    args = parser.parse_args()
    torch.set_num_threads(2)
    corpus = load_corpus("wordnet", limit=args.sentences, seed=0)
    texts = corpus.texts
    loaded = sb.load()
    plain = AutoModel.from_pretrained(default_model_path()).eval()
    tok = loaded.tokenizer
    lengths = np.array([len(x) for x in tok(texts, truncation=True, max_length=512)["input_ids"]])
    natural = np.arange(len(texts))
    by_length = np.argsort(lengths, kind="stable")
    plain_forward(plain, tok, texts, natural, [natural[:64]])  # warm-up
    results = {}
    results["plain, corpus order, 32 per batch"] = rate(lambda: plain_forward(plain, tok, texts, natural, np.array_split(natural, -(-len(texts) // 32))))
    results["plain, length-sorted, same token budget"] = rate(
        lambda: plain_forward(plain, tok, texts, by_length, token_budget_groups(lengths[by_length], BATCH_TOKENS))
    )
    with tempfile.TemporaryDirectory() as folder:
        results["harvest, hidden states of all 7 layers to Parquet"] = rate(lambda: harvest(corpus, folder + "/s", model=loaded, what="hidden").n_tokens)
    print(f"{len(texts)} WordNet sentences, {int(lengths.sum())} tokens, {torch.get_num_threads()} threads\n")
    print("| case | tokens/s | harvest ÷ this |")
    print("|---|---|---|")
    harvest_rate = results["harvest, hidden states of all 7 layers to Parquet"][0]
    for name, (r, _) in results.items():
        print(f"| {name} | {r:,.0f} | {harvest_rate / r:.2f}× |")
    print("\n| sentences | peak RSS (MiB) | seconds |")
    print("|---|---|---|")
    for n in [int(x) for x in args.rss.split(",") if x]:
        rss, seconds = peak_rss(n)
        print(f"| {n:,} | {rss:,.0f} | {seconds:.1f} |")
    print(json.dumps({k: round(v[0], 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
