"""Corpus and activation-store commands: `corpus`, `harvest`, `store info|query|top|verify`."""

from __future__ import annotations

import json
from typing import Optional

import typer

from shatterbox.cli._progress import PROGRESS_HELP, progress_of
from shatterbox.cli._common import engine_of, ChunkOpt, ColumnOpt, CorpusArg, EngineOpt, Format, LimitOpt, ModelOpt, ProseOpt, RayAddressOpt, SeedOpt, ShuffleOpt, WhereOpt, WorkersOpt, _corpus, _friendly_errors, _print_arrow, _say, app


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


@app.command(epilog=PROGRESS_HELP)
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

    from shatterbox.models import load, random_weights as randomised
    from shatterbox.store import harvest as run_harvest

    with _friendly_errors():
        m = load(model)
        m = randomised(m, random_weights) if random_weights is not None else m
        sentences = _corpus(source, column, prose, where, limit, shuffle, seed, chunk_tokens, model)
        started = {}
        with progress_of("harvest", "sentences", len(sentences)) as tick:

            def progress(done: int, tokens: int, total: int) -> None:
                import time

                now = time.perf_counter()
                started.setdefault("t", now)
                started.setdefault("tokens", tokens)
                elapsed = now - started["t"]
                tick(done, total, f"{(tokens - started['tokens']) / elapsed:,.0f} tokens/s" if elapsed > 0 else "")

            store = run_harvest(sentences, out, model=m, layers=layers, what=what, dtype=dtype, batch_tokens=batch_tokens,
                                repair=repair, overwrite=overwrite, progress=progress, engine=engine_of(engine, ray_address, workers))
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
            f"corpus {info['corpus']['name']!r} ({info['corpus']['sentences']:,} sentences), " + _stored(info) + ", "
            f"{info['bytes'] / 2**20:,.1f} MiB, {info['dtype']}"
        )
        typer.echo(f"{len(cols)} activation columns: " + ", ".join(f"{c['name']}[{c['width']}]" for c in cols))


def _stored(info: dict) -> str:
    """What a store holds of its corpus: everything, or (an interrupted harvest) how much is stored and missing."""
    if info["complete"]:
        return f"{info['tokens']:,} tokens, {info['shards']} shards"
    missing = info["corpus"]["sentences"] - info["sentences_stored"]
    return (f"incomplete: {info['sentences_stored']:,} sentences stored ({info['tokens']:,} tokens, {info['shards']} of "
            f"{info['shards_expected']} shards), {missing:,} missing: run the same harvest again to finish it")


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
        _print_arrow(store.top_rows(column, unit, k, engine=engine_of(engine, ray_address, workers)), fmt)


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
