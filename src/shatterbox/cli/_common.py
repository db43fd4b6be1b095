"""Shared pieces of the command line: the app, its console and error handling, options several groups use."""

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

from shatterbox.cli._app import NUMBERING_HELP, app  # noqa: F401 - the app every command module registers on
from shatterbox.cli._messages import in_flags, shown_warnings
from shatterbox.errors import InputError, ShatterboxError


CHAPTER_SENTENCE = "Transformers possess surprising emerging features."
CHAPTER_HEADS = ((1, 1), (1, 6), (6, 1), (6, 6))


EngineOpt = typer.Option("local", "--engine", help="local, or ray: the work done by model replicas on Ray workers (pip install -e \".\\[ray]\"); the same results.")


RayAddressOpt = typer.Option(None, "--ray-address", help="An existing Ray cluster (e.g. auto or ray://host:10001); its workers must see the output folder. Default: a local Ray instance.")


WorkersOpt = typer.Option(None, "--workers", help="Model replicas on Ray (default: one per CPU of the cluster).")


class Level(str, Enum):
    token = "token"
    word = "word"


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class ReportFormat(str, Enum):
    """What a drawn result is written as: text (the terminal), csv, json or html (a self-contained page)."""

    text = "text"
    csv = "csv"
    json = "json"
    html = "html"


def _console() -> Console:
    """stdout: $COLUMNS when set, else the terminal's width, else (piped) 80 columns."""
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else (None if sys.stdout.isatty() else 80)
    console = Console(width=width, highlight=False)
    from shatterbox.render.terminal import use_palette

    use_palette(console.color_system)  # 16-colour terminals get cell styles that stay readable
    return console


def _say(message: str) -> None:
    Console(stderr=True, highlight=False, markup=False, soft_wrap=True).print(message)


def engine_of(engine: str, ray_address: str | None, workers: int | None):
    """The :class:`~shatterbox.engines.Engine` the --engine, --ray-address and --workers flags describe."""
    from shatterbox.engines import Engine

    return Engine(engine, address=ray_address, workers=workers)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """One clear line on stderr and a non-zero exit instead of a traceback."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ShatterboxError as exc:
            _say(f"error: {in_flags(exc)}")
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # last resort: still no traceback unless asked for
            if os.environ.get("SHATTERBOX_DEBUG"):
                raise
            _say(f"error: unexpected {type(exc).__name__}: {exc} (set SHATTERBOX_DEBUG=1 to see the traceback)")
            raise typer.Exit(1) from None
        finally:
            for message in shown_warnings(caught):
                _say(f"warning: {message}")


ModelOpt = typer.Option("default", "--model", "-m", help="'default' (offline all-MiniLM-L6-v2), a Hugging Face name, or a local folder.")


LayerOpt = typer.Option(1, "--layer", "-l", help="Layer number, from 1 to the model's layer count.")


HeadOpt = typer.Option(1, "--head", help="Head number, from 1 to the model's head count.")


PairOpt = typer.Option(None, "--pair", help="A second text (sentence B): the two are encoded as a pair.")


def _write_text(out: str, text: str) -> None:
    """Write ``text`` to the file ``out``, or one clear error naming the fix."""
    from pathlib import Path

    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out!r}: {exc.strerror}; choose another --out file") from exc


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


def _emit_rows(result, fmt: "Format", **show_options) -> None:
    """A result with ``to_json``/``to_table``: json, csv (every row) or its terminal drawing (``show_options``: e.g. top)."""
    if fmt is Format.json:
        typer.echo(result.to_json(ensure_ascii=False))
    elif fmt is Format.csv:
        _print_arrow(result.to_table(), fmt)
    else:
        from shatterbox.render import show

        show(result, _console(), **show_options)


def _emit_result(result, notes: list[str], fmt: str, out: Optional[str]) -> None:
    """Warnings among the notes on stderr, then ``result`` as text (the terminal), csv (its ``to_csv``), json or html
    (stdout or --out)."""
    for note in notes:
        if getattr(note, "kind", None) == "warning":
            _say(f"warning: {in_flags(note)}")
    from shatterbox.render import show, to_html

    if fmt == "text":
        show(result, _console())
        return
    body = result.to_json(ensure_ascii=False) if fmt == "json" else result.to_csv() if fmt == "csv" else to_html(result)
    if out is None:
        typer.echo(body)
        return
    _write_text(out, body)
    _say(f"wrote {out}")


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


LIMIT_HELP = "Keep N sentences drawn at random with --seed, in corpus order (a smaller N keeps the first of the same draw)."
LimitOpt = typer.Option(None, "--limit", "-n", help=LIMIT_HELP[:-1] + "; with --shuffle, the first N of the shuffled order.")


ShuffleOpt = typer.Option(False, "--shuffle", help="Shuffle the sentences with --seed.")


SeedOpt = typer.Option(0, "--seed", help="Seed of --limit's draw and of --shuffle.")


ChunkOpt = typer.Option(None, "--chunk-tokens", help="Split texts into pieces of at most this many tokens (e.g. 64).")


def _store_model(store):
    """The model a store was harvested with, when it loads here with the same weights (else None)."""
    from shatterbox.models import load
    from shatterbox.store import model_hash

    try:
        loaded = load(store.model)
    except ShatterboxError:
        return None
    return loaded if model_hash(loaded) == store.manifest["model"]["hash"] else None


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


def _print_arrow(table, fmt: Format, *, keys: int = 1) -> None:
    """``table`` as JSON, CSV or a terminal table (split into blocks of columns that fit, the first ``keys`` columns
    repeated in each)."""
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
                                      wrap=tuple(i for i, n in enumerate(numeric) if not n and i > 0), box_style=box.HEAVY_HEAD, keys=keys))
