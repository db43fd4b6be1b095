"""`shatterbox factors fit|show|word|report`: sparse dictionaries and SAEs over a store."""

from __future__ import annotations

import json
from typing import Optional

import typer

from shatterbox.cli._messages import in_flags
from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.cli._common import engine_of, EngineOpt, Format, RayAddressOpt, WorkersOpt, _friendly_errors, _layers_option, _print_arrow, _say, _store_model, _write_text, app
from shatterbox.errors import InputError


factors_app = typer.Typer(help="Transformer factors: sparse dictionaries and SAEs over a store's hidden states.", no_args_is_help=True)


app.add_typer(factors_app, name="factors")


@factors_app.command("fit", epilog=PROGRESS_HELP)
def factors_fit(
    store: str = typer.Argument(..., help="A store with hidden states (shatterbox harvest ... --what hidden)."),
    out: str = typer.Option(..., "--out", "-o", help="The factors file to write (.safetensors)."),
    kind: str = typer.Option("fista", "--kind", help="fista (non-negative sparse coding, Yun et al.) or sae (sparse autoencoder)."),
    n_factors: int = typer.Option(1024, "--factors", help="How many factors (dictionary atoms / SAE latents)."),
    layers: str = typer.Option("all", "--layers", help="Hidden layers sharing the dictionary: all (1..L) or e.g. 1-6, 2,4."),
    per_layer: bool = typer.Option(False, "--per-layer", help="One dictionary per layer (--factors each) instead of one shared by all."),
    alpha: float = typer.Option(1.0, "--alpha", help="fista: the L1 weight λ (larger: sparser codes)."),
    k: int = typer.Option(32, "--k", help="sae: active latents per token (TopK; the mean over a batch with batchtopk)."),
    activation: str = typer.Option("topk", "--activation", help="sae: topk, batchtopk (k per token on average, a threshold at inference), "
                                                                  "matryoshka (TopK whose nested prefixes reconstruct alone) or relu."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Passes over the sampled tokens (default: 3 for fista, 10 for sae; an SAE at 3 barely beats PCA)."),
    max_tokens: int = typer.Option(50_000, "--max-tokens", help="Tokens sampled from the store per layer (seeded)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fit: the sampled tokens, the initialisation and the batches."),
    seeds: int = typer.Option(1, "--seeds", help="Fit with this many seeds (from --seed) and add each layer's mean ± sd; the first fit is saved."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (one row per layer) or json."),
) -> None:
    """Fit factors shared across layers (or one set per layer); prints held-out variance explained next to PCA with as many components as the mean L0."""

    from shatterbox.factors import ADVICE, fit_factors, spread
    from shatterbox.store import Store

    with _friendly_errors():
        opened = Store.open(store)
        chosen = _layers_option(opened, layers, embeddings=False)
        params = {"n_factors": n_factors, "n_epochs": epochs} | ({"alpha": alpha} if kind == "fista" else {"k": k, "activation": activation})
        with progress_of(f"fit {kind}", "batches") as tick:
            factors = fit_factors(opened, layers=chosen, kind=kind, per_layer=per_layer, max_tokens=max_tokens, seed=seed,
                                  progress=tick, **params)
            others = [fit_factors(opened, layers=chosen, kind=kind, per_layer=per_layer, max_tokens=max_tokens, seed=seed + i, **params)
                      for i in range(1, max(1, seeds))]
        factors.save(out)
        summary = spread([factors, *others]) if others else {}
        if fmt is Format.json:
            typer.echo(json.dumps({**factors.to_dict(), "spread": {str(l): v for l, v in summary.items()}}))
            return
        import pyarrow as pa

        rows = [{"layer": l, "variance explained": r.variance_explained, "PCA, as many components": r.pca_variance_explained,
                 "components": r.pca_components, "mean L0": r.mean_l0, "dead %": 100 * r.dead_fraction}
                | ({f"± sd over {seeds} seeds": summary[l]["variance_explained_sd"]} if summary else {})
                | {"flag": "below PCA" if r.flag else ""} for l, r in factors.reports.items()]
        _print_arrow(pa.Table.from_pylist(rows), fmt)
        weak = [l for l, r in factors.reports.items() if r.flag]
        if weak:
            _say(f"weak: layer{'s' if len(weak) > 1 else ''} {', '.join(map(str, weak))} of {len(factors.reports)} do not beat PCA with as many "
                 f"components (the control); {ADVICE}")
        counts = factors.level_counts()
        _say(f"{factors.n_factors} factors{'' if factors.shared else f' ({n_factors} per layer)'}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; fitted in {factors.fit_seconds:.1f} s; saved to {out}")


@factors_app.command("show", epilog=PROGRESS_HELP)
def factors_show(
    path: str = typer.Argument(..., help="A factors file from `shatterbox factors fit`."),
    factor: int = typer.Argument(..., help="The factor number, from 0."),
    k: int = typer.Option(10, "--k", help="How many top contexts."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Read contexts at this layer (default: where the factor matters most)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """One factor: its level, importance curve over layers and top-activating tokens in context (from the store)."""
    from shatterbox.factors import Factors

    with _friendly_errors():
        factors = Factors.load(path)
        if not 0 <= factor < factors.n_factors:
            raise InputError(f"factor {factor} is out of range: this file has factors 0-{factors.n_factors - 1}")
        curve = factors.importance_[factor]
        at = layer if layer is not None else factors.layers[int(curve.argmax())]
        store = factors.open_store()
        with progress_of(f"factor {factor}: reading the store", "tokens") as tick:
            top = store.top_rows(f"hidden_{at}", factor, k, transform=lambda h: factors.codes(h, at, units=[factor]), where="not special",
                                 progress=tick)
        if fmt is Format.table:
            home = factors.home(factor)
            _say(f"factor {factor}{'' if home is None else f' (of the layer {home} dictionary)'}: {factors.levels_[factor]}-level; importance by layer "
                 + ", ".join(f"{l}: {v:.2f}" for l, v in zip(factors.layers, curve)) + f"; contexts at layer {at}")
        _print_arrow(top, fmt)


@factors_app.command("word")
def factors_word(
    path: str = typer.Argument(..., help="A factors file from `shatterbox factors fit` (on a store with sense labels, e.g. wordnet-senses)."),
    word: str = typer.Argument(..., help="An ambiguous word, e.g. heavy."),
    layer: Optional[int] = typer.Option(None, "--layer", help="The layer whose codes group the occurrences (default: the first fitted)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """A word's sense-labelled occurrences grouped by the factors that fire, scored against the senses and k-means."""
    import pyarrow as pa

    from shatterbox.factors import Factors, word_senses

    with _friendly_errors():
        factors = Factors.load(path)
        found = word_senses(factors, factors.open_store(), word, layer=layer)
        if fmt is Format.json:
            typer.echo(json.dumps(found, ensure_ascii=False))
            return
        _say(f"{found['word']}: {found['senses']} senses, {found['occurrences']} occurrences at layer {found['layer']}; adjusted Rand index "
             f"with the senses: factor groups {found['factor_ari']:.3f}, k-means {found['kmeans_ari']:.3f}, shuffled senses {found['chance_ari']:.3f}"
             + (f"; weak: {found['flag']}" if found["flag"] else ""))
        rows = sorted(found["rows"], key=lambda r: (r["group"], r["synset"]))
        _print_arrow(pa.Table.from_pylist([{"factor group": r["group"], "sense": r["synset"], "sentence": r["text"]} for r in rows]), fmt)


@factors_app.command("report", epilog=PROGRESS_HELP)
def factors_report_cmd(
    path: str = typer.Argument(..., help="A factors file from `shatterbox factors fit`."),
    out: str = typer.Option(..., "--out", "-o", help="The HTML file to write."),
    control: Optional[str] = typer.Option(None, "--control", help="Factors fitted the same way on a random-weight store (harvest --random-weights)."),
    per_level: int = typer.Option(3, "--per-level", help="Factors shown per level."),
    k: int = typer.Option(6, "--k", help="Contexts per factor."),
    engine: str = EngineOpt,
    ray_address: Optional[str] = RayAddressOpt,
    workers: Optional[int] = WorkersOpt,
) -> None:
    """A self-contained HTML report: quality per layer (with PCA and the control), factors by level with contexts, polysemy."""
    from shatterbox.factors import Factors, factors_report
    from shatterbox.render.factors import factors_page

    with _friendly_errors():
        factors = Factors.load(path)
        pair = None
        if control is not None:
            c = Factors.load(control)
            pair = (c, c.open_store())
        store = factors.open_store()
        loaded = _store_model(store)
        with progress_of("report", "steps (a pass over the store per layer, polysemy, downstream, control)") as tick:
            report = factors_report(factors, store, per_level=per_level, k=k, control=pair, loaded=loaded,
                                    engine=engine_of(engine, ray_address, workers), progress=tick)
        _write_text(out, factors_page(report))
        _say(f"wrote {out}: " + ", ".join(f"{len(v)} {level}" for level, v in report["sections"].items()) + " factors shown"
             + (f", polysemy of {len(report['polysemy'])} words" if report["polysemy"] else ""))
        for section, why in report["skipped"].items():
            _say(f"warning: no {section} section: {in_flags(why)}")
