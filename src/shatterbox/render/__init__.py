"""Renderers: one way to show any result, in the terminal, as an HTML page, in a notebook.

Results (a :class:`~shatterbox.trace.Trace`, an attention table, an attribution, a generation
explanation, ...) hold data and know nothing of how they are drawn; this package draws them. Every
result type is registered once in :data:`RENDERERS` by its class name, so importing this package
loads no model code, and each drawing lives in one place:

=============  ==============================================================
``to_html``    a self-contained page (no network)
``fragment``   an HTML fragment for notebooks (Jupyter shows it on its own)
``renderable`` a rich renderable for the terminal (``show`` prints it)
=============  ==============================================================

JSON is data, not drawing: every result has ``to_dict``/``to_json``.

Examples:
    >>> import shatterbox as sb
    >>> trace = sb.capture(sb.load(), "hello <world>")
    >>> sb.to_html(trace).startswith("<!DOCTYPE html>")
    True
"""

from __future__ import annotations

import importlib
from typing import Any

# class (module.qualname) -> kind -> "module:function" inside this package; each function takes the result
RENDERERS: dict[str, dict[str, str]] = {
    "shatterbox.trace._trace.Trace": {
        "to_html": "html:trace_html", "fragment": "html:trace_frame",
    },
    "shatterbox.attention._table.AttentionTable": {"renderable": "terminal:table_renderable"},
    "shatterbox.attention._table.Ranking": {"renderable": "terminal:ranking_renderable"},
    "shatterbox.attention._steps.AttentionSteps": {"renderable": "terminal:steps_renderable"},
    "shatterbox.heads.HeadStats": {"renderable": "terminal:heads_renderable"},
    "shatterbox.attribution._results.Attribution": {
        "to_html": "plots:attribution_page", "fragment": "plots:attribution_fragment",
        "renderable": "terminal:attribution_renderable",
    },
    "shatterbox.attribution._results.Comparison": {
        "to_html": "plots:comparison_page", "fragment": "plots:comparison_fragment",
        "renderable": "terminal:comparison_renderable",
    },
    "shatterbox.patching._patch.PatchResult": {
        "to_html": "patching:patch_page", "fragment": "patching:patch_fragment", "renderable": "patching:patch_renderable",
    },
    "shatterbox.patching._ablate.AblationResult": {"renderable": "patching:ablation_renderable"},
    "shatterbox.patching._ablate.CausalHeads": {"renderable": "patching:causal_heads_renderable"},
    "shatterbox.patching._units.CausalUnits": {"renderable": "patching:causal_units_renderable"},
    "shatterbox.lens._logit.LensResult": {"to_html": "lens:lens_page", "fragment": "lens:lens_fragment", "renderable": "lens:lens_renderable"},
    "shatterbox.lens._logit.ClassifierLensResult": {
        "to_html": "lens:lens_page", "fragment": "lens:lens_fragment", "renderable": "lens:classifier_lens_renderable",
    },
    "shatterbox.steering._steer.SteeringResult": {
        "to_html": "lens:steering_page", "fragment": "lens:steering_fragment", "renderable": "lens:steering_renderable",
    },
    "shatterbox.generation._explain.GenerationExplanation": {
        "to_html": "plots:generation_page", "fragment": "plots:generation_fragment",
        "renderable": "generation:generation_renderable",
    },
}


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def renderer(result: Any, kind: str):
    """The function that draws ``result`` as ``kind`` ("to_html", "fragment" or "renderable").

    Examples:
        >>> renderer(3, "to_html")
        Traceback (most recent call last):
        ...
        TypeError: shatterbox has no to_html drawing for int: draw one of Trace, Attribution, Comparison, PatchResult, LensResult, ClassifierLensResult, SteeringResult, GenerationExplanation
    """
    for cls in type(result).__mro__:
        entry = RENDERERS.get(_name(cls), {})
        if kind in entry:
            module, function = entry[kind].split(":")
            return getattr(importlib.import_module(f"{__name__}.{module}"), function)
    known = ", ".join(name.rsplit(".", 1)[1] for name, kinds in RENDERERS.items() if kind in kinds)
    raise TypeError(f"shatterbox has no {kind} drawing for {type(result).__name__}: draw one of {known}")


def to_html(result: Any, **options: Any) -> str:
    """A self-contained HTML page showing ``result`` (no network).

    Examples:
        >>> from shatterbox.attribution import chapter_game, explain
        >>> to_html(explain(chapter_game())).startswith("<!doctype html>")
        True
    """
    return renderer(result, "to_html")(result, **options)


def fragment(result: Any) -> str:
    """An HTML fragment for notebooks (what Jupyter shows for ``result``).

    Examples:
        >>> from shatterbox.attribution import chapter_game, explain
        >>> fragment(explain(chapter_game())).startswith('<div class="sb-plots">')
        True
    """
    return renderer(result, "fragment")(result)


def renderable(result: Any, **options: Any):
    """A rich renderable for the terminal.

    Examples:
        >>> from shatterbox.attribution import chapter_game, explain
        >>> type(renderable(explain(chapter_game()))).__name__
        'Group'
    """
    return renderer(result, "renderable")(result, **options)


def show(result: Any, console=None, **options: Any) -> None:
    """Print ``result`` in the terminal (``console``: a rich Console; a new one by default).

    Examples:
        >>> from shatterbox.attribution import chapter_game, explain
        >>> from rich.console import Console
        >>> show(explain(chapter_game()), Console(file=open("/dev/null", "w")))
    """
    from rich.console import Console

    (console or Console()).print(renderable(result, **options))


def register_notebook(ipython: Any) -> None:
    """Have ``ipython`` (a running IPython shell) show every registered result type with :func:`fragment`.

    Registered by class name, so nothing is imported until a result is displayed; ``import shatterbox``
    calls this when it runs inside IPython.
    """
    formatter = ipython.display_formatter.formatters["text/html"]
    for name, kinds in RENDERERS.items():
        if "fragment" in kinds:
            module, _, cls = name.rpartition(".")
            formatter.for_type_by_name(module, cls, fragment)


__all__ = ["RENDERERS", "fragment", "register_notebook", "renderable", "renderer", "show", "to_html"]
