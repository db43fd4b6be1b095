"""SAEs on Gemma 3 270M against the field, one run: every figure of the SAE docs and of issue 33's closing note.

1. Core: per layer, a TopK SAE (width, k, epochs as given) on the shipped WordNet sentences' residual stream; held-out
   variance explained (beside PCA with as many components), CE loss recovered and the raw loss increase, mean L0, dead
   and dense latents; at the probe layer, 3 seeds (mean ± sd), BatchTopK and Matryoshka-TopK, and the random-weight
   control (the same recipe on the random-weight model's store of the same sentences).
2. Speed: the same TopK SAE (width, k, batch, tokens, held-out split) trained by shatterbox, by SAELens's SAETrainer
   and by sparsify's SparseCoder with its own optimiser (ScheduleFree SignSGD, its default), on the same activations
   in this run; held-out variance explained is read every few steps and the time to reach the lowest final value of
   the three is compared.
3. SAEBench-style evaluations at the probe layer for TopK, BatchTopK, Matryoshka and the random-weight TopK: sparse
   probing (k = 1, 2, 5, 10, 20) on part of speech, supersense and the shipped sentiment labels; first-letter
   absorption; offline auto-interp (detection and fuzzing against the random and shuffled explanations).

Every step's result is written to OUT/<step>.json as it ends and read back on a second run (resumable).

    pip install -e ".[decoder,bench]"
    python bench/sae.py [--sentences 8000] [--layers 3,6,9,12,15] [--probe-layer 9] [--width 4096] [--k 32] [--epochs 5] [--out bench-out/sae]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shatterbox.corpus import load_corpus
from shatterbox.factors import Factors, ce_loss_recovered, fit_factors, heldout_texts, layer_vectors, variance_explained
from shatterbox.models import load, random_weights
from shatterbox.sae import absorption, sparse_probing
from shatterbox.store import Store, harvest

ARGS: argparse.Namespace


def step(name: str, compute: Callable[[], dict]) -> dict:
    """``compute()`` once: its JSON is kept in OUT/name.json and read back on the next run."""
    path = Path(ARGS.out) / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    started = time.perf_counter()
    result = compute() | {"seconds": round(time.perf_counter() - started, 1)}
    path.write_text(json.dumps(result, indent=1))
    print(f"[{name}] {json.dumps(result)[:300]}", flush=True)
    return result


def stores(model, control_model) -> tuple[Store, Store | None]:
    corpus = load_corpus("wordnet", limit=ARGS.sentences)
    layers = ",".join(map(str, ARGS.layers))
    trained = harvest(corpus, Path(ARGS.out) / "store", model=model, layers=layers)
    if "control" in ARGS.skip.split(","):  # no random-weight store: the core table then has no control row (say so)
        return trained, None
    control = harvest(corpus, Path(ARGS.out) / "random-store", model=control_model, layers=str(ARGS.probe_layer))
    return trained, control


def fitted(store: Store, layer: int, activation: str, seed: int, tag: str) -> Factors:
    path = Path(ARGS.out) / f"sae-{tag}-{activation}-L{layer}-s{seed}.safetensors"
    if path.exists():
        return Factors.load(path)
    factors = fit_factors(store, layers=[layer], kind="sae", per_layer=True, n_factors=ARGS.width, k=ARGS.k, n_epochs=ARGS.epochs,
                          max_tokens=ARGS.tokens, activation=activation, seed=seed, batch_size=ARGS.batch, lr=ARGS.lr)
    factors.save(path)
    return factors


def core(store: Store, model, layer: int, activation: str, seed: int, tag: str, reference: dict | None) -> dict:
    factors = fitted(store, layer, activation, seed, tag)
    report = factors.reports[layer]
    ce = ce_loss_recovered(factors, model, heldout_texts(store, limit=ARGS.texts), layer, reference=reference)
    return {"layer": layer, "activation": activation, "seed": seed, "store": tag, "variance_explained": report.variance_explained,
            "pca_variance_explained": report.pca_variance_explained, "mean_l0": report.mean_l0, "dead_fraction": report.dead_fraction,
            "dense_fraction": report.dense_fraction, "fit_seconds": report.fit_seconds} | {k: ce[k] for k in
            ("recovered", "increase", "clean_loss", "zero_ablated_loss", "spliced_loss", "tokens", "texts", "flag")}


# ---- 2. training speed: the same TopK SAE by three tools on the same activations ----

def race_data(store: Store) -> tuple[np.ndarray, np.ndarray]:
    v = layer_vectors(store, [ARGS.probe_layer], max_tokens=ARGS.tokens)
    return v.train[ARGS.probe_layer], v.heldout[ARGS.probe_layer]  # the normalised vectors shatterbox fits on, for all three


def curve_of(train_steps: Callable[[int], None], encode_decode: Callable[[torch.Tensor], torch.Tensor], held: np.ndarray,
             total_steps: int, every: int) -> list[tuple[float, float]]:
    """(seconds of training, held-out variance explained) every ``every`` steps; evaluation time is not counted."""
    curve, spent, done = [], 0.0, 0
    x = torch.from_numpy(held)
    while done < total_steps:
        n = min(every, total_steps - done)
        t = time.perf_counter()
        train_steps(n)
        spent += time.perf_counter() - t
        done += n
        with torch.no_grad():
            curve.append((spent, variance_explained(held, encode_decode(x).numpy())))
    return curve


def race_ours(train: np.ndarray, held: np.ndarray) -> list:
    from shatterbox.factors import SparseAutoencoder

    sae = SparseAutoencoder(n_factors=ARGS.width, k=ARGS.k, n_epochs=1, batch_size=ARGS.batch, lr=ARGS.lr, seed=0)
    data = torch.from_numpy(train)
    gen = torch.Generator().manual_seed(0)
    params = sae._init_params(data, gen)
    opt = torch.optim.Adam(params.values(), lr=sae.lr)
    silent = torch.zeros(ARGS.width)
    order = iter(())

    def steps(n: int) -> None:
        nonlocal order, silent
        for _ in range(n):
            idx = next(order, None)
            if idx is None:
                order = iter(torch.randperm(len(data), generator=gen).split(ARGS.batch))
                idx = next(order)
            _, fired = sae._step(params, data[idx], silent >= min(200_000, len(data)), opt)  # what fit() does each step
            silent = torch.where(fired, torch.zeros_like(silent), silent + len(idx))

    def recon(x: torch.Tensor) -> torch.Tensor:
        z, _ = sae._encode(params, x)
        return z @ params["W_dec"] + params["b_dec"]

    return curve_of(steps, recon, held, race_steps(train), ARGS.every)


def race_saelens(train: np.ndarray, held: np.ndarray) -> list:
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=train.shape[1], d_sae=ARGS.width, k=ARGS.k))
    data = torch.from_numpy(train)
    gen = torch.Generator().manual_seed(0)

    def batches():
        while True:
            for idx in torch.randperm(len(data), generator=gen).split(ARGS.batch):
                yield data[idx]

    total = race_steps(train)
    cfg = SAETrainerConfig(total_training_samples=total * ARGS.batch, train_batch_size_samples=ARGS.batch, lr=ARGS.lr, lr_end=ARGS.lr,
                           logger=LoggingConfig(log_to_wandb=False), n_batches_for_norm_estimate=1)
    source = batches()
    # SAELens's trainer, stepped through its public seam (what SAETrainer.fit does each step), on the same shuffled activations
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=source)

    def steps(n: int) -> None:
        for _ in range(n):
            trainer.maybe_reset_sparsity()
            trainer.step(next(source))
            trainer.n_training_steps += 1

    def recon(x: torch.Tensor) -> torch.Tensor:
        return sae.decode(sae.encode(x))

    return curve_of(steps, recon, held, total, ARGS.every)


def race_sparsify(train: np.ndarray, held: np.ndarray) -> list:
    from schedulefree import ScheduleFreeWrapper
    from sparsify import SparseCoder, SparseCoderConfig
    from sparsify.sign_sgd import SignSGD

    torch.manual_seed(0)
    sae = SparseCoder(train.shape[1], SparseCoderConfig(k=ARGS.k, num_latents=ARGS.width))
    lr = 5e-3 / (ARGS.width / 2**14) ** 0.5  # sparsify's default learning rate for its default optimiser
    opt = ScheduleFreeWrapper(SignSGD(sae.parameters(), lr=lr), momentum=0.95)
    opt.train()
    data = torch.from_numpy(train)
    gen = torch.Generator().manual_seed(0)
    order = iter(())

    def steps(n: int) -> None:
        nonlocal order
        opt.train()
        for _ in range(n):
            idx = next(order, None)
            if idx is None:
                order = iter(torch.randperm(len(data), generator=gen).split(ARGS.batch))
                idx = next(order)
            out = sae(data[idx])
            out.fvu.backward()
            sae.remove_gradient_parallel_to_decoder_directions()
            opt.step()
            opt.zero_grad()
            sae.set_decoder_norm_to_unit_norm()
        opt.eval()  # ScheduleFree evaluates at its averaged weights

    def recon(x: torch.Tensor) -> torch.Tensor:
        return sae(x).sae_out

    return curve_of(steps, recon, held, race_steps(train), ARGS.every)


def race_steps(train: np.ndarray) -> int:
    return ARGS.race_epochs * -(-len(train) // ARGS.batch)


def time_to(curve: list, target: float) -> float | None:
    return next((t for t, v in curve if v >= target), None)


# ---- 3. evaluations ----

def probing(factors: Factors, sentiment: Store) -> dict:
    from shatterbox.errors import InputError

    out = {}
    for prop, level, store in (("pos", "token", None), ("supersense", "token", None), ("label", "sentence", sentiment)):
        try:
            out[prop] = sparse_probing(factors, prop, level=level, store=store, seeds=3).summary()
        except InputError as exc:  # too few examples in a small run: said, not hidden
            out[prop] = str(exc)
    return out


def interp(factors: Factors, store: Store, n: int = 16) -> dict:
    from shatterbox.neurons import NeuronSettings, Units, explain_units

    units = sorted(np.random.default_rng(0).choice(factors.n_factors, n, replace=False).tolist())
    table = explain_units(lambda l: Units.factors(store, factors, l), {ARGS.probe_layer: units}, settings=NeuronSettings(n_explain=8, n_top=8, n_random=8))
    rows = table.to_pylist()
    keys = [k for k in rows[0] if any(k.endswith(m) for m in ("detection", "fuzzing", "correlation")) and not k.endswith(("_low", "_high"))]
    return {k: float(np.nanmean([r[k] for r in rows if r.get(k) is not None] or [np.nan])) for k in keys} | {
        "flagged": int(sum(bool(r["flagged"]) for r in rows)), "units": len(rows)}


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=8000)
    parser.add_argument("--layers", type=lambda s: [int(x) for x in s.split(",")], default=[3, 6, 9, 12, 15])
    parser.add_argument("--probe-layer", type=int, default=9)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--race-epochs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of the SAEs (core fits, and shatterbox and SAELens in the race).")
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--texts", type=int, default=60)
    parser.add_argument("--skip", default="", help="Steps to skip, comma-separated: core, race, evals, control (the random-weight store).")
    parser.add_argument("--out", default="bench-out/sae")
    ARGS = parser.parse_args()
    Path(ARGS.out).mkdir(parents=True, exist_ok=True)
    skip = set(ARGS.skip.split(","))
    model = load("gemma-3-270m")
    control_model = random_weights(model, 0)
    started = time.perf_counter()
    trained, control = step_stores(model, control_model)
    layer = ARGS.probe_layer

    if "core" not in skip:
        rows, reference = [], {}
        plan = [(l, "topk", 0, "trained") for l in ARGS.layers] + [(layer, "topk", s, "trained") for s in (1, 2)] + \
               [(layer, a, 0, "trained") for a in ("batchtopk", "matryoshka")] + ([(layer, "topk", 0, "random")] if control else [])
        for l, activation, seed, tag in plan:
            store, m = (trained, model) if tag == "trained" else (control, control_model)
            row = step(f"core-{tag}-{activation}-L{l}-s{seed}", lambda: core(store, m, l, activation, seed, tag, reference.get((tag, l))))
            reference[(tag, l)] = {"layer": l, "texts": row["texts"], "tokens": row["tokens"], "clean_loss": row["clean_loss"],
                                   "zero_ablated_loss": row["zero_ablated_loss"]}
            rows.append(row)
        print_core(rows)

    if "race" not in skip:
        train, held = race_data(trained)
        curves = {name: step(f"race-{name}-lr{ARGS.lr:g}", lambda f=f: {"curve": f(train, held)})["curve"]
                  for name, f in (("shatterbox", race_ours), ("SAELens", race_saelens), ("sparsify", race_sparsify))}
        print_race(curves)

    if "evals" not in skip:
        sentiment = harvest("sentiment", Path(ARGS.out) / "sentiment-store", model=model, layers=str(layer))
        for activation, tag in (("topk", "trained"), ("batchtopk", "trained"), ("matryoshka", "trained")) + ((("topk", "random"),) if control else ()):
            store, m = (trained, model) if tag == "trained" else (control, control_model)
            f = fitted(store, layer, activation, 0, tag)
            senti = sentiment if tag == "trained" else harvest("sentiment", Path(ARGS.out) / "sentiment-random", model=control_model, layers=str(layer))
            step(f"probe-{tag}-{activation}", lambda: probing(f, senti))
            step(f"absorption-{tag}-{activation}", lambda: absorption(f, m, layer=layer).to_dict())
            step(f"interp-{tag}-{activation}", lambda: interp(f, store))
        print_evals()
    print(f"total {time.perf_counter() - started:.0f} s")


def step_stores(model, control_model) -> tuple[Store, Store | None]:
    t = time.perf_counter()
    trained, control = stores(model, control_model)
    print(f"stores: {trained.n_tokens} tokens ({trained.n_sentences} sentences), layers {ARGS.layers}; "
          + (f"control at layer {ARGS.probe_layer}" if control else "no control (--skip control)") + f" ({time.perf_counter() - t:.0f} s)", flush=True)
    return trained, control


def print_core(rows: list[dict]) -> None:
    print("\ncore (held out): layer, SAE, seed, store | VE | PCA | CE recovered | loss +nats | L0 | dead % | dense % | fit s")
    for r in rows:
        print(f"  {r['layer']:>2} {r['activation']:<10} s{r['seed']} {r['store']:<7} | {r['variance_explained']:.3f} | {r['pca_variance_explained']:.3f} | "
              f"{r['recovered']:.3f} | {r['increase']:.3f} | {r['mean_l0']:.1f} | {100 * r['dead_fraction']:.1f} | {100 * r['dense_fraction']:.1f} | "
              f"{r['fit_seconds']:.0f}" + (f"  [{r['flag']}]" if r["flag"] else ""))
    seeds = [r for r in rows if r["activation"] == "topk" and r["store"] == "trained" and r["layer"] == ARGS.probe_layer]
    for key in ("variance_explained", "recovered", "dead_fraction"):
        values = [r[key] for r in seeds]
        print(f"  layer {ARGS.probe_layer} TopK over {len(values)} seeds: {key} {np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}")


def print_race(curves: dict) -> None:
    target = min(c[-1][1] for c in curves.values())
    times = {name: time_to(c, target) for name, c in curves.items()}
    print(f"\nspeed: the same TopK SAE (width {ARGS.width}, k {ARGS.k}, batch {ARGS.batch}), time to held-out VE {target:.3f} "
          "(the lowest final value of the three)")
    steps = {name: next(i + 1 for i, (_, v) in enumerate(c) if v >= target) * ARGS.every for name, c in curves.items()}
    for name, c in curves.items():
        per_step = 1000 * c[-1][0] / (len(c) * ARGS.every)  # the last point may hold fewer steps: close enough for a rate
        print(f"  {name:<10} final VE {c[-1][1]:.3f} after {c[-1][0]:.0f} s; reaches {target:.3f} at {times[name]:.1f} s "
              f"({times[name] / times['shatterbox']:.2f}x shatterbox's time) after ~{steps[name]} steps of {per_step:.0f} ms")


def print_evals() -> None:
    out = Path(ARGS.out)
    print("\nsparse probing at layer", ARGS.probe_layer, "(accuracy, mean over tasks ± sd over 3 seeds; control = k random live latents)")
    for path in sorted(out.glob("probe-*.json")):
        found = json.loads(path.read_text())
        for prop in ("pos", "supersense", "label"):
            if isinstance(found[prop], str):
                print(f"  {path.stem[6:]:<20} {prop:<10} {found[prop]}")
                continue
            cells = " ".join(f"k={r['k']}: {r['accuracy']:.3f}±{r['accuracy_sd']:.3f} (ctl {r['control']:.3f})" for r in found[prop])
            print(f"  {path.stem[6:]:<20} {prop:<10} {cells} dense {found[prop][0]['dense']:.3f}")
    print("\nabsorption (first letter): fraction, full, main latents per letter, letter-probe accuracy")
    for path in sorted(out.glob("absorption-*.json")):
        a = json.loads(path.read_text())
        print(f"  {path.stem[11:]:<20} {a['absorption_fraction']:.3f} {a['full_absorption']:.3f} {a['splits']:.2f} {a['probe_accuracy']:.3f}")
    print("\nauto-interp (offline explainer): mean scores over 16 latents")
    for path in sorted(out.glob("interp-*.json")):
        print(f"  {path.stem[7:]:<20} " + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in json.loads(path.read_text()).items()}))


if __name__ == "__main__":
    main()
