"""Polysemy: occurrences found by character span, grouped by factors, scored against gold senses."""

import numpy as np
import pyarrow.compute as pc
import pytest
from sklearn.metrics import adjusted_rand_score

from shatterbox.corpus import Corpus, load_corpus, wordnet_corpus
from shatterbox.corpus.senses import sense_corpus, sense_words
from shatterbox.errors import InputError
from shatterbox.factors import fit_factors, occurrences, polysemy
from shatterbox.store import harvest

WORDS = ["heavy", "hot", "fine"]


@pytest.fixture(scope="module")
def sense_store(default_model, tmp_path_factory):
    wordnet = wordnet_corpus()
    lowered = pc.utf8_lower(wordnet.table.column("word").fill_null(""))
    rows = np.flatnonzero(pc.is_in(lowered, value_set=__import__("pyarrow").array(WORDS)).to_numpy(zero_copy_only=False))
    corpus = Corpus(wordnet.select(np.concatenate([rows, np.arange(200)])).table, "senses-test")
    return harvest(corpus, tmp_path_factory.mktemp("senses") / "s", model=default_model, layers="1,2")


@pytest.fixture(scope="module")
def factors(sense_store):
    return fit_factors(sense_store, n_factors=64, alpha=1.5, n_epochs=2, max_tokens=3000)


def test_sense_words_and_the_shipped_sense_corpus():
    words = sense_words(wordnet_corpus())
    assert words["heavy"] == 5 and words["hot"] == 4 and all(n >= 2 for n in words.values())
    corpus = load_corpus("wordnet-senses")
    assert len(corpus) == 5000 and corpus.name == "wordnet-senses"
    examples = [w.lower() for w, k in zip(corpus.column("word"), corpus.column("kind")) if k == "example" and w]
    assert sum(w == "heavy" for w in examples) >= 22  # every example of every ambiguous word is in


@pytest.mark.slow
def test_occurrences_are_the_marked_word(sense_store):
    hidden, synsets, rows = occurrences(sense_store, "heavy", 1)
    assert len(hidden) == len(synsets) == rows.num_rows >= 22 and hidden.shape[1] == 384
    for sid, pos, text in zip(rows.column("sentence_id").to_pylist(), rows.column("position").to_pylist(), rows.column("text").to_pylist()):
        token = sense_store.rows(f"sentence_id = {sid} and position = {pos}", ["token", "char_start", "char_end"]).to_pylist()[0]
        assert text[token["char_start"]:token["char_end"]].lower() == token["token"]  # the word's first token
        assert text[token["char_start"]:].lower().startswith("heav")


@pytest.mark.slow
def test_polysemy_scores_equal_a_recomputation(sense_store, factors):
    table = polysemy(factors, sense_store, WORDS, layer=1)
    assert table.column("word").to_pylist() == WORDS
    row = table.to_pylist()[0]
    hidden, synsets, _ = occurrences(sense_store, "heavy", 1)
    names, counts = np.unique(synsets, return_counts=True)
    keep = np.isin(synsets, names[counts >= 3])
    codes = factors.codes(hidden[keep], 1)
    candidates = [f for f in range(codes.shape[1]) if 0 < (codes[:, f] > 0).mean() <= 0.8]
    top = sorted(candidates, key=lambda f: -codes[:, f].sum())[: row["senses"]]
    relative = codes[:, top] / codes[:, top].max(0)
    groups = [top[int(np.argmax(r))] if r.max() > 0 else -1 for r in relative]
    expected = adjusted_rand_score(np.array(synsets)[keep], groups)
    assert row["factor_ari"] == pytest.approx(expected) and row["factors"] == top
    assert all(abs(r["chance_ari"]) < 0.1 for r in table.to_pylist())  # shuffled senses: chance level


def test_factors_that_follow_the_senses_score_one(sense_store, factors, monkeypatch):
    """Planted: codes that are exactly the sense give ARI 1; the k-means baseline is computed independently."""
    hidden, synsets, _ = occurrences(sense_store, "hot", 2)
    lookup = {tuple(np.round(h, 4)): s for h, s in zip(hidden, synsets)}
    senses = sorted(set(synsets))

    def oracle_codes(h, layer):
        out = np.zeros((len(h), 64), np.float32)
        for i, vec in enumerate(h):
            out[i, senses.index(lookup[tuple(np.round(vec, 4))])] = 1.0
        return out

    monkeypatch.setattr(factors, "codes", oracle_codes)
    row = polysemy(factors, sense_store, ["hot"], layer=2).to_pylist()[0]
    assert row["factor_ari"] == pytest.approx(1.0)
    assert row["kmeans_ari"] < 1.0


