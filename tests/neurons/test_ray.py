"""Neuron explanations on Ray: the same table as a local run, a killed replica loses and doubles no part."""

import os
import signal

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.neurons import NeuronSettings, Units, explain_units, read_run
from shatterbox.store import harvest
from tests.conftest import ray_replicas
from shatterbox.engines import Engine

SETTINGS = NeuronSettings(n_explain=5, n_top=5, n_random=5)


@pytest.fixture(scope="module")
def store(tmp_path_factory, default_model):
    return harvest(load_corpus("wordnet", limit=300, seed=0), tmp_path_factory.mktemp("n") / "s", model=default_model, layers="2,3", what="mlp")


def _rows(table):
    return sorted(((r["layer"], r["unit"], r["explanation"], None if r["correlation"] is None else round(r["correlation"], 12), r["flagged"])
                   for r in table.to_pylist()), key=lambda row: row[:2])


@pytest.mark.slow
def test_ray_explains_units_as_a_local_run_does_even_with_a_replica_killed(ray_cluster, store, tmp_path):
    per_layer = {2: list(range(8)), 3: list(range(8))}
    make = lambda layer: Units.neurons(store, layer)  # noqa: E731
    local = explain_units(make, per_layer, tmp_path / "local", settings=SETTINGS, part_units=4)
    there = explain_units(make, per_layer, tmp_path / "ray", settings=SETTINGS, part_units=4, engine=Engine("ray", workers=2))
    assert _rows(there) == _rows(local) and len(_rows(local)) == 16
    killed = []

    def kill_one(done: int, total: int) -> None:
        if done and not killed:
            os.kill(ray_replicas()[0], signal.SIGKILL)
            killed.append(done)

    hit = explain_units(make, per_layer, tmp_path / "killed", settings=SETTINGS, part_units=4, engine=Engine("ray", workers=2), progress=kill_one)
    assert killed and _rows(hit) == _rows(local)
    assert _rows(read_run(tmp_path / "killed")[1]) == _rows(local) and len(list((tmp_path / "killed").glob("layer-*.parquet"))) == 4


@pytest.mark.slow
def test_sentence_maxima_and_neurons_top_on_ray(ray_cluster, store):
    import numpy as np
    from typer.testing import CliRunner

    from shatterbox.cli import app
    from shatterbox.neurons import sentence_maxima

    units = Units.neurons(store, 3)
    ids, here = sentence_maxima(units, [0, 5, 900])
    ids_ray, there = sentence_maxima(units, [0, 5, 900], engine=Engine("ray", workers=2))
    np.testing.assert_array_equal(ids, ids_ray)
    np.testing.assert_array_equal(here, there)
    args = ["neurons", "top", str(store.root), "--layer", "3", "--unit", "5", "--k", "4", "--format", "csv"]
    runner = CliRunner()
    local, ray_run = runner.invoke(app, args), runner.invoke(app, [*args, "--engine", "ray", "--workers", "2"])
    assert local.exit_code == 0 and ray_run.stdout == local.stdout and local.stdout.count("\n") >= 5
