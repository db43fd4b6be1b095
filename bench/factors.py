"""Factor fitting: our FISTA dictionary vs scikit-learn, and our SAE vs the FISTA dictionary, on the same activations.

One run, one set of vectors: hidden states of layer 3 of the default model over a seeded sample of
the shipped WordNet corpus (harvested once into a store), centred and scaled as ``fit_factors`` does.

* scikit-learn ``MiniBatchDictionaryLearning(positive_code=True, fit_algorithm="cd")`` with the same
  objective (½‖X − UV‖² + α‖U‖₁), same number of atoms, same α, for ``--sk-epochs`` passes; its
  held-out variance explained (codes by ``sparse_encode(..., algorithm="lasso_cd", positive=True)``)
  is the target;
* ours (``SparseDictionary``) epoch by epoch; the time to reach the target is its fit time at the
  first epoch whose held-out variance explained (codes by our FISTA) is at least the target;
* ``SparseAutoencoder`` (TopK) with ``k`` = the FISTA fit's mean L0: variance explained and time.

    python bench/factors.py [--sentences 3000] [--atoms 512] [--alpha 1.0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import torch
from sklearn.decomposition import MiniBatchDictionaryLearning, sparse_encode
from sklearn.exceptions import ConvergenceWarning

from shatterbox.corpus import load_corpus
from shatterbox.factors import SparseAutoencoder, SparseDictionary, evaluate, layer_vectors, variance_explained
from shatterbox.store import harvest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=3000)
    parser.add_argument("--atoms", type=int, default=512)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--sk-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=20_000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # sklearn's coordinate descent, every batch
    with tempfile.TemporaryDirectory() as folder:
        store = harvest(load_corpus("wordnet", limit=args.sentences, seed=0), folder + "/s", layers="3")
        vectors = layer_vectors(store, [3], max_tokens=args.max_tokens, seed=0)
    x, held = vectors.train[3], vectors.heldout[3]
    print(f"layer 3 of the default model: {len(x):,} training and {len(held):,} held-out vectors of {x.shape[1]} dims; "
          f"{args.atoms} atoms, alpha {args.alpha}, {torch.get_num_threads()} threads\n")

    batches = -(-len(x) // 256)
    sk = MiniBatchDictionaryLearning(n_components=args.atoms, alpha=args.alpha, batch_size=256, max_iter=args.sk_epochs,
                                     fit_algorithm="cd", positive_code=True, random_state=0, max_no_improvement=None, tol=0)
    start = time.perf_counter()
    sk.fit(x)
    sk_seconds = time.perf_counter() - start
    sk_codes = sparse_encode(held, sk.components_, algorithm="lasso_cd", alpha=args.alpha, positive=True, max_iter=1000)
    target = variance_explained(held, sk_codes @ sk.components_)
    sk_l0 = float((sk_codes > 0).sum(1).mean())

    curve = []
    ours = SparseDictionary(n_factors=args.atoms, alpha=args.alpha, n_epochs=args.epochs, seed=0)
    clock = {"start": time.perf_counter(), "paused": 0.0}

    def on_epoch(epoch: int) -> None:
        now = time.perf_counter()
        fve = variance_explained(held, ours.inverse_transform(ours.transform(held)))
        curve.append((epoch + 1, now - clock["start"] - clock["paused"], fve))
        clock["paused"] += time.perf_counter() - now

    ours.fit(x, on_epoch=on_epoch)
    reached = next(((e, t) for e, t, f in curve if f >= target), None)
    report = evaluate(ours, held, x)
    k = max(1, round(report.mean_l0))
    sae = SparseAutoencoder(n_factors=args.atoms, k=k, n_epochs=20, batch_size=1024, seed=0).fit(x)
    sae_report = evaluate(sae, held, x)

    print(f"scikit-learn MiniBatchDictionaryLearning: {args.sk_epochs} epochs ({args.sk_epochs * batches} batches of 256) "
          f"in {sk_seconds:.1f} s -> held-out variance explained {target:.3f} at mean L0 {sk_l0:.1f}")
    print("ours by epoch: " + "; ".join(f"{e}: {t:.1f} s, {f:.3f}" for e, t, f in curve))
    if reached:
        print(f"ours reaches {target:.3f} after epoch {reached[0]} in {reached[1]:.1f} s: **{sk_seconds / reached[1]:.1f}x faster**")
    else:
        print(f"ours did not reach {target:.3f} in {args.epochs} epochs ({curve[-1][2]:.3f} after {curve[-1][1]:.1f} s)")
    print("\n| fit | variance explained | PCA, as many components | mean L0 | dead % | seconds |")
    print("|---|---|---|---|---|---|")
    for name, r in (("FISTA dictionary (ours)", report), (f"TopK SAE, k = {k} (ours)", sae_report)):
        print(f"| {name} | {r.variance_explained:.3f} | {r.pca_variance_explained:.3f} | {r.mean_l0:.1f} | {100 * r.dead_fraction:.1f} | {r.fit_seconds:.1f} |")


if __name__ == "__main__":
    main()