def test_no_sense_labels_is_a_clear_error(default_model, tmp_path, factors):
    plain = harvest(Corpus.from_texts(["a heavy load", "hot tea"]), tmp_path / "p", model=default_model, layers="1")
    with pytest.raises(InputError, match="no sense labels"):
        polysemy(factors, plain, ["heavy"], layer=1)


@pytest.mark.slow
def test_report_shows_every_level_with_contexts_and_the_random_weight_control(sense_store, factors, default_model, tmp_path):
    from shatterbox.factors import factors_report
    from shatterbox.models import random_weights
    from shatterbox.render.factors import factors_page

    control_store = harvest(sense_store_corpus(sense_store), tmp_path / "r", model=random_weights(default_model), layers="1,2")
    control = fit_factors(control_store, n_factors=64, alpha=1.5, n_epochs=2, max_tokens=3000)
    report = factors_report(factors, sense_store, per_level=2, k=3, polysemy_words=WORDS, control=(control, control_store))
    shown = [f for level in report["sections"].values() for f in level]
    assert shown and all(len(f["curve"]) == 2 for f in shown)
    for f in shown:
        for ctx in f["contexts"]:
            assert ctx["text"][ctx["start"]:ctx["end"]].lower().startswith(ctx["token"].removeprefix("##")[:1])
        values = [c["value"] for c in f["contexts"]]
        assert values == sorted(values, reverse=True)
    assert [r["word"] for r in report["polysemy"]] == WORDS
    assert report["control"]["model"].startswith("default (random weights")
    page = factors_page(report)
    assert page.count("<svg") == len(shown) and "random-weight control" in page and "<script" not in page


def sense_store_corpus(store):
    """The corpus a store was harvested from (its sentences table)."""
    return Corpus(store.sentences(), "senses-test")


def test_report_page_escapes_every_text():
    from shatterbox.render.factors import factors_page

    evil = "<img src=x onerror=alert(1)>"
    report = {"model": evil, "store": {"model": evil, "corpus": evil}, "layers": [1], "levels": {"low": 1},
              "reports": {}, "sections": {"low": [{"factor": 0, "curve": [1.0], "peak_layer": 1,
                                                   "contexts": [{"value": 1.0, "text": evil, "start": 0, "end": 4, "token": "<img"}]}]},
              "control": None, "polysemy": [{"word": evil, "senses": 2, "occurrences": 6, "factor_ari": 0.5, "kmeans_ari": 0.1, "chance_ari": 0.0}]}
    page = factors_page(report)
    assert "<img" not in page and "&lt;img" in page


@pytest.mark.slow
def test_factors_word_cli_prints_the_groups(sense_store, factors, tmp_path):
    import json

    from typer.testing import CliRunner

    from shatterbox.cli import app
    from shatterbox.factors import word_senses

    path = str(factors.save(tmp_path / "f.factors"))
    r = CliRunner().invoke(app, ["factors", "word", path, "hot", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["factor_ari"] == pytest.approx(word_senses(factors, sense_store, "hot")["factor_ari"]) and len(got["rows"]) == got["occurrences"]
    bad = CliRunner().invoke(app, ["factors", "word", path, "the"])
    assert bad.exit_code == 2 and "try one of" in bad.stderr and "Traceback" not in bad.stderr


def test_a_report_section_that_cannot_be_made_says_why(tmp_path):
    from shatterbox.corpus import Corpus
    from shatterbox.factors import factors_report, fit_factors
    from shatterbox.render.factors import factors_page
    from shatterbox.store import harvest

    store = harvest(Corpus.from_texts(["The cat sat.", "A dog ran home.", "Birds sing at dawn."] * 4), tmp_path / "s", layers="1")
    report = factors_report(fit_factors(store, n_factors=8, n_epochs=1, max_tokens=200), store, per_level=1, k=1)
    assert report["polysemy"] is None and report["skipped"] == {"polysemy": "the store has no sense labels (harvest wordnet-senses)"}
    assert "No polysemy table: the store has no sense labels" in factors_page(report)
