"""Corpus explanations on Ray: the same rows as a local run, and a killed replica loses and doubles no part."""

import pytest
import os
import signal

from shatterbox.corpus import load_corpus
from shatterbox.global_attribution import CorpusRun, CorpusSettings, explain_corpus
from tests.conftest import ray_replicas
from shatterbox.engines import Engine

SETTINGS = CorpusSettings(pairs=2, score=True)


def _texts():
    return [t for t in load_corpus("wordnet", where={"kind": "example"}, limit=400, seed=1).texts if 3 <= len(t.split()) <= 9][:72]


def _same(a, b) -> None:
    assert a.rows.sort_by([("text_id", "ascending"), ("label", "ascending"), ("position", "ascending")]).equals(
        b.rows.sort_by([("text_id", "ascending"), ("label", "ascending"), ("position", "ascending")]))
    drop = lambda t: t.drop_columns(["seconds"]).sort_by("text_id")  # noqa: E731 - timings differ
    assert drop(a.texts).equals(drop(b.texts))


@pytest.mark.slow
def test_ray_explains_a_corpus_as_a_local_run_does_even_with_a_replica_killed(ray_cluster, tmp_path):
    texts = _texts()
    local = explain_corpus(texts, None, tmp_path / "local", settings=SETTINGS, part_texts=12)
    plain = explain_corpus(texts, None, tmp_path / "ray", settings=SETTINGS, part_texts=12, engine=Engine("ray", workers=2))
    _same(local, plain)
    assert local.texts.num_rows == len(texts) and len(list((tmp_path / "ray").glob("texts-*.parquet"))) == 6
    killed = []

    def kill_one(done: int, total: int) -> None:
        if done and not killed:
            pids = ray_replicas()
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    hit = explain_corpus(texts, None, tmp_path / "killed", settings=SETTINGS, part_texts=12, engine=Engine("ray", workers=2), progress=kill_one)
    assert killed
    _same(local, hit)
    _same(local, CorpusRun.read(tmp_path / "killed"))  # every part on disk once


@pytest.mark.slow
def test_cli_explain_corpus_on_ray_prints_the_local_table(ray_cluster, tmp_path):
    from typer.testing import CliRunner

    from shatterbox.cli import app

    source = tmp_path / "texts.txt"
    source.write_text("\n".join(_texts()[:24]) + "\n")
    runner = CliRunner()
    args = ["explain", "--corpus", str(source), "--pairs", "1", "--format", "csv", "--min-count", "1"]
    here = runner.invoke(app, args)
    there = runner.invoke(app, [*args, "--engine", "ray", "--workers", "2"])
    assert here.exit_code == 0 and there.exit_code == 0, there.stderr
    assert there.stdout == here.stdout and here.stdout.count("\n") > 20
    one = runner.invoke(app, ["explain", "I loved it.", "--engine", "ray"])
    assert one.exit_code == 2 and one.stderr.strip() == "error: --engine applies to --corpus: one text is explained here"
