"""No answer of the app is invalid JSON: every method of every tab goes through the API and is parsed strictly
(NaN, Infinity and -Infinity refused, as a browser's JSON.parse refuses them)."""

import json

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.factors import fit_factors
from shatterbox.options import GENERATION_METHODS
from shatterbox.attribution import ALL_METHODS
from shatterbox.store import harvest
from shatterbox.web import create_app
from tests.conftest import CHAPTER, local_client


def strict(text: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_the_strict_parser_refuses_what_javascript_refuses():
    for bad in ('{"a": NaN}', "[Infinity]", "[-Infinity]"):
        with pytest.raises(ValueError, match="is not JSON"):
            strict(bad)


def _ok(r) -> dict:
    assert r.status_code == 200, r.text[:300]
    return strict(r.text)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("strict")
    store = harvest(load_corpus("wordnet", limit=200, seed=1), root / "wn", model=default_model, layers="0,3", what="hidden,mlp")
    fit_factors(store, layers=[3], n_factors=16, n_epochs=1).save(root / "f.factors")
    return root


@pytest.mark.slow
def test_every_sentence_level_method_answers_strict_json(folder):
    client = local_client(create_app(stores=folder))
    _ok(client.post("/api/trace", json={"text": CHAPTER}))
    _ok(client.post("/api/attention", json={"text": CHAPTER, "layer": 1, "head": 1}))
    _ok(client.post("/api/heads", json={"texts": [CHAPTER, "The striker scored twice."]}))
    for method in (*ALL_METHODS, "exact", "sampled", "all"):
        d = _ok(client.post("/api/explain", json={"text": "The film was not good.", "method": method}))
        assert d.get("method", "all") in (method, "exact", "all") or d.get("rows")
    _ok(client.post("/api/explain", json={"text": "The striker scored twice.", "zero_shot": ["sports", "politics"]}))


@pytest.mark.slow
def test_every_corpus_tab_answers_strict_json(folder):
    client = local_client(create_app(stores=folder))
    _ok(client.get("/api/stores"))
    _ok(client.post("/api/stores/wn/occurrences", json={"word": "the", "limit": 5}))
    for method in ("pca", "umap"):
        _ok(client.post("/api/stores/wn/project", json={"method": method, "limit": 100}))
    for kind in ("linear", "mlp"):
        _ok(client.post("/api/stores/wn/probe", json={"property": "pos", "kind": kind, "folds": 2, "limit": 200}))
    for method in ("sampled", "kernel"):
        _ok(client.post("/api/stores/wn/explain-corpus", json={"method": method, "limit": 4}))
    _ok(client.get("/api/factors"))
    for level in ("low", "mid", "high", "dead"):
        _ok(client.get(f"/api/factors/f.factors/level/{level}"))
    _ok(client.get("/api/factors/f.factors/factor/0"))
    _ok(client.post("/api/stores/wn/neuron", json={"layer": 3, "unit": 5}))
    _ok(client.post("/api/stores/wn/neuron", json={"layer": 3, "unit": 2, "factors": "f.factors"}))
    _ok(client.get("/api/options"))


@pytest.mark.slow
@pytest.mark.parametrize("method", GENERATION_METHODS)
def test_every_generation_method_answers_strict_json(method, tiny_dir):
    client = local_client(create_app(tiny_dir["llama-gqa"]))
    d = _ok(client.post("/api/generate", json={"prompt": "the model reads", "max_new_tokens": 2, "method": method}))
    assert d["method"] in (method, "exact", "sampled") and len(d["targets"]) == 2
    if method == "rollout":
        assert d["base"] == [None, None] and any("no base" in n for n in d["notes"])
