"""The ``shatterbox`` command.

Layers and heads are numbered from 1, as in the book: on the 6-layer x 12-head default model,
``--layer`` is 1-6 and ``--head`` is 1-12.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from contextlib import contextmanager
from enum import Enum
from typing import Iterator, Optional

import typer
from rich.console import Console

from shatterbox.errors import InputError, ShatterboxError

CHAPTER_SENTENCE = "Transformers possess surprising emerging features."
CHAPTER_HEADS = ((1, 1), (1, 6), (6, 1), (6, 6))
NUMBERING_HELP = "Layers and heads are numbered from 1 (the default model has layers 1-6 and heads 1-12)."


def _flags_show_no_value(option: type) -> None:
    """typer's help shows every flag as taking a value (``--predict <bool>``); a flag takes none, so it shows none."""
    shown = option.display_type_rich

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    option.display_type_rich = display_type_rich


_flags_show_no_value(typer.core.TyperOption)

app = typer.Typer(
    help=f"Open the black box of transformer models, offline. {NUMBERING_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


EngineOpt = typer.Option("local", "--engine", help="local, or ray: the work done by model replicas on Ray workers (pip install -e \".[ray]\"); the same results.")
RayAddressOpt = typer.Option(None, "--ray-address", help="An existing Ray cluster (e.g. auto or ray://host:10001); its workers must see the output folder. Default: a local Ray instance.")
WorkersOpt = typer.Option(None, "--workers", help="Model replicas on Ray (default: one per CPU of the cluster).")


class Level(str, Enum):
    token = "token"
    word = "word"


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _console() -> Console:
    """stdout: the terminal's width; piped, $COLUMNS when set (else 200, so that nothing wraps)."""
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else (None if sys.stdout.isatty() else 200)
    console = Console(width=width, highlight=False)
    from shatterbox.render.terminal import use_palette

    use_palette(console.color_system)  # 16-colour terminals get cell styles that stay readable
    return console


def _say(message: str) -> None:
    Console(stderr=True, highlight=False, markup=False, soft_wrap=True).print(message)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """One clear line on stderr and a non-zero exit instead of a traceback."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ShatterboxError as exc:
            _say(f"error: {exc}")
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # last resort: still no traceback unless asked for
            if os.environ.get("SHATTERBOX_DEBUG"):
                raise
            _say(f"error: unexpected {type(exc).__name__}: {exc} (set SHATTERBOX_DEBUG=1 to see the traceback)")
            raise typer.Exit(1) from None
        finally:
            from shatterbox.capture import TruncationWarning

            for w in caught:
                if issubclass(w.category, TruncationWarning):
                    _say(f"warning: {w.message}")


ModelOpt = typer.Option("default", "--model", "-m", help="'default' (offline all-MiniLM-L6-v2), a Hugging Face name, or a local folder.")
LayerOpt = typer.Option(1, "--layer", "-l", help="Layer number, from 1 to the model's layer count.")
HeadOpt = typer.Option(1, "--head", help="Head number, from 1 to the model's head count.")
PairOpt = typer.Option(None, "--pair", help="A second text (sentence B): the two are encoded as a pair.")


def _trace(text: Optional[str], pair: Optional[str], model: str, trace_file: Optional[str]):
    from shatterbox.capture import Trace, capture
    from shatterbox.models import load

    if trace_file:
        return Trace.load(trace_file)
    if text is None:
        raise InputError("give a TEXT to analyse (or --trace FILE for a saved trace)")
    return capture(load(model), text, pair)


def _write_text(out: str, text: str) -> None:
    """Write ``text`` to the file ``out``, or one clear error naming the fix."""
    from pathlib import Path

    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out!r}: {exc.strerror}; choose another --out file") from exc


def _say_occurrence(trace, word: str) -> None:
    """Say which occurrence of a repeated word is analysed, and how to pick another."""
    text = word.strip()
    if "#" in text or text.lstrip("-").isdigit():
        return
    found = trace.occurrences(text)
    if len(found) > 1:
        _say(f"{text!r} occurs {len(found)} times: using the first ({text}#1, word {found[0]}); "
             f"--word {text}#2 picks the second, or give the word's index")


def _emit(objs: list, fmt: Format) -> None:
    if fmt is Format.json:
        payload = [o.to_dict() for o in objs]
        typer.echo(json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False))
    elif fmt is Format.csv:
        for o in objs:
            if not hasattr(o, "to_csv"):
                raise InputError("--format csv is for attention tables; use --format json with --word or --steps")
            typer.echo(o.to_csv(), nl=False)
    else:
        from shatterbox.render import show

        console = _console()
        for o in objs:
            show(o, console)


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
    from shatterbox.capture import capture
    from shatterbox.models import load

    with _friendly_errors():
        trace = capture(load(model), CHAPTER_SENTENCE)
        results: list = [attention_table(trace, l, h, level=level.value, specials=specials) for l, h in CHAPTER_HEADS]
        if fmt is not Format.csv:
            last_layer = min(6, trace.n_layers)
            results.append(attends_to(trace, last_layer, min(6, trace.n_heads), "transformers", level=level.value, specials=specials))
        _emit(results, fmt)


def _read_corpus(path: str) -> list[str]:
    from pathlib import Path

    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the corpus {path!r}: {exc}; give a UTF-8 text file, one sentence per line") from exc
    sentences = [line.strip() for line in lines if line.strip()]
    if not sentences:
        raise InputError(f"the corpus {path!r} has no sentences: give one sentence per line")
    return sentences


@app.command()
def heads(
    text: Optional[str] = typer.Argument(None, help="One sentence (or use --corpus)."),
    corpus: Optional[str] = typer.Option(None, "--corpus", "-c", help="A UTF-8 text file, one sentence per line."),
    top: int = typer.Option(15, "--top", help="How many ranked heads to list."),
    model: str = ModelOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (the ranked heads with every statistic) or json."),
    batch_size: int = typer.Option(32, "--batch-size", help="Sentences per forward pass."),
    png: Optional[str] = typer.Option(None, "--png", help="Also write a heat map of --stat over layer x head to this PNG file."),
    stat: str = typer.Option("entropy", "--stat", help="Statistic for --png: entropy, special, punct, prev, self, next, agreement."),
) -> None:
    """Rank the heads worth inspecting: focused, consistent, not parked on [CLS]/[SEP] or punctuation.

    Layers and heads are numbered from 1.
    """
    from rich.progress import Progress

    from shatterbox.capture import capture_batch
    from shatterbox.heads import head_stats
    from shatterbox.models import load

    with _friendly_errors():
        sentences = _read_corpus(corpus) if corpus else [text] if text is not None else []
        if not sentences:
            raise InputError("give a TEXT or --corpus FILE")
        m = load(model)
        with Progress(console=Console(stderr=True), transient=True, disable=len(sentences) <= batch_size) as bar:
            task = bar.add_task("capturing", total=len(sentences))
            traces = capture_batch(m, sentences, batch_size=batch_size, on_batch=lambda done: bar.update(task, completed=done))
        stats = head_stats(traces)
        if png:
            from shatterbox.render.png import stat_png

            _say(f"wrote {stat_png(stats, stat, png)}")
        if fmt is Format.json:
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


class ExplainFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"
    csv = "csv"


@app.command()
def explain(
    text: Optional[str] = typer.Argument(None, help="The text whose prediction to explain (or --corpus)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="A sequence-classification model (Hugging Face name or folder). Default: the shipped sentiment classifier on the offline default encoder."),
    zero_shot: Optional[str] = typer.Option(None, "--zero-shot", help="Classify by similarity to these comma-separated labels instead (e.g. 'sports,politics,science')."),
    label: Optional[str] = typer.Option(None, "--label", help="The label to explain (name or number from 0). Default: the predicted label."),
    method: Optional[str] = typer.Option(None, "--method", help="shapley (exact up to 8 words, sampled above; the default for one text), exact, sampled (with --pairs 4: the default for --corpus), kernel (Kernel SHAP), owen, lime, ig, gradxinput, rollout, or all (one comparison table)."),
    masking: str = typer.Option("auto", "--masking", help="How a word is removed: mask (replace its tokens by the mask token), delete, or auto (mask when the tokenizer has one)."),
    precision: float = typer.Option(0.02, "--precision", help="Sampled Shapley stops when every 95% error bar of the label is at most this."),
    budget: Optional[int] = typer.Option(None, "--budget", help="Most model evaluations allowed (default 4,000 for sampled, 20,000 otherwise)."),
    pairs: Optional[int] = typer.Option(None, "--pairs", help="Quick mode: sampled Shapley with exactly this many antithetic permutation pairs (2 + 2 x pairs x (words - 1) evaluations; error bars from 2)."),
    samples: Optional[int] = typer.Option(None, "--samples", help="kernel: model evaluations per text (default 500; with --corpus 8 per word); LIME: perturbed texts (default 500)."),
    steps: int = typer.Option(32, "--steps", help="Integrated gradients: quadrature steps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampled methods (same seed, same numbers)."),
    bf16: bool = typer.Option(False, "--bf16", help="Score masked texts in bfloat16 (1.6x faster in bench/attribution.py on a 2-core AVX512-BF16 CPU; probabilities move by up to ~0.008)."),
    fmt: ExplainFormat = typer.Option(ExplainFormat.text, "--format", "-f", help="text (coloured words; with --corpus: tables), json, html, or csv (--corpus: the word table)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write json/html/csv to this file instead of standard output."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Explain every text of a .txt file (one per line), a .csv/.tsv/.parquet file or a store, and rank the words that drive each label."),
    results: Optional[str] = typer.Option(None, "--results", help="--corpus: a folder for the per-text results (Parquet, written every 64 texts: a killed run resumes there)."),
    by: str = typer.Option("lemma", "--by", help="--corpus: group words by lemma or by lower-cased word."),
    min_count: int = typer.Option(5, "--min-count", help="--corpus: words in fewer texts are left out of the rankings."),
    top: int = typer.Option(15, "--top", help="--corpus: words per ranking."),
    word: Optional[str] = typer.Option(None, "--word", help="--corpus: drill down: the texts where this word moved the label most."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="--corpus: explain only the first N texts."),
    column: str = typer.Option("text", "--column", help="--corpus: the text column of a .csv/.tsv/.parquet file."),
    engine: str = EngineOpt,
    ray_address: Optional[str] = RayAddressOpt,
    workers: Optional[int] = WorkersOpt,
) -> None:
    """Which words drove the prediction: Shapley, Owen, LIME, gradients or rollout, with faithfulness scores; with --corpus, across a dataset."""
    from shatterbox.attribution import DEFAULT_SAMPLES, Comparison, explain as explain_text, make_game, plan

    if corpus is not None:
        return _explain_corpus(corpus, model=model, zero_shot=zero_shot, label=label, method=method, budget=budget, pairs=pairs, samples=samples, seed=seed, fmt=fmt,
                               out=out, results=results, by=by, min_count=min_count, top=top, word=word, limit=limit, column=column, text=text,
                               dtype="bfloat16" if bf16 else "float32", engine=engine, ray_address=ray_address, workers=workers)
    method = method or "shapley"
    samples = DEFAULT_SAMPLES if samples is None else samples
    with _friendly_errors():
        if engine != "local":
            raise InputError("--engine applies to --corpus: one text is explained here")
        if text is None:
            raise InputError("give a TEXT to explain, or --corpus FILE for a dataset")
        if fmt is ExplainFormat.csv:
            raise InputError("--format csv is the word table of --corpus: for one text use json or html")
        target = model
        if zero_shot is not None:
            from shatterbox.classifiers import zero_shot as make_zero_shot

            target = make_zero_shot([x for x in zero_shot.split(",")], model or "default")
        game = make_game(target, text, masking=masking, dtype="bfloat16" if bf16 else "float32")
        planned = plan(game, method, label=label, budget=budget, precision=precision, samples=samples, steps=steps, pairs=pairs)
        _say(f"{game.n} words; model evaluations planned (at most): {', '.join(f'{m} {n:,}' for m, n in planned)}; "
             f"faithfulness adds {2 * game.n + 2} per method")
        result = explain_text(game, method=method, label=label, precision=precision, budget=budget, samples=samples, steps=steps,
                              seed=seed, pairs=pairs)
        results = result.attributions if isinstance(result, Comparison) else [result]
        _emit_result(result, [note for a in results for note in a.notes], fmt.value, out)


def _emit_result(result, notes: list[str], fmt: str, out: Optional[str]) -> None:
    """Warnings among the notes on stderr, then ``result`` as text (the terminal), json or html (stdout or --out)."""
    for note in notes:
        if "not reached" in note or "above 1%" in note:
            _say(f"warning: {note}")
    from shatterbox.render import show, to_html

    if fmt == "text":
        show(result, _console())
        return
    body = result.to_json(ensure_ascii=False) if fmt == "json" else to_html(result)
    if out is None:
        typer.echo(body)
        return
    _write_text(out, body)
    _say(f"wrote {out}")


class GenerateFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"


@app.command()
def generate(
    prompt: str = typer.Argument(..., help="The prompt to continue."),
    model: str = typer.Option("gemma-3-270m", "--model", "-m", help="A decoder: gemma-3-270m (the decoder extra), a .gguf file, or a Hugging Face causal LM name or folder."),
    max_new_tokens: int = typer.Option(8, "--max-new-tokens", "-n", help="Tokens to generate greedily (stops at the end-of-text token)."),
    continuation: Optional[str] = typer.Option(None, "--continuation", help="Explain this continuation instead of generating one (include its leading space)."),
    method: str = typer.Option("shapley", "--method", help="shapley (exact up to 10 sources, sampled above), exact, sampled, ig (integrated gradients), rollout."),
    contrast: Optional[str] = typer.Option(None, "--contrast", help="Why the continuation rather than this one (as many tokens): values explain log p(token) - log p(alternative)."),
    budget: int = typer.Option(4000, "--budget", help="Sampled Shapley: most forward passes."),
    precision: float = typer.Option(0.2, "--precision", help="Sampled Shapley stops when every 95% error bar is at most this (nats)."),
    steps: int = typer.Option(64, "--steps", help="Integrated gradients: Gauss-Legendre steps."),
    seed: int = typer.Option(0, "--seed", help="Seed of sampled Shapley."),
    no_scores: bool = typer.Option(False, "--no-scores", help="Skip the faithfulness scores (2n + 2 forward passes per generated token)."),
    bf16: bool = typer.Option(False, "--bf16", help="Score coalitions in bfloat16 (faster on CPUs with AVX512-BF16; log-probabilities move slightly)."),
    fmt: GenerateFormat = typer.Option(GenerateFormat.text, "--format", "-f", help="text (heat map), json or html (self-contained page)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write json/html to this file instead of standard output."),
) -> None:
    """Generate, then show which prompt words (and earlier generated tokens) drove each generated token."""
    from shatterbox.generation import explain_generation
    from shatterbox.models import load

    with _friendly_errors():
        status = Console(stderr=True, highlight=False).status(f"loading {model} ...")
        with status:  # a spinner on a terminal: loading, generating and explaining take seconds to minutes
            loaded = load(model)
            status.update(f"generating and explaining ({method}) ...")
            e = explain_generation(loaded, prompt, continuation=continuation, max_new_tokens=max_new_tokens, method=method,
                                   contrast=contrast, budget=budget, precision=precision, steps=steps, seed=seed,
                                   score=not no_scores, dtype="bfloat16" if bf16 else "float32")
        _emit_result(e, e.notes, fmt.value, out)


@app.command("cache")
def cache_cmd(
    clear: bool = typer.Option(False, "--clear", help="Delete every cached dequantised model."),
) -> None:
    """Where dequantised GGUF models (e.g. gemma-3-270m) are cached, how big they are; --clear deletes them."""
    from shatterbox import decoders

    with _friendly_errors():
        root = decoders.cache_dir()
        if clear:
            freed = decoders.clear_cache()
            typer.echo(f"deleted {root} ({freed / 1e9:.2f} GB)")
            return
        folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        typer.echo(f"cache: {root} (set ${decoders.CACHE_ENV} to move it)")
        for folder in folders:
            size = decoders.folder_bytes(folder)
            typer.echo(f"  {folder.name}  {size / 1e9:.2f} GB")
        if not folders:
            typer.echo("  (empty)")


def _explain_corpus(corpus: str, *, model, zero_shot, label, method, budget, pairs, seed, fmt, out, results, by, min_count, top, word, limit, column,
                    text, dtype, samples=None, engine="local", ray_address=None, workers=None) -> None:
    """``shatterbox explain --corpus``: explain every text, then the word rankings per label, diagnostics, drill-down."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from shatterbox.global_attribution import Settings, explain_corpus, read_texts, screen

    with _friendly_errors():
        if text is not None:
            raise InputError("give a TEXT or --corpus, not both")
        if by not in ("lemma", "word"):
            raise InputError(f"--by {by!r}: lemma or word")
        target = model
        if zero_shot is not None:
            from shatterbox.classifiers import zero_shot as make_zero_shot

            target = make_zero_shot([x for x in zero_shot.split(",")], model or "default")
        chosen = (method or "sampled").strip().lower()
        settings = Settings(method=chosen, pairs=(pairs or 4) if chosen == "sampled" else pairs, label=label, budget=budget, samples=samples, seed=seed,
                            dtype=dtype)
        ids, texts = read_texts(corpus, column)
        if limit is not None:
            ids, texts = ids[:limit], texts[:limit]
        screened = screen(texts, ids, max_words=settings.max_words)
        screened.source = corpus
        counts = screened.counts()
        if counts:
            _say("left out: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + (f" (listed in {results}/skipped.parquet)" if results else ""))
        columns = (TextColumn("explain"), BarColumn(), MofNCompleteColumn(), TextColumn("texts"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("explain", total=len(screened.texts))
            run = explain_corpus(screened, target, results, settings=settings, progress=lambda done, total: bar.update(task, completed=done, total=total),
                                 engine=engine, ray_address=ray_address, workers=workers)
        _report_corpus(run, fmt=fmt, out=out, by=by, min_count=min_count, top=top, word=word)


def _report_corpus(run, *, fmt, out, by, min_count, top, word) -> None:
    from shatterbox.global_attribution import drill_down, flips, least_faithful, top_words, word_table

    table = word_table(run, by=by)
    labels = sorted(set(table.column("label").to_pylist()))
    problems = [r for r in run.texts.to_pylist() if r["problem"]]
    seconds = run.seconds_per_text()
    if fmt is ExplainFormat.html:
        from shatterbox.render.global_attribution import corpus_page

        body = corpus_page(run, table, by=by, min_count=min_count, top=top)
    elif fmt is ExplainFormat.json:
        body = json.dumps({"record": run.record, "words": table.to_pylist(), "texts": run.texts.num_rows, "seconds_per_text": seconds,
                           "skipped": run.skipped.to_pylist(), "problems": problems,
                           "drill_down": {label: drill_down(run, word, label, by=by) for label in labels} if word else None},
                          ensure_ascii=False, default=str)
    elif fmt is ExplainFormat.csv:
        body = _csv_text(table)
    else:
        body = None
    if body is not None:
        if out is None:
            typer.echo(body, nl=not body.endswith("\n"))
        else:
            _write_text(out, body)
            _say(f"wrote {out}")
        return
    shown = ["word", "texts", "mean", "low", "high", "share_up"]
    for label in labels:
        for direction in ("up", "down"):
            chosen = top_words(table, label, k=top, direction=direction, min_count=min_count).select(shown)
            _console().print(f"words that push {label} {direction} (mean effect per text with 95 % interval; in >= {min_count} texts):", markup=False, highlight=False)
            _print_arrow(chosen, Format.table)
        _console().print(f"words whose effect on {label} flips with context:", markup=False, highlight=False)
        _print_arrow(flips(table, label, k=5, min_count=min_count).select(["word", "texts", "mean", "sd", "consistency"]), Format.table)
    _console().print("least faithful explanations (lowest comprehensiveness):", markup=False, highlight=False)
    _print_arrow(least_faithful(run, 5), Format.table)
    if word:
        from shatterbox.render.terminal import word_values_text

        for label in labels:
            _console().print(f"where {word!r} moved {label} most (its effect, then the text coloured by every word's value for {label}):", markup=False, highlight=False)
            for d in drill_down(run, word, label, by=by):
                _console().print(f"{d['effect']:+.3f}  ", word_values_text(d["words"], d["values"], d["positions"]), sep="")
    _say(f"{run.texts.num_rows:,} texts explained ({seconds * 1000:.0f} ms per text); {len(problems)} could not be" + ("" if not problems else f" (e.g. {problems[0]['problem']})"))


def _corpus(source: str, column: str, prose: bool, where: list[str], limit: Optional[int], shuffle: bool, seed: int, chunk_tokens: Optional[int], model: str = "default"):
    from shatterbox.corpus import load_corpus

    equals = {}
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"cannot read --where {item!r}: write COLUMN=VALUE (e.g. --where kind=example)")
        equals.setdefault(key.strip(), []).append(value.strip())
    tokenizer = None
    if chunk_tokens is not None:
        from shatterbox.models import load

        tokenizer = load(model).tokenizer
    return load_corpus(source, column=column, prose=prose, where=equals, limit=limit, shuffle=shuffle, seed=seed,
                       chunk_tokens=chunk_tokens, tokenizer=tokenizer)


CorpusArg = typer.Argument("wordnet", help="'wordnet' (shipped, 165,998 labelled sentences), a .txt file (one sentence per line), or a .csv/.tsv/.parquet file.")
ColumnOpt = typer.Option("text", "--column", help="The text column of a .csv/.tsv/.parquet corpus.")
ProseOpt = typer.Option(False, "--prose", help="The .txt file is running text: split it into sentences.")
WhereOpt = typer.Option([], "--where", help="Keep rows whose label column equals a value, e.g. --where kind=example --where pos=noun (repeatable).")
LimitOpt = typer.Option(None, "--limit", "-n", help="Keep this many sentences (a seeded sample, or the first ones after --shuffle).")
ShuffleOpt = typer.Option(False, "--shuffle", help="Shuffle the sentences with --seed.")
SeedOpt = typer.Option(0, "--seed", help="Seed of --limit and --shuffle.")
ChunkOpt = typer.Option(None, "--chunk-tokens", help="Split texts into pieces of at most this many tokens (e.g. 64).")


@app.command()
def corpus(
    source: str = CorpusArg,
    column: str = ColumnOpt,
    prose: bool = ProseOpt,
    where: list[str] = WhereOpt,
    limit: Optional[int] = typer.Option(10, "--limit", "-n", help="How many sentences to show."),
    shuffle: bool = ShuffleOpt,
    seed: int = SeedOpt,
    chunk_tokens: Optional[int] = ChunkOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """Show a corpus: its size, label columns and some sentences (the shipped one is 'wordnet')."""
    with _friendly_errors():
        full = _corpus(source, column, prose, where, None, False, seed, chunk_tokens)
        shown = _corpus(full, column, prose, [], limit, shuffle, seed, None)
        table = shown.table
        if fmt is Format.json:
            typer.echo(json.dumps({"name": full.name, "sentences": len(full), "columns": table.column_names, "rows": table.to_pylist()}, ensure_ascii=False))
            return
        if fmt is Format.table:
            _say(f"{full.name}: {len(full):,} sentences; columns: {', '.join(full.table.column_names)}")
        _print_arrow(table, fmt)


@app.command()
def harvest(
    source: str = CorpusArg,
    out: str = typer.Option(..., "--out", "-o", help="The store folder to write (created; an interrupted harvest resumes there)."),
    model: str = ModelOpt,
    layers: str = typer.Option("all", "--layers", help="all, a range or a list: 0-6, 1,3,6 (0 = the embeddings)."),
    what: str = typer.Option("hidden", "--what", help="Comma-separated: hidden (hidden states), mlp (MLP neuron activations), attention-stats (per-head row statistics)."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, or float16 (half the size; relative error <= 4.9e-4)."),
    column: str = ColumnOpt,
    prose: bool = ProseOpt,
    where: list[str] = WhereOpt,
    limit: Optional[int] = LimitOpt,
    shuffle: bool = ShuffleOpt,
    seed: int = SeedOpt,
    chunk_tokens: Optional[int] = ChunkOpt,
    batch_tokens: int = typer.Option(2048, "--batch-tokens", help="Padded tokens per forward pass (bounds memory)."),
    repair: bool = typer.Option(False, "--repair", help="Re-read every shard with checksums and redo the damaged ones."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a store of another model, corpus or settings."),
    random_weights: Optional[int] = typer.Option(None, "--random-weights", help="Control: the same architecture with random weights drawn with this seed."),
    engine: str = EngineOpt,
    ray_address: Optional[str] = RayAddressOpt,
    workers: Optional[int] = WorkersOpt,
) -> None:
    """Run the model over a corpus and store what every layer computes, per token, in Parquet shards.

    Run the same command again after an interruption: finished shards are kept, the rest is done.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from shatterbox.models import load, random_weights as randomised
    from shatterbox.store import harvest as run_harvest

    with _friendly_errors():
        m = load(model)
        m = randomised(m, random_weights) if random_weights is not None else m
        sentences = _corpus(source, column, prose, where, limit, shuffle, seed, chunk_tokens, model)
        started = {}
        columns = (TextColumn("harvest"), BarColumn(), MofNCompleteColumn(), TextColumn("sentences, {task.fields[rate]} tokens/s"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("harvest", total=len(sentences), rate="-")

            def progress(done: int, tokens: int, total: int) -> None:
                import time

                now = time.perf_counter()
                started.setdefault("t", now)
                started.setdefault("tokens", tokens)
                elapsed = now - started["t"]
                rate = f"{(tokens - started['tokens']) / elapsed:,.0f}" if elapsed > 0 else "-"
                bar.update(task, completed=done, rate=rate)

            store = run_harvest(sentences, out, model=m, layers=layers, what=what, dtype=dtype, batch_tokens=batch_tokens,
                                repair=repair, overwrite=overwrite, progress=progress, engine=engine, ray_address=ray_address, workers=workers)
        info = store.to_dict()
        notes = [f"{info['truncated']} sentences truncated to {m.max_length} tokens"] if info["truncated"] else []
        notes += [f"{info['skipped']} sentences with no tokens skipped"] if info["skipped"] else []
        _say(
            f"stored {info['tokens']:,} tokens of {len(sentences):,} sentences in {out} ({info['bytes'] / 2**20:,.1f} MiB, "
            f"{len(store.columns)} columns: {', '.join(store.columns[:4])}{' ...' if len(store.columns) > 4 else ''})"
            + ("; " + "; ".join(notes) if notes else "")
        )
        typer.echo(f"query it: duckdb.sql(\"select word, count(*) from '{out}/*.parquet' group by word\") or shatterbox store query {out} \"...\"")


store_app = typer.Typer(help="Read an activation store made by `shatterbox harvest`.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("info")
def store_info(path: str = typer.Argument(..., help="The store folder."),
               fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (one row per activation column) or json.")) -> None:
    """What a store holds: model, corpus, columns, shards, size."""
    from shatterbox.store import Store

    with _friendly_errors():
        info = Store.open(path, partial=True).to_dict()
        if fmt is Format.json:
            typer.echo(json.dumps(info, ensure_ascii=False))
            return
        if fmt is Format.csv:
            import pyarrow as pa

            _print_arrow(pa.Table.from_pylist(info["columns"]), fmt)
            return
        cols = info["columns"]
        typer.echo(
            f"{info['path']}: model {info['model']['name']!r} ({info['model']['class']}, sha256 {info['model']['hash'][:12]}), "
            f"corpus {info['corpus']['name']!r} ({info['corpus']['sentences']:,} sentences), {info['tokens'] or 0:,} tokens, "
            f"{info['shards']}/{info['shards_expected']} shards{'' if info['complete'] else ' (incomplete: run the harvest again)'}, "
            f"{info['bytes'] / 2**20:,.1f} MiB, {info['dtype']}"
        )
        typer.echo(f"{len(cols)} activation columns: " + ", ".join(f"{c['name']}[{c['width']}]" for c in cols))


@store_app.command("query")
def store_query(
    path: str = typer.Argument(..., help="The store folder."),
    sql: str = typer.Argument(..., help="SQL over the tables tokens and sentences, e.g. \"select word, count(*) n from tokens group by word order by n desc limit 10\"."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
) -> None:
    """Run SQL (DuckDB) over a store's tokens and sentences."""
    from shatterbox.store import Store

    with _friendly_errors():
        table = Store.open(path, partial=True).query(sql)
        _print_arrow(table, fmt)


@store_app.command("top")
def store_top(
    path: str = typer.Argument(..., help="The store folder."),
    column: str = typer.Argument(..., help="An activation column, e.g. mlp_3 or hidden_6."),
    unit: int = typer.Argument(..., help="The unit (neuron or dimension), from 0."),
    k: int = typer.Option(10, "--k", help="How many tokens."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json."),
    engine: str = EngineOpt,
    ray_address: Optional[str] = RayAddressOpt,
    workers: Optional[int] = WorkersOpt,
) -> None:
    """The tokens (with their sentences) where one unit of a column is largest, read from the store."""
    from shatterbox.store import Store

    with _friendly_errors():
        store = Store.open(path, partial=True)
        _print_arrow(store.top_rows(column, unit, k, engine=engine, ray_address=ray_address, workers=workers), fmt)


@store_app.command("verify")
def store_verify(path: str = typer.Argument(..., help="The store folder.")) -> None:
    """Read every shard with its checksums; names the damaged ones (exit 2) and how to repair."""
    from shatterbox.errors import StoreCorrupt
    from shatterbox.store import Store

    with _friendly_errors():
        store = Store.open(path, partial=True)
        problems = store.verify()
        if problems:
            listed = "; ".join(f"{name}: {why}" for name, why in problems.items())
            raise StoreCorrupt(f"{len(problems)} damaged shard(s) in {path}: {listed}; re-run the harvest command with --repair")
        typer.echo(f"{len(store.shards)} shards whole ({store.n_tokens:,} tokens)")


factors_app = typer.Typer(help="Transformer factors: sparse dictionaries and SAEs over a store's hidden states.", no_args_is_help=True)
app.add_typer(factors_app, name="factors")


@factors_app.command("fit")
def factors_fit(
    store: str = typer.Argument(..., help="A store with hidden states (shatterbox harvest ... --what hidden)."),
    out: str = typer.Option(..., "--out", "-o", help="The factors file to write (.safetensors)."),
    kind: str = typer.Option("fista", "--kind", help="fista (non-negative sparse coding, Yun et al.) or sae (sparse autoencoder)."),
    n_factors: int = typer.Option(1024, "--factors", help="How many factors (dictionary atoms / SAE latents)."),
    layers: str = typer.Option("all", "--layers", help="Hidden layers sharing the dictionary: all (1..L) or e.g. 1-6, 2,4."),
    per_layer: bool = typer.Option(False, "--per-layer", help="One dictionary per layer (--factors each) instead of one shared by all."),
    alpha: float = typer.Option(1.0, "--alpha", help="fista: the L1 weight λ (larger: sparser codes)."),
    k: int = typer.Option(32, "--k", help="sae: active latents per token (TopK)."),
    epochs: int = typer.Option(3, "--epochs", help="Passes over the sampled tokens."),
    max_tokens: int = typer.Option(50_000, "--max-tokens", help="Tokens sampled from the store per layer (seeded)."),
    seed: int = SeedOpt,
    seeds: int = typer.Option(1, "--seeds", help="Fit with this many seeds (from --seed) and add each layer's mean ± sd; the first fit is saved."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (one row per layer) or json."),
) -> None:
    """Fit factors shared across layers (or one set per layer); prints held-out variance explained next to PCA with as many components as the mean L0."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from shatterbox.factors import fit_factors, spread
    from shatterbox.store import Store

    with _friendly_errors():
        opened = Store.open(store)
        chosen = _layers_option(opened, layers, embeddings=False)
        params = {"n_factors": n_factors, "n_epochs": epochs} | ({"alpha": alpha} if kind == "fista" else {"k": k})
        columns = (TextColumn(f"fit {kind}"), BarColumn(), MofNCompleteColumn(), TextColumn("batches"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("fit", total=None)
            factors = fit_factors(opened, layers=chosen, kind=kind, per_layer=per_layer, max_tokens=max_tokens, seed=seed,
                                  progress=lambda done, total: bar.update(task, completed=done, total=total), **params)
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
                | ({f"± sd over {seeds} seeds": summary[l]["variance_explained_sd"]} if summary else {}) for l, r in factors.reports.items()]
        _print_arrow(pa.Table.from_pylist(rows), fmt)
        counts = factors.level_counts()
        _say(f"{factors.n_factors} factors{'' if factors.shared else f' ({n_factors} per layer)'}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; fitted in {factors.fit_seconds:.1f} s; saved to {out}")


@factors_app.command("show")
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
        top = store.top_rows(f"hidden_{at}", factor, k, transform=lambda h: factors.codes(h, at, units=[factor]), where="not special")
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
             f"with the senses: factor groups {found['factor_ari']:.3f}, k-means {found['kmeans_ari']:.3f}, shuffled senses {found['chance_ari']:.3f}")
        rows = sorted(found["rows"], key=lambda r: (r["group"], r["synset"]))
        _print_arrow(pa.Table.from_pylist([{"factor group": r["group"], "sense": r["synset"], "sentence": r["text"]} for r in rows]), fmt)


def _store_model(store):
    """The model a store was harvested with, when it loads here with the same weights (else None)."""
    from shatterbox.models import load
    from shatterbox.store import model_hash

    try:
        loaded = load(store.model)
    except ShatterboxError:
        return None
    return loaded if model_hash(loaded) == store.manifest["model"]["hash"] else None


@factors_app.command("report")
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
        report = factors_report(factors, store, per_level=per_level, k=k, control=pair, loaded=loaded,
                                engine=engine, ray_address=ray_address, workers=workers)
        _write_text(out, factors_page(report))
        _say(f"wrote {out}: " + ", ".join(f"{len(v)} {level}" for level, v in report["sections"].items()) + " factors shown"
             + (f", polysemy of {len(report['polysemy'])} words" if report["polysemy"] else ""))


@app.command()
def probe(
    store: str = typer.Argument(..., help="A store with hidden states (shatterbox harvest wordnet --where kind=example ...)."),
    prop: str = typer.Option("pos", "--property", "-p", help="Token level: pos, supersense or sense (of the WordNet headword); sentence level: a label column of the corpus."),
    level: str = typer.Option("token", "--level", help="token (the headword) or sentence (mean over its tokens)."),
    kind: str = typer.Option("linear", "--kind", help="linear (logistic regression) or mlp (one hidden layer of 256)."),
    layers: str = typer.Option("all", "--layers", help="Hidden layers to probe: all, or e.g. 0-6, 1,3."),
    folds: int = typer.Option(5, "--folds", help="Cross-validation folds (stratified, seeded)."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="Use at most this many examples (a seeded sample)."),
    random_store: Optional[str] = typer.Option(None, "--random", help="The same corpus harvested with --random-weights: its curves are the baseline."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Also write a self-contained HTML page with the plot."),
    seed: int = SeedOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (one row per layer) or json."),
) -> None:
    """From which layer a property is readable: probe accuracy, control-task accuracy and selectivity per layer (± 95 % over folds)."""
    import pyarrow as pa
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shatterbox.probes import probe as run_probe
    from shatterbox.store import Store

    with _friendly_errors():
        opened = Store.open(store)
        chosen = _layers_option(opened, layers)
        results = []
        for path in [opened] + ([Store.open(random_store)] if random_store else []):
            columns = (TextColumn(f"probe {prop}" + (" (random weights)" if results else "")), BarColumn(), MofNCompleteColumn(), TextColumn("layers"), TimeElapsedColumn())
            with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("probe", total=len(chosen))
                results.append(run_probe(path, prop, level=level, kind=kind, layers=chosen, folds=folds, limit=limit, seed=seed,
                                         on_layer=lambda _l: bar.advance(task)))
        result, control = results[0], (results[1] if len(results) > 1 else None)
        if out is not None:
            from shatterbox.render.probes import probes_page

            _write_text(out, probes_page([(result, control)]))
        if fmt is Format.json:
            typer.echo(json.dumps({"result": result.to_dict(), "random_weights": None if control is None else control.to_dict()}))
            return
        rows = []
        for i, s in enumerate(result.layers):
            row = {"layer": s.layer, "accuracy": s.accuracy, "accuracy ±": s.accuracy_ci, "control": s.control, "control ±": s.control_ci,
                   "selectivity": s.selectivity, "selectivity ±": s.selectivity_ci}
            if control is not None:
                row |= {"random weights: accuracy": control.layers[i].accuracy, "random weights: selectivity": control.layers[i].selectivity}
            rows.append(row)
        _print_arrow(pa.Table.from_pylist(rows), fmt)
        best = result.best()
        _say(f"{prop} ({level}, {kind} probe): {result.n_examples:,} examples, {result.n_classes} classes, majority class {result.majority:.3f}; "
             f"most selective at layer {best.layer} ({best.selectivity:.3f} ± {best.selectivity_ci:.3f}); {result.seconds:.0f} s"
             + (f"; wrote {out}" if out else ""))


@app.command()
def project(
    store: str = typer.Argument(..., help="A store with hidden states (shatterbox harvest ... --what hidden)."),
    out: str = typer.Option(..., "--out", "-o", help="The self-contained HTML page to write (scatter, layer slider, hover, PNG export)."),
    method: str = typer.Option("pca", "--method", help="pca or umap (seeded: the same map every run)."),
    level: str = typer.Option("sentence", "--level", help="sentence (mean of its tokens, as sentence-transformers embed) or token."),
    pool: str = typer.Option("mean", "--pool", help="Sentence vectors: mean (of all its tokens) or first (the [CLS] token)."),
    layers: str = typer.Option("all", "--layers", help="Hidden layers to map: all, or e.g. 1-6, 3."),
    limit: int = typer.Option(5000, "--limit", "-n", help="Points (a seeded sample of sentences or tokens)."),
    colour: Optional[str] = typer.Option(None, "--colour", "--color", help="Colour by this label column (default: the first), or 'prediction'."),
    predict: bool = typer.Option(False, "--predict", help="Add the shipped sentiment classifier's prediction and confidence (it runs once per sentence shown)."),
    factors_file: Optional[str] = typer.Option(None, "--factors", help="A factors file fitted on this store: colour by --factor's code."),
    factor: Optional[int] = typer.Option(None, "--factor", help="The factor (from 0) whose code colours the points, at the layer where it matters most."),
    seed: int = SeedOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json: each map's faithfulness."),
) -> None:
    """Map sentences or tokens to 2-D at every layer (aligned across layers) with each map's trustworthiness and k-NN recall."""
    import pyarrow as pa
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from shatterbox.projector import METHODS, layer_vectors, predictions, project as make_map, align, sentence_points, token_points
    from shatterbox.render.projector import projector_page
    from shatterbox.store import Store

    with _friendly_errors():
        if method not in METHODS:
            raise InputError(f"unknown projection {method!r}: use one of {', '.join(METHODS)}")
        if level not in ("sentence", "token"):
            raise InputError(f"unknown level {level!r}: sentence or token")
        opened = Store.open(store)
        chosen = _layers_option(opened, layers)
        points = (sentence_points if level == "sentence" else token_points)(opened, limit=limit, seed=seed)
        if predict:
            from shatterbox.classifiers.sentiment import sentiment

            labels, confidence = predictions(opened, points, sentiment())
            points.labels["prediction"] = labels
            points.values["confidence"] = confidence
        if pool not in ("mean", "first"):
            raise InputError(f"unknown pooling {pool!r}: mean or first")
        vectors = layer_vectors(opened, points, chosen, pool=pool)
        if (factors_file is None) != (factor is None):
            raise InputError("--factors and --factor go together: the factors file and the factor whose code colours the points")
        if factors_file is not None:
            from shatterbox.factors import Factors
            from shatterbox.projector import factor_values

            name, values = factor_values(Factors.load(factors_file), factor, opened, points)
            points.values[name] = values
        maps = []
        columns = (TextColumn(f"{method} maps"), BarColumn(), MofNCompleteColumn(), TextColumn("layers"), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("map", total=len(chosen))
            for layer in chosen:
                m = make_map(vectors[layer], method, seed=seed, layer=layer)
                if maps:
                    m.coords = align(m.coords, maps[-1].coords)
                maps.append(m)
                bar.advance(task)
        _write_text(out, projector_page(points, maps, colour=colour))
        rows = [{"layer": m.layer, "trustworthiness": m.trustworthiness, "k-NN recall": m.recall, "k": m.k, "seconds": m.seconds} for m in maps]
        _print_arrow(pa.Table.from_pylist(rows), fmt)
        _say(f"{len(points.texts):,} {level}s mapped by {method} at {len(maps)} layers; wrote {out}")


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
    from shatterbox.render.neurons import excerpt_text
    from shatterbox.store import Store

    with _friendly_errors():
        opened = Store.open(store)
        make, available, _ = _units_for(opened, factors)
        _neuron_layers(str(layer), available, "MLP activations" if factors is None else "hidden states")
        units = make(layer)
        units.check([unit])
        found = records(units, [unit], n_explain=(k + 1) // 2, n_top=max(k // 2, 1), n_random=max(n_random, 1), seed=seed,
                        engine=engine, ray_address=ray_address, workers=workers)[0]
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
        console.print("top excerpts (darker = stronger, 0-10 of the largest):", markup=False, highlight=False)
        for e in top:
            console.print(f"{float(e.activations.max()):7.3f}  ", excerpt_text(e, found.maximum), sep="")
        console.print("random excerpts:", markup=False, highlight=False)
        for e in randoms:
            console.print(f"{float(e.activations.max()):7.3f}  ", excerpt_text(e, found.maximum), sep="")


@neurons_app.command("explain")
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from shatterbox.neurons import (ChatClient, LLMExplainer, LLMJudge, LMSimulator, Settings, TokenExplainer, TokenSimulator, estimate,
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
        settings = Settings(n_explain=n_explain, n_top=n_top, n_random=n_random, seed=seed)
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
        columns = (TextColumn("explain"), BarColumn(), MofNCompleteColumn(), TextColumn("units"), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("explain", total=total)
            table = explain_units(make, per_layer, out, explainer=explainer, simulator=sim, judge=judge, settings=settings, part_units=part_units,
                                  progress=lambda done, _total: bar.update(task, completed=done), engine=engine, ray_address=ray_address,
                                  workers=workers)
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
        _print_arrow(pa.Table.from_pylist(_score_rows(found, rows)), fmt)
        s = summary(found)
        c = s["correlation"]
        _say(f"{len(found)} units: mean correlation {c['explanation']:.3f} (random {c['random']:.3f}, shuffled {c['shuffled']:.3f}, "
             f"token lookup {c['token_lookup']:.3f}); detection {s['detection']['explanation']:.3f}, fuzzing {s['fuzzing']['explanation']:.3f} "
             f"(chance 0.5); {100 * s['flagged']:.0f} % flagged (not beating the shuffled and token-lookup baselines by 0.05); "
             f"{s['seconds_per_unit']:.3f} s per unit" + (f"; results in {out}" if out else "") + (f"; wrote {html_out}" if html_out else ""))


def _score_rows(found: list[dict], rows: int) -> list[dict]:
    """The best and the worst ``rows // 2`` units (all when there are few), as printed rows."""
    shown = found if len(found) <= rows else found[:rows - rows // 2] + found[-(rows // 2):]
    return [{"layer": r["layer"], "unit": r["unit"], "explanation": r["explanation"], "correlation": r["correlation"],
             "95 % interval": f"{r['correlation_low']:.2f} – {r['correlation_high']:.2f}", "random": r["random_correlation"],
             "token lookup": r["token_lookup_correlation"], "detection": r["detection"], "fuzzing": r["fuzzing"],
             "flag": r["reason"] or ""} for r in shown]


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
        _print_arrow(pa.Table.from_pylist(_score_rows(found, rows)), fmt)


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


def _layers_option(store, layers: str, *, embeddings: bool = True) -> list[int]:
    """A --layers option against a store: ``all`` is every hidden layer it holds (the embeddings, layer 0,
    only with ``embeddings``), otherwise a range or list."""
    from shatterbox.store import parse_layers

    available = store.layers()
    if layers.strip().lower() == "all":
        return [l for l in available if embeddings or l > 0]
    return parse_layers(layers, max(available or [0]))


def _csv_text(table) -> str:
    """An Arrow table as CSV text (pyarrow's writer: a header row, strings quoted)."""
    import io

    import pyarrow.csv as pacsv

    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return buffer.getvalue().decode("utf-8")


def _print_arrow(table, fmt: Format) -> None:
    if fmt is Format.json:
        typer.echo(json.dumps(table.to_pylist(), ensure_ascii=False, default=str))
    elif fmt is Format.csv:
        typer.echo(_csv_text(table), nl=False)
    else:
        import pyarrow.types as pat
        from rich import box

        from shatterbox.render.terminal import ColumnBlocks

        numeric = [pat.is_integer(f.type) or pat.is_floating(f.type) for f in table.schema]
        rows = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()] for row in table.to_pylist()]
        _console().print(ColumnBlocks(table.column_names, rows, justify=["right" if n else "left" for n in numeric],
                                      wrap=tuple(i for i, n in enumerate(numeric) if not n and i > 0), box_style=box.HEAVY_HEAD))


@app.command()
def serve(
    model: str = ModelOpt,
    port: int = typer.Option(8000, "--port", "-p", help="TCP port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on; the default 127.0.0.1 is reachable from this machine only."),
    stores: Optional[str] = typer.Option(None, "--stores", help="A folder of activation stores (each made by `shatterbox harvest --out DIR/NAME`) for the Corpus tab."),
    decoder: Optional[str] = typer.Option(None, "--decoder", help="The Generate tab's decoder (e.g. gemma-3-270m from the decoder extra), loaded at its first request."),
) -> None:
    """Serve the web app (Attention, Heads, Explain tabs and a JSON API with docs at /docs), offline."""
    from shatterbox.web import serve as run_server

    with _friendly_errors():
        if not 0 < port < 65536:
            raise InputError(f"port {port} is out of range: use 1-65535 (e.g. --port 8000)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            _say(f"warning: listening on {host}: other machines on the network can use this server")
        try:
            if stores is not None and not os.path.isdir(stores):
                raise InputError(f"--stores {stores!r} is not a folder: give the folder that holds your stores (e.g. --stores stores)")
            run_server(model, host=host, port=port, stores=stores, decoder=decoder, on_ready=lambda url: _say(f"shatterbox serving {model!r} at {url} (Ctrl+C to stop)"))
        except OSError as exc:
            raise InputError(f"{exc.strerror or exc}; choose another --port") from exc


def main() -> None:
    """Entry point of the ``shatterbox`` console script."""
    app()


if __name__ == "__main__":
    main()
