"""The shipped WordNet corpus: size, labels, sense-word spans, licence, and regeneration from Debian's files."""

import os
from pathlib import Path

import pytest

from shatterbox.corpus import wordnet_corpus
from shatterbox.corpus.wordnet import DATA_FILE, LEXNAMES, LICENSE_FILE, inflections, parse_lines, read_exceptions, read_index, sense_span

DEBIAN = Path("/usr/share/wordnet")


@pytest.fixture(scope="module")
def corpus():
    return wordnet_corpus()


def test_ships_labelled_english_within_the_size_limit(corpus):
    assert len(corpus) >= 20_000
    assert DATA_FILE.stat().st_size < 10 * 2**20
    kinds = corpus.column("kind")
    assert kinds.count("gloss") == 117_659  # every synset of WordNet 3.0 has a gloss
    assert kinds.count("example") > 45_000
    assert set(corpus.column("pos")) == {"noun", "verb", "adj", "adv"}
    assert set(corpus.column("supersense")) == set(LEXNAMES)


def test_labels_are_consistent(corpus):
    t = corpus.table.to_pydict()
    for pos, sup in zip(t["pos"], t["supersense"]):
        assert sup.split(".")[0] == pos
    for text, word, start, end, kind in zip(t["text"], t["word"], t["start"], t["end"], t["kind"]):
        if start >= 0:
            assert text[start:end] == word and kind == "example"
    examples = [s for s, k in zip(t["start"], t["kind"]) if k == "example"]
    assert sum(s >= 0 for s in examples) / len(examples) > 0.95  # the sense word is found in most examples


def test_senses_are_named_like_nltk(corpus):
    # NLTK names a synset by its first lemma: "bank" sense 2 is depository_financial_institution.n.01
    senses = corpus.where(synset=["bank.n.01", "depository_financial_institution.n.01"], kind="gloss")
    assert sorted(zip(senses.column("synset"), senses.texts)) == [
        ("bank.n.01", "sloping land (especially the slope beside a body of water)"),
        ("depository_financial_institution.n.01", "a financial institution that accepts deposits and channels the money into lending activities"),
    ]
    assert "bank" in senses.column("lemmas")[1].split("|")


def test_licence_ships_with_the_data():
    text = LICENSE_FILE.read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    assert "Permission to use, copy, modify and distribute" in text


def test_inflections_and_spans():
    assert {"mice"} <= set(inflections("mouse", "n", {"mouse": ["mice"]}))
    assert sense_span("two mice ran", ["mouse"], "n", {"mouse": ["mice"]}) == ("mice", 4, 8)
    assert sense_span("she took a breath", ["take_a_breath"], "v", {"take": ["took"]}) == ("took a breath", 4, 17)
    assert sense_span("nothing here", ["bank"], "n", {}) == ("", -1, -1)


@pytest.mark.skipif(not (DEBIAN / "data.adv").exists(), reason="Debian's wordnet-base is not installed (.ci/run installs it)")
def test_regenerating_from_debian_files_gives_the_shipped_rows(corpus):
    shipped = corpus.where(pos="adv").table.to_pylist()
    with open(DEBIAN / "data.adv", encoding="utf-8") as handle:
        rows = parse_lines(handle, "r", read_index(DEBIAN, "adv"), read_exceptions(DEBIAN, "adv"), first_id=shipped[0]["id"])
    assert rows == shipped
