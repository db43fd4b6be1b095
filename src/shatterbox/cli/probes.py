"""`shatterbox probe` and `shatterbox project`: where a property becomes readable, and the projector."""

from __future__ import annotations

import json
from typing import Optional

import typer

from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.cli._common import Format, _friendly_errors, _layers_option, _print_arrow, _say, _write_text, app
from shatterbox.errors import InputError
from shatterbox.options import ProbeOptions, ProjectOptions, typer_option


@app.command(epilog=PROGRESS_HELP)
def probe(
    store: str = typer.Argument(..., help="A store with hidden states (shatterbox harvest wordnet --where kind=example ...)."),
    prop: str = typer.Option("pos", "--property", "-p", help="Token level: pos, supersense or sense (of the WordNet headword); sentence level: a label column of the corpus."),
    level: str = typer_option(ProbeOptions, "level"),
    kind: str = typer_option(ProbeOptions, "kind"),
    layers: str = typer.Option("all", "--layers", help="Hidden layers to probe: all, or e.g. 0-6, 1,3."),
    folds: int = typer_option(ProbeOptions, "folds"),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Use at most this many examples (a seeded sample)."),
    random_store: Optional[str] = typer.Option(None, "--random", help="The same corpus harvested with --random-weights: its curves are the baseline."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Also write a self-contained HTML page with the plot."),
    seed: int = typer_option(ProbeOptions, "seed"),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (one row per layer) or json."),
    causal: bool = typer.Option(False, "--causal", help="Also: does the model use it? Project each layer's probe directions out of 100 sentences and measure the embedding change, against as many random directions."),
) -> None:
    """From which layer a property is readable: probe accuracy, control-task accuracy and selectivity per layer (± 95 % over folds)."""
    import pyarrow as pa

    from shatterbox.probes import probe as run_probe
    from shatterbox.store import Store, check_control

    with _friendly_errors():
        opened = Store.open(store)
        if random_store:
            check_control(opened, Store.open(random_store), parameter="random")
        chosen = _layers_option(opened, layers)
        results = []
        for path in [opened] + ([Store.open(random_store)] if random_store else []):
            with progress_of(f"probe {prop}" + (" (random weights)" if results else ""), "fits") as tick:
                results.append(run_probe(path, prop, level=level, kind=kind, layers=chosen, folds=folds, limit=limit, seed=seed, progress=tick))
        result, control = results[0], (results[1] if len(results) > 1 else None)
        if out is not None:
            from shatterbox.render.probes import probes_page

            _write_text(out, probes_page([(result, control)]))
        directions = _directions(opened, prop, chosen) if causal else None
        if fmt is Format.json:
            typer.echo(json.dumps({"result": result.to_dict(), "random_weights": None if control is None else control.to_dict(),
                                   "causal": None if directions is None else directions.to_dict()}))
            return
        rows = []
        for i, s in enumerate(result.layers):
            row = {"layer": s.layer, "accuracy": s.accuracy, "accuracy ±": s.accuracy_ci, "control": s.control, "control ±": s.control_ci,
                   "selectivity": s.selectivity, "selectivity ±": s.selectivity_ci, "over majority or control": s.over_baseline}
            if control is not None:
                row |= {"random weights: accuracy": control.layers[i].accuracy, "random weights: selectivity": control.layers[i].selectivity}
            rows.append(row | {"flag": s.flag})
        _print_arrow(pa.Table.from_pylist(rows), fmt)
        best = result.best()
        _say(f"{prop} ({level}, {kind} probe): {result.n_examples:,} examples, {result.n_classes} classes, majority class {result.majority:.3f}; "
             f"best at layer {best.layer} ({best.over_baseline:+.3f} over the stronger of control and majority, selectivity "
             f"{best.selectivity:.3f} ± {best.selectivity_ci:.3f}); {result.seconds:.0f} s" + (f"; wrote {out}" if out else ""))
        noted = [s.layer for s in result.layers if s.note]
        if noted:
            _say(f"note: the control task scores below the majority class at {len(noted)} of {len(result.layers)} layers, so selectivity "
                 "overstates them there: read 'over majority or control'")
        weak = [s for s in result.layers if s.flag]
        if weak:
            _say(f"weak: {len(weak)} of {len(result.layers)} layers do not beat the stronger baseline: "
                 + "; ".join(f"layer {s.layer}: {s.flag}" for s in weak))
        if directions is not None:
            _print_directions(directions, prop, fmt)


def _directions(store, prop: str, layers: list[int]):
    """Amnesic probing: each layer's probe directions projected out, against as many random directions."""
    from shatterbox.patching import probe_direction_effects

    with progress_of("remove the probe's directions", "runs") as tick:
        return probe_direction_effects(store, prop, layers=layers, progress=tick)


def _print_directions(effects, prop: str, fmt: Format) -> None:
    import pyarrow as pa

    _print_arrow(pa.Table.from_pylist(effects.rows), fmt)
    _say(f"embedding change (1 - cos) over {effects.n_texts} sentences when each layer's {prop} probe directions are projected out, "
         f"against as many random directions; {effects.seconds:.0f} s")


def _head_pair(text: Optional[str]) -> tuple[int, int] | None:
    """``"3,5"`` -> (3, 5), or one error naming the flag."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise InputError(f"cannot read --ablate {text!r}: write LAYER,HEAD (e.g. 3,5; numbered from 1)")
    return int(parts[0]), int(parts[1])


@app.command(epilog=PROGRESS_HELP)
def project(
    store: str = typer.Argument(..., help="A store with hidden states (shatterbox harvest ... --what hidden)."),
    out: str = typer.Option(..., "--out", "-o", help="The self-contained HTML page to write (scatter, layer slider, hover, PNG export)."),
    method: str = typer_option(ProjectOptions, "method"),
    level: str = typer_option(ProjectOptions, "level"),
    pool: str = typer_option(ProjectOptions, "pool"),
    layers: str = typer.Option("all", "--layers", help="Hidden layers to map: all, or e.g. 1-6, 3."),
    limit: int = typer_option(ProjectOptions, "limit", "--limit", "-n"),
    colour: Optional[str] = typer.Option(None, "--colour", "--color", help="Colour by this label column (default: the first), or 'prediction'."),
    predict: bool = typer.Option(False, "--predict", help="Add the shipped sentiment classifier's prediction and confidence (it runs once per sentence shown)."),
    factors_file: Optional[str] = typer.Option(None, "--factors", help="A factors file fitted on this store: colour by --factor's code."),
    factor: Optional[int] = typer.Option(None, "--factor", help="The factor (from 0) whose code colours the points, at the layer where it matters most."),
    ablate: Optional[str] = typer.Option(None, "--ablate", help="LAYER,HEAD: colour each sentence by how far its embedding moves when that head is mean-ablated in it."),
    seed: int = typer_option(ProjectOptions, "seed"),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json: each map's faithfulness."),
) -> None:
    """Map sentences or tokens to 2-D at every layer (aligned across layers) with each map's trustworthiness and k-NN recall."""
    import pyarrow as pa

    from shatterbox.projector import map_store
    from shatterbox.render.projector import projector_page
    from shatterbox.store import Store

    with _friendly_errors():
        if (factors_file is None) != (factor is None):
            raise InputError("--factors and --factor go together: the factors file and the factor whose code colours the points")
        opened = Store.open(store)
        chosen = _layers_option(opened, layers)
        classifier = None
        if predict:
            from shatterbox.classifiers.sentiment import sentiment

            classifier = sentiment()
        factors = None
        if factors_file is not None:
            from shatterbox.factors import Factors

            factors = Factors.load(factors_file)
        head = _head_pair(ablate)
        what, unit = (f"{method} maps", "layers") if head is None else (f"L{head[0]} H{head[1]} ablated, then {method} maps", "sentences, then layers")
        with progress_of(what, unit, None if head else len(chosen)) as tick:
            points, maps = map_store(opened, method=method, level=level, pool=pool, layers=chosen, limit=limit, seed=seed, ablate=head,
                                     classifier=classifier, factors=factors, factor=factor, progress=tick)
        _write_text(out, projector_page(points, maps, colour=colour))
        rows = [{"layer": m.layer, "trustworthiness": m.trustworthiness, "k-NN recall": m.recall, "k": m.k, "seconds": m.seconds} for m in maps]
        _print_arrow(pa.Table.from_pylist(rows), fmt)
        _say(f"{len(points.texts):,} {level}s mapped by {method} at {len(maps)} layers; wrote {out}")
