"""`shatterbox neurons top|explain|show|report`: units explained and scored by simulation."""

from __future__ import annotations

import json
from typing import Optional

import typer

from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.cli._common import engine_of, EngineOpt, Format, RayAddressOpt, WorkersOpt, _console, _emit_rows, _friendly_errors, _print_arrow, _say, _write_text, app
from shatterbox.errors import InputError


neurons_app = typer.Typer(help="Neurons and factors: top excerpts, explanations written and scored by simulation (offline, or any OpenAI-compatible chat model).",
                          no_args_is_help=True)


app.add_typer(neurons_app, name="neurons")


FactorsOpt = typer.Option(None, "--factors", help="A factors file fitted on the store: explain its factors (coded at the layer) instead of MLP neurons.")


def _units_for(store, factors_path: Optional[str]):
    """(make_units(layer), the layers available, excluded units): MLP neurons, or the factors of a factors file."""
    from shatterbox.neurons import Units

    if factors_path is None:
        return (lambda l: Units.neurons(store, l)), store.layers("mlp"), []
    from shatterbox.factors import Factors

    factors = Factors.load(factors_path)
    dead = [int(i) for i, level in enumerate(factors.levels_) if level == "dead"]
    return (lambda l: Units.factors(store, factors, l, factors_path)), [l for l in store.layers("hidden") if l in factors.layers], dead


def _neuron_layers(spec: str, available: list[int], what: str) -> list[int]:
    from shatterbox.store import parse_layers

    if not available:
        raise InputError(f"the store holds no {what}: harvest with --what {'mlp' if what.startswith('MLP') else 'hidden'}")
    chosen = available if spec.strip().lower() == "all" else parse_layers(spec, 10**6)  # checked against the store below
    missing = [l for l in chosen if l not in available]
    if missing:
        raise InputError(f"the store has no {what} of layer {missing[0]}: it holds layers {available}")
    return chosen


@neurons_app.command("top")
def neurons_top(
    store: str = typer.Argument(..., help="A store with MLP activations (harvest --what mlp), or hidden states with --factors."),
    layer: int = typer.Option(..., "--layer", "-l", help="The layer."),
    unit: int = typer.Option(..., "--unit", "-u", help="The neuron (or factor) number, from 0."),
    factors: Optional[str] = FactorsOpt,
    k: int = typer.Option(10, "--k", help="How many top excerpts."),
    n_random: int = typer.Option(5, "--random", help="How many random excerpts."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random excerpts."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table (coloured excerpts), csv or json."),
    engine: str = EngineOpt,
    ray_address: Optional[str] = RayAddressOpt,
    workers: Optional[int] = WorkersOpt,
) -> None:
    """A unit's top-activating excerpts, coloured by activation, its quantiles and random excerpts — read from the store."""
    import pyarrow as pa

    from shatterbox.neurons import records
    from shatterbox.render.neurons import excerpt_marked, excerpt_text
    from shatterbox.store import Store

    with _friendly_errors():
        opened = Store.open(store)
        make, available, _ = _units_for(opened, factors)
        _neuron_layers(str(layer), available, "MLP activations" if factors is None else "hidden states")
        units = make(layer)
        units.check([unit])
        found = records(units, [unit], n_explain=(k + 1) // 2, n_top=max(k // 2, 1), n_random=max(n_random, 1), seed=seed,
                        engine=engine_of(engine, ray_address, workers))[0]
        top = found.top[:k]
        randoms = (found.explain_random + found.score_random)[:n_random]
        if fmt is not Format.table:
            rows = [{"kind": kind, "rank": i + 1, "max": float(e.activations.max()), "sentence_id": e.sentence_id, "text": " ".join(e.tokens),
                     "tokens": e.tokens, "activations": [round(float(a), 4) for a in e.activations]}
                    for kind, group in (("top", top), ("random", randoms)) for i, e in enumerate(group)]
            if fmt is Format.json:
                typer.echo(json.dumps({"unit": found.name, "maximum": found.maximum, "quantiles": found.quantiles, "excerpts": rows}, ensure_ascii=False))
            else:
                _print_arrow(pa.Table.from_pylist([{k2: v for k2, v in r.items() if k2 not in ("tokens", "activations")} for r in rows]), fmt)
            return
        q = found.quantiles
        console = _console()
        console.print(f"{found.name}: largest activation {found.maximum:.3f}; per-sentence maximum quantiles 50 % {q['q50']:.3f}, "
                      f"90 % {q['q90']:.3f}, 99 % {q['q99']:.3f}", markup=False, highlight=False)
        coloured = console.color_system is not None  # piped: the activations are written, not shaded
        shown = "darker = stronger, 0-10 of the largest" if coloured else "tokens that fire followed by [their activation]"
        draw = excerpt_text if coloured else excerpt_marked
        console.print(f"top excerpts ({shown}):", markup=False, highlight=False)
        for e in top:
            console.print(f"{float(e.activations.max()):7.3f}  ", draw(e, found.maximum), sep="", markup=False, highlight=False)
        console.print("random excerpts:", markup=False, highlight=False)
        for e in randoms:
            console.print(f"{float(e.activations.max()):7.3f}  ", draw(e, found.maximum), sep="", markup=False, highlight=False)


