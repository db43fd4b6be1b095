"""The ``shatterbox`` Typer app, which every command module registers on."""

from __future__ import annotations

import typer

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
