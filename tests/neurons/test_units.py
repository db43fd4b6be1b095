"""Units, excerpts and explanations on a real store; planted units whose answer is known."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from shatterbox.errors import InputError
from shatterbox.neurons._run import vocabulary
from shatterbox.neurons import (NeuronSettings, SimulationJudge, TokenExplainer, TokenSimulator, Units, explain_records, explain_units, parse, read_run,
                                records, sentence_maxima)

SMALL = NeuronSettings(n_explain=8, n_top=8, n_random=8)


def tokens_of(rows):
    return np.array([t.lower() for t in rows.column("token").to_pylist()], dtype=object)


def on_word(word):
    return lambda rows: (tokens_of(rows) == word)[:, None].astype(np.float32)


def after_word(word):
    def fire(rows):
        toks = tokens_of(rows)
        sid = rows.column("sentence_id").to_numpy()
        prev = np.r_[False, (toks[:-1] == word) & (sid[1:] == sid[:-1])]
        return prev[:, None].astype(np.float32)
    return fire


def test_sentence_maxima_match_a_direct_query(example_store):
    u = Units.neurons(example_store, 1)
    ids, maxima = sentence_maxima(u, [5, 700])
    direct = example_store.query("select sentence_id, max(mlp_1[6]) m, max(mlp_1[701]) m2 from tokens where not special group by sentence_id order by sentence_id")
    assert ids.tolist() == direct.column("sentence_id").to_pylist()
    np.testing.assert_allclose(maxima[:, 0], direct.column("m").to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(maxima[:, 1], direct.column("m2").to_numpy(), rtol=1e-6)


def test_records_split_top_and_random_without_overlap(example_store):
    r = records(Units.neurons(example_store, 1), [3], n_explain=5, n_top=5, n_random=5)[0]
    tops = [e.sentence_id for e in r.explain_top + r.score_top]
    rand = [e.sentence_id for e in r.explain_random + r.score_random]
    assert len(set(tops)) == 10 and len(set(rand)) == 10 and not set(tops) & set(rand)
    peaks = [float(e.activations.max()) for e in r.top]
    ids, maxima = sentence_maxima(Units.neurons(example_store, 1), [3])
    np.testing.assert_allclose(peaks, np.sort(maxima[:, 0])[::-1][:10], rtol=1e-6)  # the ten strongest sentences
    assert r.explain_top[0].activations.max() >= r.score_top[0].activations.max()  # alternate by rank: the explainer gets rank 1
    assert r.quantiles["max"] == pytest.approx(peaks[0]) and r.quantiles["q50"] < r.quantiles["q99"]


def test_a_planted_word_unit_is_explained_and_scored_near_one(example_store):
    word = Units.planted(example_store, on_word("the"))
    found = records(word, [0], n_explain=8, n_top=8, n_random=8)
    other = records(Units.planted(example_store, on_word("of"), name="other"), [0], n_explain=8, n_top=8, n_random=8)
    out = explain_records(found, TokenExplainer(), TokenSimulator(), SimulationJudge(TokenSimulator()), partners=other, vocabulary=vocabulary(example_store))[0]
    assert out.explanation.startswith('"the" (10)')
    assert out.scores["explanation"]["correlation"].value >= 0.9
    assert abs(out.scores["random"]["correlation"].value) < 0.2
    assert out.scores["explanation"]["detection"].value >= 0.9 and out.scores["explanation"]["fuzzing"].value >= 0.9
    assert out.flagged and out.reason == "no better than token lookup"  # a one-word unit is exactly a token lookup


def test_a_planted_context_unit_needs_its_context(example_store):
    unit = Units.planted(example_store, after_word("the"))
    found = records(unit, [0], n_explain=8, n_top=8, n_random=8)
    other = records(Units.planted(example_store, on_word("of"), name="other"), [0], n_explain=8, n_top=8, n_random=8)
    out = explain_records(found, TokenExplainer(), TokenSimulator(), SimulationJudge(TokenSimulator()), partners=other, vocabulary=vocabulary(example_store))[0]
    assert 'after "the" (10)' in out.explanation
    assert out.scores["explanation"]["correlation"].value >= 0.9
    assert out.scores["token_lookup"]["correlation"].value < 0.8  # the words after "the" vary: a token lookup misses most
    assert not out.flagged, out.reason


def test_offline_simulator_reads_only_the_explanation():
    tokens, after, elsewhere = parse('"a\\"b" (4), "x" (12); after "y" (3); elsewhere 2')
    assert tokens == {'a"b': 4.0, "x": 10.0} and after == {"y": 3.0} and elsewhere == 2.0


def test_neuron_explanations_beat_the_random_baseline(example_store):
    table = explain_units(lambda l: Units.neurons(example_store, l), {1: list(range(0, 1536, 96))}, settings=SMALL)
    corr = np.array(table.column("correlation").to_pylist())
    rand = np.array(table.column("random_correlation").to_pylist())
    assert corr.mean() > 0.2 and corr.mean() > rand.mean() + 0.15, (corr.mean(), rand.mean())
    assert table.num_rows == 16


def test_a_run_folder_resumes_and_refuses_other_arguments(example_store, tmp_path):
    make = lambda l: Units.neurons(example_store, l)  # noqa: E731
    first = explain_units(make, {1: [0, 1, 2, 3]}, tmp_path / "run", settings=SMALL, part_units=2)
    parts = sorted((tmp_path / "run").glob("*.parquet"))
    assert len(parts) == 2
    pq.write_table(pq.read_table(parts[0]).slice(0, 1).append_column("marker", [[1]]), parts[0])  # a finished part is read, not redone
    again = explain_units(make, {1: [0, 1, 2, 3]}, tmp_path / "run", settings=SMALL, part_units=2)
    assert again.num_rows == 3 and "marker" in again.column_names
    record, table = read_run(tmp_path / "run")
    assert record["units"] == {"1": [0, 1, 2, 3]} and table.num_rows == 3
    with pytest.raises(InputError, match="other arguments"):
        explain_units(make, {1: [0, 1]}, tmp_path / "run", settings=SMALL)
    assert first.num_rows == 4


def test_bad_units_and_layers_are_one_clear_error(example_store):
    with pytest.raises(InputError, match="neuron 1536 is out of range: layer 1 has neurons 0-1535"):
        Units.neurons(example_store, 1).check([1536])
    with pytest.raises(InputError, match="no MLP activations of layer 4"):
        Units.neurons(example_store, 4)


def test_records_bounded_by_bytes_equal_one_pass(example_store, monkeypatch):
    import shatterbox.neurons._units as units_module

    u = Units.neurons(example_store, 1)
    whole = records(u, [3, 40, 700], n_explain=4, n_top=4, n_random=4)
    monkeypatch.setattr(units_module, "MAXIMA_BYTES", 1)  # one unit per pass over the store
    assert [len(c) for c in units_module.unit_chunks(u, [3, 40, 700])] == [1, 1, 1]
    split = records(u, [3, 40, 700], n_explain=4, n_top=4, n_random=4)
    for a, b in zip(whole, split):
        assert (a.unit, a.maximum, a.quantiles) == (b.unit, b.maximum, b.quantiles)
        for x, y in zip(a.explain_top + a.score_top + a.explain_random + a.score_random, b.explain_top + b.score_top + b.explain_random + b.score_random):
            assert x.sentence_id == y.sentence_id and x.tokens == y.tokens
            np.testing.assert_array_equal(x.activations, y.activations)


def test_each_excerpt_is_simulated_once_per_explanation(example_store):
    from shatterbox.neurons import TokenSimulator

    seen = []

    class Counting(TokenSimulator):
        def simulate(self, explanation, excerpts):
            seen.extend((explanation, tuple(e.tokens)) for e in excerpts)
            return super().simulate(explanation, excerpts)

    table = explain_units(lambda l: Units.neurons(example_store, l), {1: [0]}, simulator=Counting(), settings=SMALL)
    assert table.num_rows == 1 and len(seen) == len(set(seen))  # the scorer, detection and fuzzing share the simulations
    assert len(seen) >= 4 * 12  # 4 explanations x at least 12 distinct held-out excerpts each (8 top + 8 random)