@neurons_app.command("explain", epilog=PROGRESS_HELP)
def neurons_explain(
    store: str = typer.Argument(..., help="A store with MLP activations (harvest --what mlp), or hidden states with --factors."),
    layers: str = typer.Option("all", "--layers", "--layer", "-l", help="Layers: all, a range or a list (e.g. 3, 1-6)."),
    units: Optional[str] = typer.Option(None, "--units", "-u", help="Units of each layer: a range or a list, e.g. 0-99 or 3,17."),
    sample: Optional[int] = typer.Option(None, "--sample", help="Instead of --units: this many units per layer, drawn with --seed (dead factors left out)."),
    factors: Optional[str] = FactorsOpt,
    out: Optional[str] = typer.Option(None, "--out", "-o", help="A folder for the results: written part by part, so a killed run resumes there."),
    html_out: Optional[str] = typer.Option(None, "--html", help="Also write a self-contained HTML report."),
    llm: Optional[str] = typer.Option(None, "--llm", help="An OpenAI-compatible endpoint (e.g. http://127.0.0.1:8080/v1) that writes the explanations and judges detection and fuzzing."),
    llm_model: str = typer.Option("default", "--llm-model", help="The model name sent to --llm."),
    llm_key: Optional[str] = typer.Option(None, "--llm-key", help="The API key for --llm (default: $SHATTERBOX_LLM_KEY, then $OPENAI_API_KEY)."),
    llm_timeout: float = typer.Option(60.0, "--llm-timeout", help="Seconds to wait for one answer."),
    simulator: str = typer.Option("offline", "--simulator", help="offline (reads the explanation's rules), or a local causal LM folder read in process (digit probabilities)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show the estimated calls and tokens of an --llm run."),
    n_explain: int = typer.Option(10, "--n-explain", help="Top excerpts the explainer sees (and as many random ones)."),
    n_top: int = typer.Option(10, "--n-top", help="Held-out top excerpts the scores use."),
    n_random: int = typer.Option(10, "--n-random", help="Held-out random excerpts the scores use."),
    seed: int = typer.Option(0, "--seed", help="Seed of --sample, random excerpts and bootstrap."),
    part_units: int = typer.Option(64, "--part-units", help="Units per part written to --out (what a killed run can lose)."),
    rows: int = typer.Option(20, "--rows", help="Rows of the printed table (the best and the worst half each)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (every unit)."),
    engine: str = EngineOpt,
    ray_address: Optional[str] = RayAddressOpt,
    workers: Optional[int] = WorkersOpt,
) -> None:
    """Explain units from their top excerpts and score each explanation by simulation on held-out excerpts, next to a random, a shuffled and a token-lookup baseline."""
    import pyarrow as pa

    from shatterbox.neurons import (ChatClient, LLMExplainer, LLMJudge, LMSimulator, NeuronSettings, TokenExplainer, TokenSimulator, estimate,
                                    explain_units, parse_units, sample_units)
    from shatterbox.render.neurons import summary
    from shatterbox.store import Store

    with _friendly_errors():
        opened = Store.open(store)
        make, available, dead = _units_for(opened, factors)
        chosen_layers = _neuron_layers(layers, available, "MLP activations" if factors is None else "hidden states")
        if (units is None) == (sample is None):
            raise InputError("give --units (e.g. 0-99) or --sample N")
        count = make(chosen_layers[0]).count
        per_layer = {l: parse_units(units, count) if units is not None else sample_units(count, sample, seed=seed, layer=l, exclude=dead) for l in chosen_layers}
        total = sum(len(u) for u in per_layer.values())
        settings = NeuronSettings(n_explain=n_explain, n_top=n_top, n_random=n_random, seed=seed)
        sim = TokenSimulator() if simulator == "offline" else LMSimulator.from_pretrained(simulator)
        explainer, judge = TokenExplainer(), None  # None: the simulator judges too, sharing its simulations with the scorer
        if llm is not None:
            client = ChatClient(llm, llm_model, api_key=llm_key, timeout=llm_timeout)
            explainer, judge = LLMExplainer(client), LLMJudge(client)
            guess = estimate(total, opened.n_tokens / max(opened.n_sentences, 1), n_explain, n_top, n_random)
            _say(f"estimated before the cache: {guess.calls:,} calls, ~{guess.prompt_tokens:,} prompt + ~{guess.completion_tokens:,} completion tokens "
                 f"for {total} units (answers are cached in {client.cache}: a re-run costs nothing)")
            if dry_run:
                return
        elif dry_run:
            raise InputError("--dry-run estimates an --llm run: add --llm URL")
        with progress_of("explain", "units", total) as tick:
            table = explain_units(make, per_layer, out, explainer=explainer, simulator=sim, judge=judge, settings=settings, part_units=part_units,
                                  progress=tick, engine=engine_of(engine, ray_address, workers))
        found = table.to_pylist()
        if html_out is not None:
            from shatterbox.neurons import read_run
            from shatterbox.render.neurons import neurons_page

            record = read_run(out)[0] if out else {"kind": make(chosen_layers[0]).kind, "store": {"path": store}, "settings": settings.to_dict(),
                                                   "explainer": explainer.name, "simulator": sim.name, "judge": (judge or sim).name}
            _write_text(html_out, neurons_page(record, found))
        if fmt is not Format.table:
            _print_arrow(table.drop_columns(["excerpts"]), fmt)
            return
        _print_arrow(pa.Table.from_pylist(_score_rows(found, rows)), fmt, keys=2)
        _say(_shown_of(len(found), rows))
        _say(_summary_line(summary(found), len(found)) + (f"; results in {out}" if out else "") + (f"; wrote {html_out}" if html_out else ""))


