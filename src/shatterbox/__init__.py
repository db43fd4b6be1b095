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
import importlib.abc
import importlib.machinery
import types
import warnings
from typing import TYPE_CHECKING

from shatterbox.errors import ShatterboxError

# transformers imports tqdm.auto, which warns in every notebook without ipywidgets; its bars fall back to text
warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use (below)
    from shatterbox.attention import AttentionSteps, AttentionTable, attention_steps, attention_table, attends_to
    from shatterbox.attribution import Attribution, Comparison, compare, explain
    from shatterbox.trace import Trace, TruncationWarning, capture, capture_batch
    from shatterbox.models import DEFAULT_MODEL, LoadedModel, load, wrap
    from shatterbox.render import fragment, show, to_html

__version__ = "0.1.0"

# torch and transformers take seconds to import: `shatterbox --help` and light commands should not pay for them
_LAZY = {
    "shatterbox.models": ("DEFAULT_MODEL", "LoadedModel", "load", "wrap"),
    "shatterbox.trace": ("Trace", "TruncationWarning", "capture", "capture_batch"),
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


class _OldCaptureModule(types.ModuleType):
    """What ``import shatterbox.capture`` gives for one release: the names of ``shatterbox.trace``, and still callable as
    the function ``sb.capture`` (the import binds it on the package, in place of the function)."""

    def __getattr__(self, name: str):
        new = "shatterbox.trace._trace" if name == "trace" else "shatterbox.trace.stats" if name == "stats" else None
        return importlib.import_module(new) if new else getattr(importlib.import_module("shatterbox.trace"), name)

    def __call__(self, *args, **kwargs):
        return importlib.import_module("shatterbox.trace").capture(*args, **kwargs)


class _OldCapturePath(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import shatterbox.capture`` (the subpackage's old name, which collided with the function ``sb.capture``)
    still works for one release, with a deprecation warning naming ``shatterbox.trace``."""

    OLD = "shatterbox.capture"

    def find_spec(self, fullname, path=None, target=None):
        if fullname == self.OLD or fullname.startswith(self.OLD + "."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == self.OLD)
        return None

    def create_module(self, spec):
        from shatterbox.errors import deprecated

        deprecated(f"the module {spec.name}", "shatterbox.trace" if spec.name.endswith(".trace") else spec.name.replace(self.OLD, "shatterbox.trace", 1))
        if spec.name == self.OLD:
            return _OldCaptureModule(spec.name)
        return _OldCaptureModule(spec.name).__getattr__(spec.name.rsplit(".", 1)[1])

    def exec_module(self, module) -> None:
        pass


sys.meta_path.append(_OldCapturePath())


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
