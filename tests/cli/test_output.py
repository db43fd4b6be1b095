"""Piped output loses nothing: 80 columns unless $COLUMNS says otherwise, split tables repeat their key columns, a table
that shows part of a list says how much, and uncoloured output writes what colour would show."""

import io

import numpy as np
from rich.console import Console

from shatterbox.cli._common import _console
from shatterbox.render.terminal import ColumnBlocks


def test_piped_output_is_80_columns_unless_columns_says_otherwise(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert _console().width == 80  # pytest's stdout is not a terminal
    monkeypatch.setenv("COLUMNS", "132")
    assert _console().width == 132


def test_a_split_table_repeats_its_key_columns_in_every_block():
    console = Console(width=60, record=True, file=io.StringIO())
    header = ["layer", "unit", *(f"score {i}" for i in range(8))]
    console.print(ColumnBlocks(header, [["3", "517", *(f"{v:.4f}" for v in np.linspace(0, 1, 8))]], keys=2))
    text = console.export_text()
    blocks = text.count("layer")
    assert blocks >= 2 and text.count("unit") == blocks and text.count("517") == blocks
    assert all(f"score {i}" in text for i in range(8))


def test_uncoloured_excerpts_write_the_activations():
    from shatterbox.neurons import Excerpt
    from shatterbox.render.neurons import excerpt_marked

    e = Excerpt(0, ["a", "provocative", "##ly", "worded", "note"], np.array([0.0, 1.5, 0.9, 0.05, 0.0]))
    assert excerpt_marked(e, 1.5) == "a provocative[1.50]ly[0.90] worded note"  # 0.05 of 1.5 is level 0: not marked


def _commands(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield path, command


def test_help_texts_show_their_brackets():
    import typer
    from typer.testing import CliRunner

    from shatterbox.cli import app

    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        wanted = [p.help.replace("\\[", "[") for p in command.params if getattr(p, "help", None) and "[" in p.help]
        if not wanted:
            continue
        shown = " ".join(CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "600"}).stdout.split())
        assert [w for w in wanted if " ".join(w.split()) not in shown] == [], path
        checked += len(wanted)
    assert checked >= 5  # --engine on five commands at least: pip install -e ".[ray]"
