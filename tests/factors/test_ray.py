"""Factor contexts on Ray: the report's top contexts (codes computed per shard on replicas) equal a local pass."""

import pytest
from shatterbox.corpus import load_corpus
from shatterbox.factors import factors_report, fit_factors
from shatterbox.store import harvest
from shatterbox.engines import Engine


@pytest.mark.slow
def test_factors_report_contexts_on_ray_equal_local(ray_cluster, tmp_path, default_model):
    store = harvest(load_corpus("wordnet", limit=120, seed=0), tmp_path / "s", model=default_model, layers="1", shard_bytes=100_000)
    factors = fit_factors(store, n_factors=8, n_epochs=1, max_tokens=400)
    here = factors_report(factors, store, per_level=2, k=3)
    there = factors_report(factors, store, per_level=2, k=3, engine=Engine("ray", workers=2))
    assert store.manifest["shards"] >= 3
    assert here["sections"] == there["sections"] and sum(len(f["contexts"]) for v in here["sections"].values() for f in v) >= 3
