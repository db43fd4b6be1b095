"""One way to draw every result: the registry names real classes and functions, and old methods forward with a warning."""

import importlib
import warnings

import pytest
from rich.console import Console

import shatterbox as sb
from shatterbox.attribution import chapter_game, explain
from shatterbox.errors import ShatterboxDeprecationWarning
from shatterbox.render import RENDERERS, renderer


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_registered_drawing_names_a_real_class_and_function(name):
    module, _, cls = name.rpartition(".")
    kind = getattr(importlib.import_module(module), cls)
    for drawing in RENDERERS[name].values():
        where, function = drawing.split(":")
        assert callable(getattr(importlib.import_module(f"shatterbox.render.{where}"), function))
    assert isinstance(kind, type)


def test_unknown_results_get_one_clear_error():
    with pytest.raises(TypeError, match="no to_html drawing for dict: draw one of Trace"):
        renderer({}, "to_html")


def test_old_methods_forward_with_a_deprecation_warning(default_model):
    a = explain(chapter_game())
    with pytest.warns(ShatterboxDeprecationWarning, match=r"Attribution.to_html\(\) is deprecated .* shatterbox.to_html"):
        assert a.to_html() == sb.to_html(a)
    with pytest.warns(ShatterboxDeprecationWarning, match=r"LoadedModel.capture\(text\)"):
        assert default_model.capture("hello world") == sb.capture(default_model, "hello world")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb.show(a, Console(file=open("/dev/null", "w")))  # the new way is silent
