"""Harvest on Ray: the same store as a local run, a killed worker loses and duplicates nothing, resumes mix engines."""

import json
import os
import signal
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.store import harvest
from tests.conftest import kill_mid_run, ray_replicas as _replicas
from shatterbox.engines import check_engine
from shatterbox.engines import Engine

ARGS = dict(layers="1,6", what="hidden,mlp", shard_bytes=1_500_000)
KEY = "select sentence_id, position, count(*) over (partition by sentence_id, position) n from tokens order by 1, 2"


@pytest.fixture(scope="module")
def corpus():
    return load_corpus("wordnet", limit=240, seed=0)


@pytest.fixture(scope="module")
def local(corpus, default_model, tmp_path_factory):
    return harvest(corpus, tmp_path_factory.mktemp("local") / "s", model=default_model, **ARGS)


def _same_store(a, b, corpus) -> None:
    assert a.query(KEY).equals(b.query(KEY))
    assert b.query("select max(n) from (" + KEY + ")").column(0)[0].as_py() == 1  # no row twice
    assert set(b.query("select distinct sentence_id from tokens").column(0).to_pylist()) == set(corpus.ids.tolist())
    for column in ("hidden_1", "hidden_6", "mlp_6"):
        np.testing.assert_allclose(a.activations(column), b.activations(column), atol=1e-6)
    assert _shard_metas(a) == _shard_metas(b)


def _shard_metas(store) -> list[dict]:
    return [json.loads(pq.read_schema(path).metadata[b"shatterbox"]) for path in sorted(store.root.glob("part-*.parquet"))]


@pytest.mark.slow
def test_two_workers_write_the_store_a_local_run_writes(ray_cluster, corpus, local, default_model, tmp_path):
    seen = []
    store = harvest(corpus, tmp_path / "ray", model=default_model, engine=Engine("ray", workers=2),
                    progress=lambda done, tokens, total: seen.append(done), **ARGS)
    _same_store(local, store, corpus)
    assert store.manifest["complete"] and local.manifest["shards"] >= 4
    assert seen[0] == 0 and seen[-1] == len(corpus) and len(seen) == local.manifest["shards"] + 1 and seen == sorted(seen)


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_restarted_and_nothing_is_lost_or_doubled(ray_cluster, corpus, local, default_model, tmp_path):
    killed = []

    def kill_one(done: int, tokens: int, total: int) -> None:
        if done and not killed:
            pids = _replicas()
            assert pids, "the replicas run as Ray actor processes"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    store = harvest(corpus, tmp_path / "ray", model=default_model, engine=Engine("ray", workers=2), progress=kill_one, **ARGS)
    assert killed and store.manifest["complete"]
    _same_store(local, store, corpus)


KILLED = """
import sys
from shatterbox.corpus import load_corpus
from shatterbox.store import harvest
from tests.conftest import ray_replicas as _replicas
harvest(load_corpus("wordnet", limit=240, seed=0), sys.argv[1], layers="1,6", what="hidden,mlp", shard_bytes=1_500_000)
"""


@pytest.mark.slow
def test_a_local_run_killed_mid_run_resumes_on_ray(ray_cluster, corpus, local, default_model, tmp_path):
    root = tmp_path / "mixed"
    written = kill_mid_run([sys.executable, "-c", KILLED, str(root)], root, "part-*.parquet")
    assert 2 <= written < local.manifest["shards"], "the kill must land mid-run"
    resumed = harvest(corpus, root, model=default_model, engine=Engine("ray", workers=2), **ARGS)
    _same_store(local, resumed, corpus)


def test_engine_errors_name_the_fix(monkeypatch, tmp_path):
    with pytest.raises(InputError, match="unknown engine 'spark': use local or ray"):
        harvest(load_corpus("wordnet", limit=2), tmp_path / "x", engine="spark")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(InputError, match=r"pip install -e \"\.\[ray\]\""):
        check_engine("ray")
    with pytest.raises(InputError, match="needs Ray"):
        harvest(load_corpus("wordnet", limit=2), tmp_path / "y", engine="ray")
    assert not (tmp_path / "y").exists()


@pytest.mark.slow
def test_cli_harvest_on_ray_and_its_errors(ray_cluster, default_model, tmp_path):
    from typer.testing import CliRunner

    from shatterbox.cli import app
    from shatterbox.store import Store

    runner = CliRunner()
    args = ["harvest", "wordnet", "--limit", "60", "--layers", "6"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"])
    assert r.exit_code == 0, r.stderr
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "local")]).exit_code == 0
    np.testing.assert_array_equal(Store.open(tmp_path / "ray").activations("hidden_6"), Store.open(tmp_path / "local").activations("hidden_6"))
    top = ["store", "top", str(tmp_path / "ray"), "hidden_6", "5", "--k", "4", "--format", "csv"]
    here, there = runner.invoke(app, top), runner.invoke(app, [*top, "--engine", "ray", "--workers", "2"])
    assert here.exit_code == 0 and there.stdout == here.stdout and here.stdout.count("\n") == 5
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--engine", "spark"])
    assert bad.exit_code == 2 and bad.stderr.strip() == "error: unknown engine 'spark': use local or ray"
    bad = runner.invoke(app, [*args, "--out", str(tmp_path / "y"), "--engine", "ray", "--workers", "0"])
    assert bad.exit_code == 2 and "--workers must be at least 1" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_top_k_on_ray_equals_one_pass_here(ray_cluster, local):
    here = local.top_k("mlp_6", None, k=7)
    there = local.top_k("mlp_6", None, k=7, engine=Engine("ray", workers=2))
    for name in ("units", "values", "sentence_id", "position"):
        np.testing.assert_array_equal(getattr(here, name), getattr(there, name))
    codes = lambda h: np.maximum(h[:, :16] - h[:, 16:32], 0)  # noqa: E731 - a transform, as factor codes are
    here = local.top_k("hidden_6", [0, 3, 15], k=5, transform=codes, where="not special")
    there = local.top_k("hidden_6", [0, 3, 15], k=5, transform=codes, where="not special", engine=Engine("ray", workers=2))
    np.testing.assert_array_equal(here.values, there.values)
    np.testing.assert_array_equal(here.sentence_id, there.sentence_id)
    with pytest.raises(InputError, match="unit 5000 is out of range: mlp_6 has units 0-1535"):
        local.top_k("mlp_6", [5000], engine=Engine("ray", workers=2))


@pytest.mark.slow
def test_top_k_on_ray_reads_a_partial_store_as_a_local_pass_does(ray_cluster, local, tmp_path):
    import shutil

    from shatterbox.store import Store

    partial = tmp_path / "partial"
    shutil.copytree(local.root, partial)
    sorted(partial.glob("part-*.parquet"))[-1].unlink()  # an unfinished harvest
    store = Store.open(partial, partial=True)
    here = store.top_k("mlp_6", [1, 2], k=5)
    there = store.top_k("mlp_6", [1, 2], k=5, engine=Engine("ray", workers=2))
    np.testing.assert_array_equal(here.values, there.values)
    np.testing.assert_array_equal(here.sentence_id, there.sentence_id)
