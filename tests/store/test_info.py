"""`store info` on a store whose harvest was cut off says how much is stored and how much is missing, not "0 tokens"."""

import json

from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.corpus import load_corpus
from shatterbox.store import Store, harvest


def test_a_half_finished_store_says_what_it_holds_and_what_is_missing(tmp_path):
    store = harvest(load_corpus("wordnet", limit=120, seed=2), tmp_path / "s", layers="1", shard_bytes=200_000)
    shards = sorted(store.root.glob("part-*.parquet"))
    assert len(shards) >= 3
    shards[-1].unlink()  # as if the harvest had been killed before its last shard
    manifest = json.loads((store.root / "manifest.json").read_text())
    manifest["complete"] = False
    manifest.pop("tokens", None)
    (store.root / "manifest.json").write_text(json.dumps(manifest))
    partial = Store.open(store.root, partial=True)
    stored = partial.sql("select count(distinct sentence_id), count(*) from tokens").fetchall()[0]
    r = CliRunner().invoke(app, ["store", "info", str(store.root)], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.stderr
    assert f"incomplete: {stored[0]:,} sentences stored ({stored[1]:,} tokens, {len(shards) - 1} of {len(shards)} shards), {120 - stored[0]:,} missing" in r.stdout
    assert 0 < stored[0] < 120 and "0 tokens" not in r.stdout
