"""Sentence-level commands: attention tables, the chapter demo, the head finder, the HTML views, saved traces."""

from __future__ import annotations

import json
from typing import Optional

import typer

from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.cli._common import CHAPTER_HEADS, CHAPTER_SENTENCE, Format, HeadOpt, LayerOpt, Level, ModelOpt, PairOpt, _console, _emit, _emit_rows, _friendly_errors, _print_arrow, _read_corpus, _say, _write_text, app
from shatterbox.errors import InputError


def _trace(text: Optional[str], pair: Optional[str], model: str, trace_file: Optional[str]):
    from shatterbox.trace import Trace, capture
    from shatterbox.models import load

    if trace_file:
        return Trace.load(trace_file)
    if text is None:
        raise InputError("give a TEXT to analyse (or --trace FILE for a saved trace)")
    return capture(load(model), text, pair)


def _say_occurrence(trace, word: str) -> None:
    """Say which occurrence of a repeated word is analysed, and how to pick another."""
    text = word.strip()
    if "#" in text or text.lstrip("-").isdigit():
        return
    found = trace.occurrences(text)
    if len(found) > 1:
        _say(f"{text!r} occurs {len(found)} times: using the first ({text}#1, word {found[0]}); "
             f"--word {text}#2 picks the second, or give the word's index")


