"""The public surface: every package says what a user calls (``__all__``), no name means two things, and every
name that went away still answers for one release, with a deprecation warning naming its replacement."""

import importlib
from collections import defaultdict

import pytest

from shatterbox.errors import ShatterboxDeprecationWarning

PACKAGES = ["shatterbox", "shatterbox.models", "shatterbox.trace", "shatterbox.attention", "shatterbox.heads", "shatterbox.attribution",
            "shatterbox.attribution.parts", "shatterbox.generation", "shatterbox.global_attribution", "shatterbox.classifiers",
            "shatterbox.corpus", "shatterbox.store", "shatterbox.factors", "shatterbox.neurons", "shatterbox.probes", "shatterbox.projector", "shatterbox.patching",
            "shatterbox.render", "shatterbox.engines", "shatterbox.options", "shatterbox.errors", "shatterbox.web", "shatterbox.decoders",
            "shatterbox.memory", "shatterbox.runs"]
MOVED = {  # old name -> what replaces it
    ("shatterbox.attribution", "resolve_target"): ("shatterbox.attribution.parts", "resolve_target"),
    ("shatterbox.attribution", "lime_masks"): ("shatterbox.attribution.parts", "lime_masks"),
    ("shatterbox.attribution", "gauss_legendre"): ("shatterbox.attribution.parts", "gauss_legendre"),
    ("shatterbox.attribution", "run_method"): ("shatterbox.attribution.parts", "run_method"),
    ("shatterbox.projector", "align"): ("shatterbox.projector", "align_maps"),
    ("shatterbox.projector", "layer_vectors"): ("shatterbox.projector", "point_vectors"),
    ("shatterbox.projector", "METHODS"): ("shatterbox.projector", "PROJECTIONS"),
    ("shatterbox.generation", "METHODS"): ("shatterbox.generation", "GENERATION_METHODS"),
    ("shatterbox.generation", "integrated_gradients"): ("shatterbox.generation", "token_integrated_gradients"),
    ("shatterbox.global_attribution", "Settings"): ("shatterbox.global_attribution", "CorpusSettings"),
    ("shatterbox.neurons", "Settings"): ("shatterbox.neurons", "NeuronSettings"),
}


def public_names() -> dict[str, list[tuple[str, object]]]:
    found = defaultdict(list)
    for name in PACKAGES:
        module = importlib.import_module(name)
        assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
        for public in module.__all__:
            found[public].append((name, getattr(module, public)))
    return found


def test_no_public_name_means_two_things():
    clashes = {name: [m for m, _ in where] for name, where in public_names().items() if len({id(obj) for _, obj in where}) > 1}
    assert clashes == {}


def test_the_public_surface_is_narrow():
    attribution = importlib.import_module("shatterbox.attribution").__all__
    assert not {"resolve_target", "run_method", "gauss_legendre", "lime_masks"} & set(attribution)
    assert len(attribution) <= 30  # what a user calls; the building blocks are in shatterbox.attribution.parts


@pytest.mark.parametrize("old, new", sorted(MOVED.items()), ids=lambda x: ".".join(x) if isinstance(x, tuple) else x)
def test_old_names_answer_with_a_deprecation_warning(old, new):
    module, name = old
    with pytest.warns(ShatterboxDeprecationWarning, match=rf"{module}.{name} is deprecated .* use {new[0]}.{new[1]}"):
        value = getattr(importlib.import_module(module), name)
    assert value is getattr(importlib.import_module(new[0]), new[1])


def test_explain_returns_one_type_and_compare_compares():
    import numpy as np

    import shatterbox as sb
    from shatterbox.attribution import Attribution, Comparison, ValueGame

    game = ValueGame(["a", "b"], lambda m: m @ np.array([1.0, 2.0]))
    assert isinstance(sb.explain(game), Attribution) and isinstance(sb.compare(game, samples=20), Comparison)
    with pytest.warns(ShatterboxDeprecationWarning, match=r'explain\(method="all"\) is deprecated'):
        assert isinstance(sb.explain(game, method="all", samples=20), Comparison)


def test_the_capture_function_and_package_do_not_collide():
    import shatterbox as sb
    import shatterbox.trace

    assert callable(sb.capture) and sb.capture.__module__ == "shatterbox.trace"
    assert shatterbox.trace.capture is sb.capture
