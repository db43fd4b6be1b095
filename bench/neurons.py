"""Neuron explanations: units explained and scored per minute offline, and what the chat-model path would cost
per unit against the original method (OpenAI 2023: an explanation prompt and an all-at-once simulation prompt
that lists every token on its own line), built on the same excerpts and measured the same way.

    python bench/neurons.py STORE [--layer 3] [--units 256]

STORE: a store with MLP activations, e.g. shatterbox harvest wordnet --where kind=example --limit 8000
--what mlp --layers 1-6 --dtype float16 --out STORE.

Tokens are estimated as characters / 4 on both sides (no tokenizer of a hosted model is installed offline).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from shatterbox.neurons import (NeuronSettings, SimulationJudge, TokenExplainer, TokenSimulator, Units, detect_prompt, estimate, explain_prompt, explain_records,
                                fuzz_items, fuzz_prompt, records, vocabulary)
from shatterbox.store import Store

FEW_SHOT = 2  # the original explanation and simulation prompts carry worked examples of other neurons; counted here as 2 of the same size


def chars(messages: list[dict]) -> int:
    return sum(len(m["content"]) for m in messages)


def original_record(tokens: list[str], values: list[str]) -> str:
    """One record as the original prompts list it: a line per token, its activation after a tab."""
    return "<start>\n" + "".join(f"{t}\t{v}\n" for t, v in zip(tokens, values)) + "<end>\n"


def original_chars(r) -> tuple[int, int]:
    """(explanation prompt, simulation prompt) characters of the original method on the same records."""
    from shatterbox.neurons import discretise

    explain = "".join(original_record(e.tokens, [str(v) for v in discretise(e.activations, r.maximum)]) for e in r.explain_top)
    held = r.score_top + r.score_random
    simulate = "".join(original_record(e.tokens, ["unknown"] * len(e.tokens)) for e in held)
    shots_explain = (1 + FEW_SHOT) * len(explain) + 400
    shots_simulate = len(simulate) + FEW_SHOT * len(explain) + 400
    return shots_explain, shots_simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--layer", type=int, default=3)
    parser.add_argument("--units", type=int, default=256)
    args = parser.parse_args()
    store = Store.open(args.store)
    units = Units.neurons(store, args.layer)
    chosen = list(range(args.units))
    settings = NeuronSettings()

    start = time.perf_counter()
    found = records(units, chosen, n_explain=settings.n_explain, n_top=settings.n_top, n_random=settings.n_random)
    read = time.perf_counter() - start
    start = time.perf_counter()
    sim = TokenSimulator()
    explained = explain_records(found, TokenExplainer(), sim, SimulationJudge(sim), vocabulary=vocabulary(store))
    scored = time.perf_counter() - start
    total = read + scored
    corr = np.array([e.scores["explanation"]["correlation"].value for e in explained])
    print(f"offline: {len(chosen)} units of layer {args.layer} ({store.n_sentences:,} sentences): excerpts read in {read:.1f} s, "
          f"explained and scored (with 3 baselines each) in {scored:.1f} s -> {60 * len(chosen) / total:,.0f} units per minute "
          f"({1000 * total / len(chosen):.1f} ms per unit); mean correlation {corr.mean():.3f}")

    ours = {"explain": [], "detect": [], "fuzz": []}
    original = {"explain": [], "simulate": []}
    for r, e in zip(found, explained):
        ours["explain"].append(chars(explain_prompt(r)))
        ours["detect"].append(chars(detect_prompt(e.explanation, r.score_top + r.score_random)))
        items, masks, _ = fuzz_items(r)
        ours["fuzz"].append(chars(fuzz_prompt(e.explanation, items, masks)))
        a, b = original_chars(r)
        original["explain"].append(a)
        original["simulate"].append(b)
    per_unit = lambda d: sum(np.mean(v) for v in d.values()) / 4  # noqa: E731
    measured_ours = per_unit(ours)
    with_baselines = (np.mean(ours["explain"]) + 4 * (np.mean(ours["detect"]) + np.mean(ours["fuzz"]))) / 4
    guess = estimate(1, store.n_tokens / store.n_sentences, settings.n_explain, settings.n_top, settings.n_random)
    orig = per_unit(original)
    print("chat-model path, per unit (prompt tokens ~ characters / 4, measured on these excerpts):")
    print(f"  ours, explanation only: 3 calls, {measured_ours:,.0f} prompt tokens")
    print(f"  ours, with the 3 baselines judged too: 9 calls, {with_baselines:,.0f} prompt tokens (the estimate shown before a run: {guess.prompt_tokens:,})")
    print(f"  original method (explain + all-at-once simulation, {FEW_SHOT} worked examples each): 2 calls, {orig:,.0f} prompt tokens, "
          f"and the simulation needs prompt log-probabilities")
    print(f"  ratio ours (explanation only) / original: {measured_ours / orig:.2f}x prompt tokens")


if __name__ == "__main__":
    main()
