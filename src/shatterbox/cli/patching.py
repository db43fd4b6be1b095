"""`shatterbox patch` and `shatterbox ablate`: what a component does to the output, not only what it correlates with."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from shatterbox.cli._common import Format, ReportFormat, _console, _emit_rows, _friendly_errors, _print_arrow, _read_corpus, _say, _write_text, app
from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.errors import InputError
from shatterbox.options import AblateOptions, PatchOptions, typer_option


def _layer_list(layers: Optional[str]) -> list[int] | None:
    if layers in (None, "all"):
        return None
    from shatterbox.store import parse_ranges

    return parse_ranges(layers, f"cannot read --layers {layers!r}: write e.g. 1-6 or 2,5")


@app.command(epilog=PROGRESS_HELP)
def patch(
    clean: str = typer.Argument(..., help="The clean text (e.g. 'The film was not bad.')."),
    corrupt: str = typer.Option(..., "--corrupt", help="The corrupted text: as many tokens, or as many words (e.g. 'The film was very bad.')."),
    component: str = typer_option(PatchOptions, "component"),
    direction: str = typer_option(PatchOptions, "direction"),
    positions: str = typer_option(PatchOptions, "positions"),
    method: str = typer_option(PatchOptions, "method"),
    layers: Optional[str] = typer.Option(None, "--layers", help="Layers to patch (default all; hidden states count from 0), e.g. 1-6 or 3,5."),
    model: str = typer.Option("sentiment", "--model", "-m", help="sentiment (the shipped classifier), a classifier folder, or a decoder (gemma-3-270m) measured with --answer."),
    label: Optional[str] = typer.Option(None, "--label", help="Classifier: the label measured (default: the clean text's prediction)."),
    answer: Optional[str] = typer.Option(None, "--answer", help="Decoder: the continuation scored (include its leading space, e.g. ' Paris')."),
    wrong: Optional[str] = typer.Option(None, "--wrong", help="Decoder: measure the logit of --answer minus this one's (e.g. ' Rome')."),
    measure: Optional[str] = typer.Option(None, "--measure", help="Classifier: logit_diff (default), logit, prob, kl. Decoder: logprob (default with --answer), logit_diff (with --wrong), kl."),
    fmt: ReportFormat = typer.Option(ReportFormat.text, "--format", "-f", help="text (heat map), csv (one row per patched run), json or html (both maps, click a cell)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write csv/json/html to this file instead of standard output."),
) -> None:
    """Activation patching: patch each component (per layer, head or position) between a clean and a corrupted text and
    show how much of the clean behaviour it restores (denoise) or destroys (noise)."""
    from shatterbox.patching import sweep

    with _friendly_errors():
        with progress_of(f"patch {component}", "patched runs") as tick:
            main, other = sweep(clean, corrupt, model, method=method, component=component, direction=direction, positions=positions,
                                layers=_layer_list(layers), label=label, answer=answer, wrong=wrong, measure=measure, progress=tick)
        if other is not None:
            _say(f"attribution patching against exact: Spearman {main.agreement(other):.3f} over the cells either map moves; "
                 f"{other.seconds:.2f} s against {main.seconds:.2f} s")
        _emit(main, other, fmt, out)


def _emit(main, other, fmt: ReportFormat, out: Optional[str]) -> None:
    if fmt is ReportFormat.text:
        from shatterbox.render import show

        show(main, _console())
        return
    if fmt is ReportFormat.csv:
        import pyarrow as pa

        tables = [main.to_table().append_column("method", pa.array([main.method] * main.values.size))]
        if other is not None:
            tables.append(other.to_table().append_column("method", pa.array([other.method] * other.values.size)))
        table = pa.concat_tables(tables, promote_options="default")
        if out is None:
            _print_arrow(table, Format.csv)
            return
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, out)
    else:
        if fmt is ReportFormat.json:
            from shatterbox.patching import patch_report

            body = json.dumps(patch_report(main, other), allow_nan=False, ensure_ascii=False)
        else:
            from shatterbox.render.patching import patch_page

            body = patch_page(main, other)
        if out is None:
            typer.echo(body)
            return
        _write_text(out, body)
    _say(f"wrote {out}")


@app.command(epilog=PROGRESS_HELP)
def ablate(
    texts: Optional[List[str]] = typer.Argument(None, help="Texts to ablate over (or use --corpus)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", "-c", help="A UTF-8 text file (one text per line) or a shipped corpus name (wordnet)."),
    limit: int = typer.Option(200, "--limit", "-n", min=1, max=20_000, help="Texts of --corpus ablated over (a seeded sample)."),
    component: str = typer_option(AblateOptions, "component"),
    how: str = typer_option(AblateOptions, "how"),
    layers: Optional[str] = typer.Option(None, "--layers", help="Layers to ablate (default all), e.g. 1-6 or 3,5."),
    means: Optional[str] = typer.Option(None, "--means", help="A store harvested with the classifier's model: the mean over its tokens (default: over the texts)."),
    model: str = typer.Option("sentiment", "--model", "-m", help="sentiment (the shipped classifier) or a classifier folder."),
    top: int = typer.Option(15, "--top", help="How many sites to list."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (every site) or json."),
) -> None:
    """Ablate each component, one at a time, in every text: how far each text's predicted label falls, with a 95 % interval."""
    from shatterbox.patching import ablate as run_ablate

    with _friendly_errors():
        sentences = _texts(texts, corpus, limit)
        store = _store(means)
        with progress_of(f"{how} ablation of every {component}", "runs") as tick:
            result = run_ablate(sentences, model, component=component, how=how, layers=_layer_list(layers), means=store, progress=tick)
        _emit_rows(result, fmt, top=top)


def _store(means: Optional[str]):
    if means is None:
        return None
    from shatterbox.store import Store

    return Store.open(means)


def _texts(texts: Optional[List[str]], corpus: Optional[str], limit: int) -> list[str]:
    """The texts of the command line, of a file (one per line) or of a shipped corpus (a seeded sample of ``limit``)."""
    if texts and corpus:
        raise InputError("give texts or --corpus, not both")
    if texts:
        return list(texts)[:limit]
    if not corpus:
        raise InputError("give texts to ablate over, or --corpus FILE (one text per line) or --corpus wordnet")
    import os

    from shatterbox.corpus import load_corpus, sample_indices

    lines = _read_corpus(corpus) if os.path.isfile(corpus) else list(load_corpus(corpus).texts)
    return [lines[i] for i in sample_indices(len(lines), limit)]
