"""A small store of WordNet example sentences with hidden states and MLP activations of layer 1."""

import pytest

from shatterbox.corpus import load_corpus
from shatterbox.store import harvest


@pytest.fixture(scope="session")
def example_store(tmp_path_factory):
    corpus = load_corpus("wordnet", where={"kind": "example"}, limit=400, seed=1)
    return harvest(corpus, tmp_path_factory.mktemp("neurons") / "s", layers="1", what="hidden,mlp")
