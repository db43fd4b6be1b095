"""Test tiers for every test and doctest: ``slow``, ``browser``, ``ray`` and ``decoder`` markers.

A test that uses the Chromium, Ray or Gemma fixture is marked ``browser``, ``ray`` or ``decoder`` (and ``slow``) here,
from its fixtures; any other test that takes a second or more carries ``@pytest.mark.slow`` itself. The fast tier for
contributors is ``python -m pytest -m "not slow"``; CI runs everything.
"""

import pytest

FIXTURE_MARKS = {"browser": "browser", "ray_cluster": "ray", "gemma": "decoder"}
SLOW_DOCTESTS = {  # examples that harvest a store and fit or explain on it, or retrain (a second or more each)
    "shatterbox.classifiers.sentiment.train", "shatterbox.probes.probe", "shatterbox.probes.examples", "shatterbox.probes.available", "shatterbox.factors._fit.fit_factors",
    "shatterbox.factors._fit.seed_spread", "shatterbox.neurons", "shatterbox.neurons._run.explain_units", "shatterbox.neurons._run.explain_unit",
    "shatterbox.neurons._run.explain_records", "shatterbox.neurons._units.records", "shatterbox.attribution", "shatterbox.web",
    "shatterbox.web.server.running",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, mark in FIXTURE_MARKS.items():
            if fixture in fixtures:
                item.add_marker(mark)
                item.add_marker("slow")
        if item.name in SLOW_DOCTESTS:
            item.add_marker("slow")
