"""`shatterbox explain`: why a classifier decided, on one text or a whole corpus."""

from __future__ import annotations

import json
from enum import Enum
from typing import Optional

import typer

from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.cli._common import LIMIT_HELP, engine_of, EngineOpt, Format, RayAddressOpt, WorkersOpt, _console, _csv_text, _emit_result, _friendly_errors, _print_arrow, _say, _write_text, app
from shatterbox.errors import InputError
from shatterbox.options import ExplainOptions, RankingOptions, spec, typer_option


class ExplainFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"
    csv = "csv"


@app.command(epilog=PROGRESS_HELP)
def explain(
    text: Optional[str] = typer.Argument(None, help="The text whose prediction to explain (or --corpus)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="A sequence-classification model (Hugging Face name or folder). Default: the shipped sentiment classifier on the offline default encoder."),
    zero_shot: Optional[str] = typer.Option(None, "--zero-shot", help="Classify by similarity to these comma-separated labels instead (e.g. 'sports,politics,science')."),
    label: Optional[str] = typer.Option(None, "--label", help="The label to explain (name or number from 0). Default: the predicted label."),
    method: Optional[str] = typer.Option(None, "--method", help="shapley (exact up to 8 words, sampled above; the default for one text), exact, sampled (with --pairs 4: the default for --corpus), kernel (Kernel SHAP), owen, lime, ig, gradxinput, rollout, or all (one comparison table)."),
    masking: str = typer_option(ExplainOptions, "masking"),
    precision: float = typer_option(ExplainOptions, "precision"),
    budget: Optional[int] = typer.Option(None, "--budget", help="Most model evaluations allowed (default 4,000 for sampled, 20,000 otherwise)."),
    pairs: Optional[int] = typer.Option(None, "--pairs", help="Quick mode: sampled Shapley with exactly this many antithetic permutation pairs (2 + 2 x pairs x (words - 1) evaluations; error bars from 2)."),
    samples: Optional[int] = typer.Option(None, "--samples", help="kernel: model evaluations per text (default 500; with --corpus 8 per word); LIME: perturbed texts (default 500)."),
    steps: int = typer_option(ExplainOptions, "steps"),
    seed: int = typer_option(ExplainOptions, "seed"),
    bf16: bool = typer.Option(False, "--bf16", help="Score masked texts in bfloat16 (1.6x faster in bench/attribution.py on a 2-core AVX512-BF16 CPU; probabilities move by up to ~0.008)."),
    fmt: ExplainFormat = typer.Option(ExplainFormat.text, "--format", "-f", help="text (coloured words; with --corpus: tables), json, html, or csv (--corpus: the word table)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Write json/html/csv to this file instead of standard output."),
    corpus: Optional[str] = typer.Option(None, "--corpus", help="Explain every text of a .txt file (one per line), a .csv/.tsv/.parquet file or a store, and rank the words that drive each label."),
    results: Optional[str] = typer.Option(None, "--results", help="--corpus: a folder for the per-text results (Parquet, written every 64 texts: a killed run resumes there)."),
    by: str = typer_option(RankingOptions, "by", help="--corpus: " + spec(RankingOptions, "by").help),
    min_count: int = typer_option(RankingOptions, "min_count", help="--corpus: " + spec(RankingOptions, "min_count").help),
    top: int = typer_option(RankingOptions, "top", help="--corpus: " + spec(RankingOptions, "top").help),
    word: Optional[str] = typer.Option(None, "--word", help="--corpus: drill down: the texts where this word moved the label most."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="--corpus: " + LIMIT_HELP.replace("sentences", "texts")),
    column: str = typer.Option("text", "--column", help="--corpus: the text column of a .csv/.tsv/.parquet file."),
    engine: str = EngineOpt,
    ray_address: Optional[str] = RayAddressOpt,
    workers: Optional[int] = WorkersOpt,
) -> None:
    """Which words drove the prediction: Shapley, Owen, LIME, gradients or rollout, with faithfulness scores; with --corpus, across a dataset."""
    from shatterbox.attribution import DEFAULT_SAMPLES, Comparison, compare, explain as explain_text, make_game, plan

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
        run = (lambda g, **o: compare(g, **o)) if method.strip().lower() == "all" else (lambda g, **o: explain_text(g, method=method, **o))
        result = run(game, label=label, precision=precision, budget=budget, samples=samples, steps=steps, seed=seed, pairs=pairs)
        results = result.attributions if isinstance(result, Comparison) else [result]
        _emit_result(result, [note for a in results for note in a.notes], fmt.value, out)


def _explain_corpus(corpus: str, *, model, zero_shot, label, method, budget, pairs, seed, fmt, out, results, by, min_count, top, word, limit, column,
                    text, dtype, samples=None, engine="local", ray_address=None, workers=None) -> None:
    """``shatterbox explain --corpus``: explain every text, then the word rankings per label, diagnostics, drill-down."""

    from shatterbox.corpus import sample_indices
    from shatterbox.global_attribution import CorpusSettings, explain_corpus, read_texts, screen

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
        settings = CorpusSettings(method=chosen, pairs=(pairs or 4) if chosen == "sampled" else pairs, label=label, budget=budget, samples=samples, seed=seed,
                            dtype=dtype)
        ids, texts = read_texts(corpus, column)
        if limit is not None:
            keep = sample_indices(len(texts), limit, seed)
            ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
        screened = screen(texts, ids, max_words=settings.max_words)
        screened.source = corpus
        counts = screened.counts()
        if counts:
            _say("left out: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + (f" (listed in {results}/skipped.parquet)" if results else ""))
        with progress_of("explain", "texts", len(screened.texts)) as tick:
            run = explain_corpus(screened, target, results, settings=settings, progress=tick,
                                 engine=engine_of(engine, ray_address, workers))
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
        pushes = {label: {d: top_words(table, label, k=top, direction=d, min_count=min_count).column("word").to_pylist() for d in ("up", "down")}
                  for label in labels}
        body = json.dumps({"record": run.record, "words": table.to_pylist(), "pushes": pushes, "texts": run.texts.num_rows, "seconds_per_text": seconds,
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
