"""shatterbox: open the black box of transformer models, offline.

Capture one forward pass into a :class:`Trace`, then analyse it.

Examples:
    >>> import shatterbox as sb
    >>> trace = sb.capture(sb.load(), "Transformers possess surprising emerging features.")
    >>> table = sb.attention_table(trace, layer=6, head=6, level="word")
    >>> round(float(table.values.sum(axis=1)[0]), 6)
    1.0
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import TYPE_CHECKING

from shatterbox.errors import ShatterboxError

# transformers imports tqdm.auto, which warns in every notebook without ipywidgets; its bars fall back to text
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use (below)
    from shatterbox.attention import AttentionSteps, AttentionTable, attention_steps, attention_table, attends_to
    from shatterbox.attribution import Attribution, Comparison, compare, explain
    from shatterbox.capture import Trace, TruncationWarning, capture, capture_batch
    from shatterbox.models import DEFAULT_MODEL, LoadedModel, load, wrap
    from shatterbox.render import fragment, show, to_html

__version__ = "0.1.0"

# torch and transformers take seconds to import: `shatterbox --help` and light commands should not pay for them
_LAZY = {
    "shatterbox.models": ("DEFAULT_MODEL", "LoadedModel", "load", "wrap"),
    "shatterbox.capture": ("Trace", "TruncationWarning", "capture_batch"),  # capture: see _Package
    "shatterbox.attention": ("AttentionSteps", "AttentionTable", "attention_steps", "attention_table", "attends_to"),
    "shatterbox.attribution": ("Attribution", "Comparison", "compare", "explain"),
    "shatterbox.render": ("fragment", "show", "to_html"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    """Import the module behind a top-level name the first time it is used (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'shatterbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


class _Package(types.ModuleType):
    """``shatterbox.capture`` is both a subpackage and its main function: importing the subpackage
    binds the module on the package, which must not hide the function ``sb.capture``."""

    @property
    def capture(self):
        from shatterbox.capture import capture

        return capture

    @capture.setter
    def capture(self, value) -> None:  # the import system binding the subpackage: sys.modules keeps it
        pass


sys.modules[__name__].__class__ = _Package


def _register_notebook() -> None:
    """Inside IPython (a notebook), show every result with its HTML drawing; registered by class name, so
    nothing heavy is imported until a result is displayed."""
    ipython = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if ipython is not None and hasattr(ipython, "display_formatter"):
        from shatterbox.render import register_notebook

        register_notebook(ipython)


_register_notebook()

__all__ = [
    "DEFAULT_MODEL",
    "AttentionSteps",
    "AttentionTable",
    "Attribution",
    "LoadedModel",
    "ShatterboxError",
    "Trace",
    "TruncationWarning",
    "attends_to",
    "attention_steps",
    "attention_table",
    "capture",
    "capture_batch",
    "compare",
    "Comparison",
    "explain",
    "fragment",
    "load",
    "show",
    "to_html",
    "wrap",
]
