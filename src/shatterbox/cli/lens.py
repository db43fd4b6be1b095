"""`shatterbox lens show|fit` and `shatterbox steer`: what each layer already predicts, and what pushing along a direction does."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from shatterbox.cli._common import ReportFormat, _emit_result, _friendly_errors, _say, app
from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.errors import InputError
from shatterbox.options import LensOptions, SteerOptions, TunedLensOptions, typer_option

lens_app = typer.Typer(help="Lenses: what each layer already predicts (logit lens, tuned lens, classifier lens).", no_args_is_help=True)
app.add_typer(lens_app, name="lens")


@lens_app.command("show")
def lens_show(
    text: str = typer.Argument(..., help="The text read at every layer and position."),
    lens: str = typer_option(LensOptions, "lens"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="A decoder for the logit and tuned lens (default gemma-3-270m); a classifier for the classifier lens (default: the shipped sentiment classifier)."),
    tuned: Optional[str] = typer.Option(None, "--tuned", help="With --lens tuned: the tuned lens file (fit one with `shatterbox lens fit STORE`)."),
    k: int = typer_option(LensOptions, "k", "-k"),
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f", help="text (table over layers x positions), csv (one row per layer and position), json or html."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write csv/json/html to this file instead of standard output."),
) -> None:
    """The logit lens (each layer through the model's final norm and unembedding), the tuned lens (each layer translated
    first), or the classifier lens (an encoder's pooled sentiment head at each layer)."""
    from shatterbox.lens import lens_of
    from shatterbox.models import DEFAULT_MODEL, load

    with _friendly_errors():
        name = model if model is not None else (DEFAULT_MODEL if lens == "classifier" else "gemma-3-270m")
        result = lens_of(load(name), text, lens=lens, k=k, tuned=tuned)
        _emit_result(result, [], fmt.value, out)


@lens_app.command("fit", epilog=PROGRESS_HELP)
def lens_fit(
    store: str = typer.Argument(..., help="A store of a decoder holding every hidden layer (harvest --model gemma-3-270m --layers all)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="The tuned lens file (default: tuned-lens.safetensors in the store's folder)."),
    epochs: int = typer_option(TunedLensOptions, "epochs"),
    learning_rate: float = typer_option(TunedLensOptions, "learning_rate"),
    batch_tokens: int = typer_option(TunedLensOptions, "batch_tokens"),
    held_out: float = typer_option(TunedLensOptions, "held_out"),
    max_tokens: int = typer_option(TunedLensOptions, "max_tokens"),
    seed: int = typer_option(TunedLensOptions, "seed"),
) -> None:
    """Train a tuned lens on a store (resumable: run it again after an interruption), then print each layer's held-out KL
    to the final layer beside the logit lens's."""
    from rich.table import Table

    from shatterbox.cli._common import _console
    from shatterbox.lens import TUNED_FILE, TunedLens

    with _friendly_errors():
        if not Path(store).is_dir():
            raise InputError(f"no activation store at {store!r}: harvest one first (shatterbox harvest CORPUS OUT --model MODEL --layers all)")
        target = Path(out) if out is not None else Path(store) / TUNED_FILE
        lens = TunedLens(epochs=epochs, learning_rate=learning_rate, batch_tokens=batch_tokens, held_out=held_out, max_tokens=max_tokens, seed=seed)
        with progress_of("tuned lens", "steps") as tick:
            lens.fit(store, checkpoint=target.with_name(target.name + ".partial"), progress=tick)
        lens.save(target)
        table = Table(title=f"held-out KL to the final layer ({lens.n_held_:,} tokens; trained on {lens.n_train_:,})")
        for column in ("layer", "logit lens KL", "tuned lens KL", "ratio", "logit top-1", "tuned top-1"):
            table.add_column(column, justify="right")
        for r in lens.scores_:
            table.add_row(str(r["layer"]), f"{r['logit_kl']:.3f}", f"{r['tuned_kl']:.3f}", "-" if r["ratio"] is None else f"{r['ratio']:.1f}x",
                          f"{r['logit_top1']:.2f}", f"{r['tuned_top1']:.2f}")
        _console().print(table)
        _say(f"wrote {target}")


@app.command(epilog=PROGRESS_HELP)
def steer(
    prompts: List[str] = typer.Argument(..., help="Prompts to continue (e.g. 'The weather today is')."),
    model: str = typer.Option("gemma-3-270m", "--model", "-m", help="A decoder."),
    layer: Optional[int] = typer_option(SteerOptions, "layer", "-l"),
    diffmean: Optional[str] = typer.Option(None, "--diffmean", help="DiffMean direction: 'sentiment' (the shipped sentences, harvested once) or a store with a label column (see --labels)."),
    probe: Optional[str] = typer.Option(None, "--probe", help="Probe direction: a store with a label column (see --labels); the probe's weights for the first value."),
    factor: Optional[str] = typer.Option(None, "--factor", help="Factor direction: FILE:INDEX of a factors file fitted on a store of this model (an SAE latent's decoder row)."),
    vector: Optional[str] = typer.Option(None, "--vector", help="A .npy file holding one vector of the hidden size."),
    labels: str = typer.Option("label=positive,negative", "--labels", help="For --diffmean STORE and --probe: COLUMN=FIRST,SECOND (first minus second)."),
    alphas: str = typer_option(SteerOptions, "alphas"),
    positions: str = typer_option(SteerOptions, "positions"),
    max_new_tokens: int = typer_option(SteerOptions, "max_new_tokens"),
    concept: str = typer.Option("sentiment", "--concept", help="sentiment (the shipped classifier scores each continuation) or comma-separated concept words."),
    target: str = typer.Option("positive", "--target", help="With --concept sentiment: the label scored (positive or negative)."),
    instruction: Optional[str] = typer.Option(None, "--instruction", help="The prompting baseline's instruction before each prompt (default from the concept; '' for none)."),
    seed: int = typer_option(SteerOptions, "seed"),
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f", help="text, csv (one row per continuation), json or html."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write csv/json/html to this file instead of standard output."),
) -> None:
    """Generate while adding strength x a direction to one layer's residual stream; score each continuation for the concept
    and for fluency, beside a random direction of the same length, prompting and (for the sentiment concept) the DiffMean
    of the shipped sentiment sentences."""
    from shatterbox.models import language_model_parts, load
    from shatterbox.steering import middle_layer, parse_alphas, steer as run_steer

    with _friendly_errors():
        loaded = load(model)
        language_model_parts(loaded)  # refused before any direction is built: a model that cannot generate,
        parse_alphas(alphas)  # strengths that are not numbers
        at = layer if layer is not None else middle_layer(loaded)
        with progress_of("directions", "sentences harvested") as tick:
            directions = [d.check(loaded, at) for d in _directions(loaded, at, diffmean, probe, factor, vector, labels, tick)]
            if concept == "sentiment" and not any(d.kind == "diffmean" for d in directions):  # DiffMean is every report's baseline
                from shatterbox.steering import sentiment_direction

                directions.append(sentiment_direction(loaded, at, progress=tick))
        with progress_of("steering", "prompts") as tick:
            result = run_steer(loaded, prompts, directions, layer=at, alphas=alphas, positions=positions, max_new_tokens=max_new_tokens,
                               concept=concept, target=target, instruction=instruction, seed=seed, progress=tick)
        if fmt is not ReportFormat.text:
            _say(result.verdict())  # the text report ends with it
        _emit_result(result, [], fmt.value, out)



def _directions(model, layer: int, diffmean: Optional[str], probe: Optional[str], factor: Optional[str], vector: Optional[str], labels: str, tick) -> list:
    from shatterbox import steering

    found = []
    if diffmean is not None:
        if diffmean == "sentiment":
            found.append(steering.sentiment_direction(model, layer, progress=tick))
        else:
            found.append(steering.diffmean(diffmean, layer, *steering.parse_labels(labels)))
    if probe is not None:
        column, first, _ = steering.parse_labels(labels)
        found.append(steering.probe_direction(probe, column, layer, first))
    if factor is not None:
        path, _, index = factor.rpartition(":")
        if not path or not index.strip().isdigit():
            raise InputError(f"cannot read --factor {factor!r}: write FILE:INDEX, e.g. factors.safetensors:12", parameter="factor")
        found.append(steering.factor_direction(path, int(index), layer))
    if vector is not None:
        found.append(steering.vector_direction(_npy(vector), layer, name=Path(vector).name))
    if not found:
        raise InputError("give a direction: --diffmean sentiment, --diffmean STORE, --probe STORE, --factor FILE:INDEX or --vector FILE.npy")
    return found


def _npy(path: str):
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the vector {path!r} ({exc}): give a .npy file saved with numpy.save", parameter="vector") from None
