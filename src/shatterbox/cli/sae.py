"""`shatterbox sae import|export|score|probe|absorption|neuronpedia`: SAEs held to the field's scores and file formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from shatterbox.cli._common import Format, _friendly_errors, _print_arrow, _say, app
from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.options import SaeOptions, typer_option

sae_app = typer.Typer(help="SAEs held to the field: SAELens, sparsify and Gemma Scope files; CE loss recovered; sparse probing; "
                           "feature absorption; Neuronpedia export.", no_args_is_help=True)
app.add_typer(sae_app, name="sae")

CONTROL_HELP = "Factors fitted the same way on the random-weight store of the same corpus (harvest --random-weights SEED, then factors fit): scored beside."


def _factors(path: str):
    from shatterbox.factors import Factors

    return Factors.load(path)


def _control(path: Optional[str]):
    """(control factors, their store, their model), or None; the library checks that they are the control."""
    if path is None:
        return None
    from shatterbox.store import harvested_model

    control = _factors(path)
    store = control.open_store()
    return control, store, harvested_model(store)


def _table(rows: list[dict], fmt: Format) -> None:
    import pyarrow as pa

    _print_arrow(pa.Table.from_pylist(rows), fmt)


@sae_app.command("import", epilog=PROGRESS_HELP)
def sae_import(
    path: str = typer.Argument(..., help="A SAELens folder (cfg.json + sae_weights.safetensors), a sparsify folder (cfg.json + sae.safetensors), "
                                         "Gemma Scope's params.npz / params.safetensors, or a shatterbox SAE file."),
    store: str = typer.Argument(..., help="A store of the model the SAE was trained on, holding the hidden layer it reads."),
    out: str = typer.Option(..., "--out", "-o", help="The factors file to write (.safetensors): every factors command then reads it."),
    layer: Optional[int] = typer.Option(None, "--layer", help="The hidden state the SAE reads (default: the one its file names; "
                                                              "blocks.L.hook_resid_post is hidden state L+1)."),
    file_format: str = typer.Option("auto", "--sae-format", help="auto, saelens, sparsify, gemmascope or shatterbox."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """Read an SAE of another tool as factors of a store, scored on its held-out tokens like a fit of ours."""
    from shatterbox.sae import read_sae, sae_factors

    with _friendly_errors():
        sae = read_sae(path, format=file_format)
        with progress_of("score the SAE on the store", "layers") as tick:
            factors = sae_factors(sae, store, layer=layer)
            tick(1, 1)
        factors.save(out)
        report = factors.reports[factors.layers[0]]
        if fmt is Format.json:
            typer.echo(json.dumps(factors.to_dict()))
            return
        _table([{"layer": factors.layers[0], "format": sae.format, "latents": sae.model.n_factors, "activation": sae.model.activation,
                 "variance explained": report.variance_explained, "PCA, as many components": report.pca_variance_explained,
                 "mean L0": report.mean_l0, "dead %": 100 * report.dead_fraction, "dense %": 100 * report.dense_fraction,
                 "flag": "below PCA" if report.flag else ""}], fmt)
        _say(f"saved to {out}: `shatterbox factors show {out} N`, `shatterbox sae score {out}`")


@sae_app.command("export")
def sae_export(
    path: str = typer.Argument(..., help="A factors file of SAEs (factors fit --kind sae, or sae import)."),
    out: str = typer.Option(..., "--out", "-o", help="The folder to write, in SAELens's layout (cfg.json + sae_weights.safetensors)."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Which layer's SAE (needed when the file holds several)."),
) -> None:
    """Write one layer's SAE so that SAELens loads it (`SAE.load_from_disk`), its normalisation folded in."""
    from shatterbox.sae import save_saelens

    with _friendly_errors():
        folder = save_saelens(_factors(path), out, layer=layer)
        _say(f"wrote {folder} (SAELens: sae_lens.SAE.load_from_disk({str(folder)!r}))")