def _summary_line(s: dict, units: int) -> str:
    """The run's means over the units that fire, with the dead ones counted beside them."""
    if s["dead"] == units:
        return f"{units} units: all dead (never fire on this store); nothing to average"
    c, dead = s["correlation"], f" + {s['dead']} dead (never fire; left out of the means)" if s["dead"] else ""
    return (f"{units - s['dead']} units{dead}: mean correlation {_num(c['explanation'])} (random {_num(c['random'])}, "
            f"shuffled {_num(c['shuffled'])}, token lookup {_num(c['token_lookup'])}); detection {_num(s['detection']['explanation'])}, "
            f"fuzzing {_num(s['fuzzing']['explanation'])} (chance 0.5); {100 * s['flagged']:.0f} % flagged (not beating the shuffled and "
            f"token-lookup baselines by 0.05); {s['seconds_per_unit']:.3f} s per unit")


def _num(v: float | None, digits: int = 3) -> str:
    """A score as printed: "–" for none (a dead unit, an undefined score), never "nan"."""
    return "–" if v is None or v != v else f"{v:.{digits}f}"


def _score_rows(found: list[dict], rows: int) -> list[dict]:
    """The best and the worst ``rows // 2`` units (all when there are few), as printed rows."""
    shown = found if len(found) <= rows else found[:rows - rows // 2] + found[-(rows // 2):]
    return [{"layer": r["layer"], "unit": r["unit"], "explanation": r["explanation"], "correlation": _num(r["correlation"], 4),
             "95 % interval": "–" if r["correlation_low"] is None else f"{r['correlation_low']:.2f} – {r['correlation_high']:.2f}",
             "random": _num(r["random_correlation"], 4), "token lookup": _num(r["token_lookup_correlation"], 4),
             "detection": _num(r["detection"], 4), "fuzzing": _num(r["fuzzing"], 4), "flag": r["reason"] or ""} for r in shown]


@neurons_app.command("show")
def neurons_show(
    run: str = typer.Argument(..., help="A results folder of `shatterbox neurons explain --out`."),
    search: Optional[str] = typer.Option(None, "--search", "-s", help="Only units whose explanation contains this text (case-insensitive)."),
    rows: int = typer.Option(20, "--rows", help="Rows of the printed table."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """The units of a run sorted by score (searchable by explanation)."""
    import pyarrow as pa

    from shatterbox.neurons import read_run

    with _friendly_errors():
        record, table = read_run(run)
        found = table.to_pylist()
        if search:
            found = [r for r in found if search.lower() in r["explanation"].lower()]
        if not found:
            raise InputError("no unit matches" + (f" {search!r}: try another word" if search else ": the run has no finished part yet"))
        if fmt is not Format.table:
            _print_arrow(pa.Table.from_pylist(found).drop_columns(["excerpts"]), fmt)
            return
        _print_arrow(pa.Table.from_pylist(_score_rows(found, rows)), fmt, keys=2)
        _say(_shown_of(len(found), rows))


def _shown_of(total: int, rows: int) -> str:
    """What the printed table holds out of ``total`` units."""
    if total <= rows:
        return f"all {total} units shown"
    return f"the best {rows - rows // 2} and the worst {rows // 2} of {total:,} units shown (--rows for more, --format csv for all)"


@neurons_app.command("causal", epilog=PROGRESS_HELP)
def neurons_causal(
    run: str = typer.Argument(..., help="A results folder of `shatterbox neurons explain --out`."),
    limit: int = typer.Option(100, "--limit", "-n", help="Sentences of the run's store each unit is ablated over (a seeded sample)."),
    rows: int = typer.Option(15, "--rows", help="Rows of the printed table."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (every unit) or json."),
) -> None:
    """Each unit of a run ablated (a neuron set to its mean, a factor removed): how far the sentence embedding moves, beside
    how well its explanation simulates it, and the rank correlation of the two."""
    from shatterbox.patching import causal_units

    with _friendly_errors():
        with progress_of("ablate each unit", "runs") as tick:
            joined = causal_units(run, limit=limit, progress=tick)
        _emit_rows(joined, fmt, top=rows)


@neurons_app.command("report")
def neurons_report(
    run: str = typer.Argument(..., help="A results folder of `shatterbox neurons explain --out`."),
    out: str = typer.Option(..., "--out", "-o", help="The HTML file to write."),
) -> None:
    """A self-contained HTML report of a run: scores against the baselines, histogram, every unit with its top excerpts."""
    from shatterbox.neurons import read_run
    from shatterbox.render.neurons import neurons_page

    with _friendly_errors():
        record, table = read_run(run)
        _write_text(out, neurons_page(record, table.to_pylist()))
        _say(f"wrote {out}: {table.num_rows} units")
