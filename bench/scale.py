"""Harvest throughput: local against Ray with 1 and 2 workers on this machine, the overhead Ray adds per shard,
and a paper estimate of a million sentences on N workers from the measured per-worker throughput.

    python bench/scale.py [--sentences 2000]

Same corpus (WordNet examples), model (the default), columns (hidden states of layers 1 and 6 and MLP of layer 6) and
shard size for every run; each run writes a fresh store. Ray's start-up (starting the local instance) is timed apart;
the replicas' model loading is inside the Ray runs' time, as it is for a user.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from shatterbox.corpus import load_corpus
from shatterbox.models import load
from shatterbox.store import harvest
from shatterbox.engines import Engine

ARGS = dict(layers="1,6", what="hidden,mlp", shard_bytes=8 << 20)


def timed(corpus, root: Path, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    store = harvest(corpus, root, **ARGS, **kwargs)
    return time.perf_counter() - start, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    args = parser.parse_args()
    import ray

    corpus = load_corpus("wordnet", limit=args.sentences, seed=0)
    model = load()
    work = Path(tempfile.mkdtemp())
    rows = []
    seconds, local = timed(corpus, work / "local", model=model)
    tokens = local.n_tokens
    rows.append(("local (one process, 2 threads)", seconds))
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - start
    for workers in (1, 2):
        seconds, store = timed(corpus, work / f"ray{workers}", model=model, engine=Engine("ray", workers=workers))
        assert np.array_equal(store.activations("hidden_6"), local.activations("hidden_6")), "Ray must give the local store"
        rows.append((f"ray, {workers} worker{'s' if workers > 1 else ''}", seconds))
    shards = local.manifest["shards"]
    print(f"{len(corpus):,} sentences, {tokens:,} tokens, {shards} shards; Ray start-up {startup:.1f} s (not in the times below)")
    print(f"{'engine':34s} {'seconds':>8s} {'tokens/s':>9s} {'vs local':>9s}")
    for name, s in rows:
        print(f"{name:34s} {s:8.1f} {tokens / s:9,.0f} {rows[0][1] / s:8.2f}x")
    one = dict(rows)["ray, 1 worker"]
    overhead = (one - rows[0][1]) / shards
    print(f"Ray overhead per shard (1 worker against local, same 2 cores): {overhead:+.2f} s")
    per_worker = tokens / one / 2  # tokens a second per CPU core on this machine, Ray included
    million = 1_000_000 * tokens / len(corpus)
    for n in (1, 8, 32, 128):
        print(f"paper estimate, 1,000,000 sentences ({million:,.0f} tokens) on {n:>3d} 2-core workers: "
              f"{million / (per_worker * 2 * n) / 3600:6.2f} h (if the store's storage keeps up)")


if __name__ == "__main__":
    main()