@sae_app.command("score", epilog=PROGRESS_HELP)
def sae_score(
    path: str = typer.Argument(..., help="A factors file of SAEs fitted on a store (factors fit --kind sae --per-layer, or sae import)."),
    texts: int = typer_option(SaeOptions, "texts"),
    control: Optional[str] = typer.Option(None, "--control", help=CONTROL_HELP),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """Per layer: held-out variance explained (against PCA with as many components), mean L0, dead and dense latents,
    and the loss recovered when the layer is spliced with its reconstruction (a decoder's LM loss; an encoder's
    sentence embedding)."""
    from shatterbox.sae import control_note, sae_scores
    from shatterbox.store import harvested_model

    with _friendly_errors():
        factors = _factors(path)
        model = harvested_model(factors.open_store())
        checked = _control(control)
        with progress_of("splice each layer with its reconstruction", "models") as tick:
            scores = sae_scores(factors, model, texts=texts, control=checked, progress=tick)
        if fmt is Format.json:
            typer.echo(json.dumps(scores.to_dict()))
            return
        rows = scores.table()
        names = {"variance_explained": "variance explained", "pca_variance_explained": "PCA, as many components", "mean_l0": "mean L0",
                 "dead_fraction": "dead", "dense_fraction": "dense", "recovered": "CE loss recovered" if scores.downstream == "ce" else "embedding recovered",
                 "increase": "loss increase (nats)", "control variance_explained": "control: variance explained",
                 "control recovered": "control: recovered", "flag": "flag"}
        _table([{names[k]: v for k, v in row.items() if k in names} | {"layer": row["layer"]} for row in rows], fmt)
        note = control_note(rows)
        if note:
            _say(note)
        if checked is None:
            _say("no control: fit the same SAE on a random-weight store (harvest --random-weights 0) and pass it with --control")


@sae_app.command("probe", epilog=PROGRESS_HELP)
def sae_probe(
    path: str = typer.Argument(..., help="A factors file of SAEs fitted on a store."),
    prop: str = typer.Argument(..., help="pos or supersense (the WordNet headword), or with --level sentence a label column (the sentiment corpus's label)."),
    level: str = typer.Option("token", "--level", help="token (a WordNet headword) or sentence (codes pooled over the sentence's word tokens)."),
    layer: Optional[int] = typer.Option(None, "--layer", help="The layer whose SAE is probed (default: the first fitted)."),
    ks: str = typer_option(SaeOptions, "ks"),
    seeds: int = typer_option(SaeOptions, "seeds"),
    control: Optional[str] = typer.Option(None, "--control", help=CONTROL_HELP),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """Sparse probing (SAEBench): how well k latents read a property, against k random latents, a dense probe on the
    residual stream and the majority class."""
    from shatterbox.sae import sparse_probing

    with _friendly_errors():
        factors = _factors(path)
        checked = _control(control)
        with progress_of(f"sparse probing of {prop}", "tasks") as tick:
            result = sparse_probing(factors, prop, layer=layer, level=level, ks=ks, seeds=seeds, progress=tick,
                                    control=(checked[0], None) if checked else None)
        if fmt is Format.json:
            typer.echo(json.dumps({"result": result.to_dict()}))
            return
        rows = [{"k": row["k"], "accuracy": row["accuracy"], "± sd": row["accuracy_sd"], f"{row['k']} random latents": row["control"],
                 "dense probe": row["dense"], "majority": row["majority"]}
                | ({"random-weight SAE": row["random_weights"]} if "random_weights" in row else {}) | {"flag": row["flag"]}
                for row in result.summary()]
        _say(f"{prop} at layer {result.layer}: {len(result.classes)} task{'s' if len(result.classes) > 1 else ''} (one class against the rest, "
             f"balanced), mean over tasks, ± sd over {seeds} seeds")
        _table(rows, fmt)


@sae_app.command("absorption", epilog=PROGRESS_HELP)
def sae_absorption(
    path: str = typer.Argument(..., help="A factors file of SAEs fitted on a store."),
    layer: Optional[int] = typer.Option(None, "--layer", help="The layer whose SAE is measured (default: the first fitted)."),
    words: int = typer_option(SaeOptions, "words"),
    seeds: int = typer_option(SaeOptions, "seeds"),
    control: Optional[str] = typer.Option(None, "--control", help=CONTROL_HELP),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """Feature absorption on the first-letter task (SAEBench): how much of "starts with L" token-specific latents carry
    when the letter's own latents stay silent."""
    from shatterbox.sae import absorption, absorption_summary
    from shatterbox.store import harvested_model

    with _friendly_errors():
        factors = _factors(path)
        model = harvested_model(factors.open_store())
        checked = _control(control)
        results = []
        with progress_of("first-letter absorption", "seeds") as tick:
            for seed in range(seeds):
                results.append(absorption(factors, model, layer=layer, words=words, seed=seed, control=checked[0::2] if checked else None))
                tick(seed + 1, seeds)
        if fmt is Format.json:
            typer.echo(json.dumps({"SAE": [r.to_dict() for r in results]}))
            return
        rows = [{"SAE": r["sae"], "absorption fraction": r["absorption_fraction"], "± sd": r["absorption_fraction_sd"],
                 "full absorption": r["full_absorption"], "main latents per letter": r["splits"], "letter probe accuracy": r["probe_accuracy"],
                 "letters": r["classes"], "flag": r["flag"]} for r in absorption_summary(results)]
        _table(rows, fmt)
        _say("lower is better; the letter probe must read the letters (accuracy well above 1/letters) for the fractions to mean anything")


@sae_app.command("neuronpedia", epilog=PROGRESS_HELP)
def sae_neuronpedia(
    path: str = typer.Argument(..., help="A factors file of SAEs fitted on a store."),
    factor: int = typer.Argument(..., help="The latent, numbered as the factors file numbers them."),
    out: str = typer.Option(..., "--out", "-o", help="The JSON file to write (Neuronpedia's feature format)."),
    layer: Optional[int] = typer.Option(None, "--layer", help="The layer whose codes are read (default: the first fitted)."),
) -> None:
    """Export one latent as a Neuronpedia feature: top excerpts, activation histogram, explanation with scores, and the
    tokens its decoder row promotes and suppresses (decoders)."""
    from shatterbox.models import has_language_model_head
    from shatterbox.sae import neuronpedia_feature
    from shatterbox.store import harvested_model

    with _friendly_errors():
        factors = _factors(path)
        model = harvested_model(factors.open_store())
        with progress_of(f"feature {factor}", "steps") as tick:
            feature = neuronpedia_feature(factors, factor, layer=layer, model=model if has_language_model_head(model) else None)
            tick(1, 1)
        Path(out).write_text(json.dumps(feature, ensure_ascii=False, allow_nan=False), encoding="utf-8")
        _say(f"wrote {out}: feature {factor} of {feature['layer']}, fires on {100 * feature['frac_nonzero']:.2f} % of tokens; "
             f"explanation: {feature['explanations'][0]['description']}")