@app.command()
def attention(
    text: Optional[str] = typer.Argument(None, help="The sentence to analyse."),
    layer: int = LayerOpt,
    head: int = HeadOpt,
    word: Optional[str] = typer.Option(None, "--word", "-w", help="Rank what this word attends to: a word of TEXT, word#N for its N-th occurrence (from 1), or its index."),
    level: Level = typer.Option(Level.token, "--level", help="token: word pieces as the model sees them; word: pieces merged."),
    steps: bool = typer.Option(False, "--steps", help="Show softmax(q.k / sqrt(d_k)) step by step for one query token (--word, else the first word)."),
    specials: bool = typer.Option(True, "--specials/--no-specials", help="Show special tokens ([CLS], [SEP]); hiding them renormalises each row."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table (shaded), csv or json."),
    model: str = ModelOpt,
    pair: Optional[str] = PairOpt,
    trace_file: Optional[str] = typer.Option(None, "--trace", help="Read a Trace saved by `shatterbox capture` instead of running the model."),
    png: Optional[str] = typer.Option(None, "--png", help="Also write the table as a PNG heat map to this file."),
) -> None:
    """Attention probabilities of one layer and head: rows attend to columns, each row sums to 1.

    Layers and heads are numbered from 1 (the default model has layers 1-6 and heads 1-12).
    """
    from shatterbox.attention import attends_to, attention_steps, attention_table

    with _friendly_errors():
        trace = _trace(text, pair, model, trace_file)
        trace.head_index(layer, head)
        if word is not None:
            _say_occurrence(trace, word)
        if steps:
            first_word = next(i for i, s in enumerate(trace.word_special) if not s)
            result = attention_steps(trace, layer, head, word if word is not None else first_word)
        elif word is not None:
            result = attends_to(trace, layer, head, word, level=level.value, specials=specials)
        else:
            result = attention_table(trace, layer, head, level=level.value, specials=specials)
            if png:
                from shatterbox.render.png import table_png

                _say(f"wrote {table_png(result, png)}")
        _emit([result], fmt)


@app.command()
def demo(
    model: str = ModelOpt,
    level: Level = typer.Option(Level.word, "--level", help="token or word level."),
    specials: bool = typer.Option(False, "--specials/--no-specials", help="Show [CLS]/[SEP] (hidden by default, as in the book, with rows renormalised)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """The chapter-3 walk-through: layer/head 1/1, 1/6, 6/1 and 6/6 for the chapter's sentence.

    Layers and heads are numbered from 1, as in the book.
    """
    from shatterbox.attention import attends_to, attention_table
    from shatterbox.trace import capture
    from shatterbox.models import load

    with _friendly_errors():
        trace = capture(load(model), CHAPTER_SENTENCE)
        results: list = [attention_table(trace, l, h, level=level.value, specials=specials) for l, h in CHAPTER_HEADS]
        if fmt is not Format.csv:
            last_layer = min(6, trace.n_layers)
            results.append(attends_to(trace, last_layer, min(6, trace.n_heads), "transformers", level=level.value, specials=specials))
        _emit(results, fmt)


def _causal_classifier(model: str):
    if model != "default":
        raise InputError("--causal ablates heads of the shipped sentiment classifier (the default encoder, fine-tuned): leave --model out")
    from shatterbox.classifiers.sentiment import sentiment

    return sentiment()


def _print_causal(stats, classifier, sentences: list[str], fmt: Format) -> None:
    """The head finder's ranking joined with each head's mean-ablation effect, and their rank correlation."""
    from shatterbox.patching import ablate, causal_heads

    with progress_of("mean-ablate each head", "runs") as tick:
        joined = causal_heads(stats, ablate(sentences, classifier, component="head", how="mean", progress=tick))
    _emit_rows(joined, fmt)


@app.command(epilog=PROGRESS_HELP)
def heads(
    text: Optional[str] = typer.Argument(None, help="One sentence (or use --corpus)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", "-c", help="A UTF-8 text file, one sentence per line."),
    top: int = typer.Option(15, "--top", help="How many ranked heads to list."),
    model: str = ModelOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (the ranked heads with every statistic) or json."),
    batch_size: int = typer.Option(32, "--batch-size", help="Sentences per forward pass."),
    png: Optional[str] = typer.Option(None, "--png", help="Also write a heat map of --stat over layer x head to this PNG file."),
    stat: str = typer.Option("entropy", "--stat", help="Statistic for --png: entropy, special, punct, prev, self, next, agreement."),
    causal: bool = typer.Option(False, "--causal", help="Add each head's mean-ablation effect on the shipped sentiment classifier over the same sentences (its encoder is then the one ranked)."),
) -> None:
    """Rank the heads worth inspecting: focused, consistent, not parked on [CLS]/[SEP] or punctuation.

    Layers and heads are numbered from 1.
    """

    from shatterbox.trace import capture_batch
    from shatterbox.heads import head_stats
    from shatterbox.models import load

    with _friendly_errors():
        sentences = _read_corpus(corpus) if corpus else [text] if text is not None else []
        if not sentences:
            raise InputError("give a TEXT or --corpus FILE")
        classifier = _causal_classifier(model) if causal else None
        m = classifier.model if classifier is not None else load(model)
        with progress_of("capture", "sentences", len(sentences)) as tick:
            traces = capture_batch(m, sentences, batch_size=batch_size, on_batch=tick)
        stats = head_stats(traces)
        if png:
            from shatterbox.render.png import stat_png

            _say(f"wrote {stat_png(stats, stat, png)}")
        if classifier is not None:
            _print_causal(stats, classifier, sentences, fmt)
        elif fmt is Format.json:
            typer.echo(json.dumps(stats.to_dict(top), ensure_ascii=False))
        elif fmt is Format.csv:
            _print_arrow(stats.to_table(top), fmt)
        else:
            from shatterbox.render.terminal import heads_renderable

            _console().print(heads_renderable(stats, top))


@app.command()
def view(
    text: Optional[str] = typer.Argument(None, help="The sentence to view."),
    out: str = typer.Option("shatterbox.html", "--out", "-o", help="HTML file to write (self-contained, opens from disk)."),
    model: str = ModelOpt,
    pair: Optional[str] = PairOpt,
    trace_file: Optional[str] = typer.Option(None, "--trace", help="Read a saved Trace instead of running the model."),
    neuron: bool = typer.Option(True, "--neuron/--no-neuron", help="Include the neuron view (queries and keys to 15 bits; past twice the head size in tokens the other views read them anyway)."),
) -> None:
    """Write the head view, model view, probability table and neuron view as one self-contained HTML file.

    Layers and heads are numbered from 1.
    """
    from pathlib import Path

    with _friendly_errors():
        trace = _trace(text, pair, model, trace_file)
        _write_text(out, trace.to_html(neuron=neuron))
        typer.echo(f"wrote {out} ({Path(out).stat().st_size:,} bytes): open it in a browser")


@app.command("capture")
def capture_cmd(
    text: str = typer.Argument(..., help="The sentence to record."),
    out: str = typer.Option(..., "--out", "-o", help="File to write (safetensors with JSON metadata)."),
    model: str = ModelOpt,
    pair: Optional[str] = PairOpt,
) -> None:
    """Record one forward pass into a Trace file that every other command can read with --trace."""
    with _friendly_errors():
        trace = _trace(text, pair, model, None)
        path = trace.save(out)
        typer.echo(f"saved {trace!r} to {path}")
