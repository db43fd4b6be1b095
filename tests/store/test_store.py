"""The activation store: rows equal sb.capture(), resumable after SIGKILL, never mixed, damage named and repaired."""
import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

import shatterbox as sb
from shatterbox.trace.stats import ROW_STATS, is_punct, row_stats
from shatterbox.corpus import Corpus, load_corpus
from shatterbox.errors import InputError, StoreCorrupt, StoreError, StoreMismatch
from shatterbox.store import META_COLUMNS, Store, harvest
from tests.conftest import CHAPTER, CORPUS

SENTENCES = CORPUS + ["A sentence with unbelievably polysemous wordpieces: bank, banks, banking.", "\u200b", "Short."]


@pytest.fixture(scope="module")
def small(default_model, tmp_path_factory):
    corpus = Corpus.from_texts(SENTENCES)
    root = tmp_path_factory.mktemp("store") / "s"
    return corpus, harvest(corpus, root, model=default_model, layers="0,1,6", what="hidden,mlp,attention-stats", shard_bytes=40_000)


def _expected_stats(trace):
    punct = np.array([is_punct(label) and not s for label, s in zip(trace.labels, trace.special)])
    return row_stats(trace.attentions, np.isfinite(trace.scores), trace.special, punct)


@pytest.mark.slow
def test_rows_equal_capture(small, default_model):
    corpus, store = small
    assert store.complete and len(store.shards) > 2  # several shards were written
    assert store.manifest["skipped"] == 1  # the zero-width space has no tokens
    for sid, text in enumerate(SENTENCES):
        if text == "\u200b":
            assert store.rows(f"sentence_id = {sid}").num_rows == 0
            continue
        trace = sb.capture(default_model, text)
        rows = store.rows(f"sentence_id = {sid}", ["position", "token", "token_id", "word_index", "word", "special", "char_start", "char_end"]).to_pydict()
        assert rows["char_start"] == trace.offsets[:, 0].tolist() and rows["char_end"] == trace.offsets[:, 1].tolist()
        assert rows["token"] == trace.tokens and rows["position"] == list(range(trace.n_tokens))
        assert rows["token_id"] == trace.token_ids.tolist() and rows["word_index"] == trace.word_index.tolist()
        assert rows["word"] == [trace.words[w] for w in trace.word_index] and rows["special"] == trace.special.tolist()
        for layer in (0, 1, 6):
            np.testing.assert_allclose(store.activations(f"hidden_{layer}", f"sentence_id = {sid}"), trace.hidden_states[layer], atol=1e-5)
        for layer in (1, 6):
            np.testing.assert_allclose(store.activations(f"mlp_{layer}", f"sentence_id = {sid}"), trace.mlp[layer - 1], atol=1e-5)
            stats = _expected_stats(trace)
            for stat in ROW_STATS:
                got = store.activations(f"attn_{stat}_{layer}", f"sentence_id = {sid}")
                np.testing.assert_allclose(got, stats[stat][layer - 1].T, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("name", ["gpt2", "gemma3-window"])  # Gemma: sliding window, 0-d buffers in the model hash
def test_causal_model_rows_equal_capture(tiny_models, tmp_path, name):
    gpt2 = tiny_models[name]
    store = harvest(Corpus.from_texts(CORPUS), tmp_path / "g", model=gpt2, what="hidden,mlp,attention-stats")
    for sid, text in enumerate(CORPUS):
        trace = sb.capture(gpt2, text)
        np.testing.assert_allclose(store.activations("hidden_2", f"sentence_id = {sid}"), trace.hidden_states[2], atol=1e-5)
        np.testing.assert_allclose(store.activations("mlp_1", f"sentence_id = {sid}"), trace.mlp[0], atol=1e-5)
        np.testing.assert_allclose(store.activations("attn_entropy_2", f"sentence_id = {sid}"), _expected_stats(trace)["entropy"][1].T, atol=1e-5)


def test_float16_error_is_within_the_stated_bound(default_model, tmp_path):
    corpus = Corpus.from_texts([CHAPTER])
    half = harvest(corpus, tmp_path / "h", model=default_model, layers="6", dtype="float16").activations("hidden_6")
    exact = sb.capture(default_model, CHAPTER).hidden_states[6]
    assert half.dtype == np.float32
    assert np.all(np.abs(half - exact) <= 4.9e-4 * np.abs(exact) + 6.1e-8)  # float16 rounding, stated in the CLI help


@pytest.mark.slow
def test_shards_are_sized_by_measured_tokens_not_by_sentence_count(tmp_path, default_model):
    long = "The quick brown fox jumps over the lazy dog near the quiet river bank today " * 3
    texts = ["Hi."] * 24 + [long] * 6 + ["Hi."] * 24
    store = harvest(Corpus.from_texts(texts), tmp_path / "s", model=default_model, layers="1", shard_bytes=40_000)
    per_token = 384 * 4 + 64
    longest = max(store.sql("select count(*) from tokens group by sentence_id").fetchall())[0]
    counts = store.sql("select filename, count(*) as n, count(distinct sentence_id) from read_parquet(?, filename=true) group by filename",
                       [[str(p) for p in store.shards.values()]]).fetchall()
    for _, rows, _ in counts:
        assert rows * per_token <= 40_000 + longest * per_token
    per_shard = sorted(c[2] for c in counts)
    assert per_shard[0] <= 2 and per_shard[-1] >= 7  # long sentences one or two a shard, short ones many
    starts = store.manifest["shard_starts"]
    assert starts[0] == 0 and starts == sorted(set(starts)) and len(starts) == store.manifest["shards"] == len(store.shards)


def test_top_k_equals_a_full_sort(small):
    _, store = small
    everything = store.activations("mlp_6")
    keys = store.rows(columns=["sentence_id", "position"]).to_pydict()
    top = store.top_k("mlp_6", [3, 100, 1535], k=5)
    for row, unit in enumerate([3, 100, 1535]):
        order = np.argsort(-everything[:, unit], kind="stable")[:5]
        np.testing.assert_allclose(top.values[row], everything[order, unit], rtol=1e-6)
        assert top.sentence_id[row].tolist() == [keys["sentence_id"][i] for i in order]
        assert top.position[row].tolist() == [keys["position"][i] for i in order]
    projection = np.random.default_rng(0).normal(size=(1536, 4)).astype(np.float32)
    coded = store.top_k("mlp_6", None, k=3, transform=lambda x: x @ projection)
    np.testing.assert_allclose(coded.values, -np.sort(-(everything @ projection).T, axis=1)[:, :3], rtol=1e-5)
    rows = store.top_rows("mlp_6", 100, k=2).to_pylist()
    assert [r["rank"] for r in rows] == [1, 2] and SENTENCES[rows[0]["sentence_id"]] == rows[0]["text"]
    with pytest.raises(InputError, match="out of range: mlp_6 has units 0-1535"):
        store.top_k("mlp_6", 1536)


def test_batches_stream_in_bounded_chunks(small):
    _, store = small
    sizes, total = [], 0
    for meta, values in store.batches("hidden_1", rows=7):
        sizes.append(len(values))
        assert values.shape == (meta.num_rows, 384)
        total += len(values)
    assert max(sizes) <= 7 and total == store.n_tokens


def test_sql_joins_tokens_and_sentences_and_duckdb_reads_the_shards(small):
    import duckdb

    _, store = small
    rows = store.query("select t.word, s.text from tokens t join sentences s on s.id = t.sentence_id where t.word = 'banks'").to_pylist()
    assert rows == [{"word": "banks", "text": SENTENCES[-3]}]
    direct = duckdb.sql(f"select count(*) from '{store.root}/*.parquet'").fetchall()[0][0]
    assert direct == store.n_tokens == store.manifest["tokens"]
    with pytest.raises(InputError, match="the query failed"):
        store.query("select nonsense from tokens")


def test_the_same_weights_under_another_name_or_folder_reuse_the_store(tiny_models, tmp_path):
    bert = tiny_models["bert"]
    corpus = Corpus.from_texts(["one small text", "and another"])
    first = harvest(corpus, tmp_path / "s", model=bert, layers="1")
    renamed = dataclasses.replace(bert, name="/another/folder/bert")
    renamed.model.config._name_or_path = "/another/folder/bert"
    try:
        again = harvest(corpus, tmp_path / "s", model=renamed, layers="1")
    finally:
        renamed.model.config._name_or_path = bert.name
    same = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert same(again.manifest) == same(first.manifest)  # reused as it is: the name is a label, the weights hash is the model


def test_another_model_or_corpus_is_refused(small, tiny_models, tmp_path):
    corpus, store = small
    with pytest.raises(StoreMismatch, match=r"holds model 'default' .*this harvest is model '.*bert'.*overwrite=True"):
        harvest(corpus, store.root, model=tiny_models["bert"], layers="0,1", what="hidden,mlp,attention-stats")
    with pytest.raises(StoreMismatch, match="holds corpus"):
        harvest(Corpus.from_texts(["other text"]), store.root, layers="0,1,6", what="hidden,mlp,attention-stats")
    other = tmp_path / "not-a-store"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="exists and is not a shatterbox store"):
        harvest(corpus, other)


@pytest.mark.slow
def test_overwrite_replaces_a_store(tmp_path, default_model):
    harvest(Corpus.from_texts(["one text"]), tmp_path / "o", model=default_model, layers="1")
    store = harvest(Corpus.from_texts(["another text here"]), tmp_path / "o", model=default_model, layers="1", overwrite=True)
    assert store.query("select distinct sentence_id from tokens").num_rows == 1
    assert store.manifest["corpus"]["sentences"] == 1 and "another" in store.query("select token from tokens").column(0).to_pylist()


def _copy_store(store, target):
    import shutil

    shutil.copytree(store.root, target)
    return target


def test_truncated_shard_is_named_with_the_repair(small, tmp_path, default_model):
    corpus, store = small
    root = _copy_store(store, tmp_path / "t")
    shard = sorted(root.glob("part-*.parquet"))[1]
    shard.write_bytes(shard.read_bytes()[:-50])
    with pytest.raises(StoreCorrupt, match=rf"shard {shard.name} of .* is truncated or damaged .*repair=True"):
        Store.open(root)
    repaired = harvest(corpus, root, model=default_model, layers="0,1,6", what="hidden,mlp,attention-stats", shard_bytes=40_000, repair=True)
    np.testing.assert_array_equal(repaired.activations("mlp_6"), store.activations("mlp_6"))


def test_damaged_page_is_found_by_checksums_and_repaired(small, tmp_path, default_model):
    corpus, store = small
    root = _copy_store(store, tmp_path / "d")
    shard = sorted(root.glob("part-*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    column = pq.ParquetFile(shard).metadata.row_group(0).column(len(META_COLUMNS) + 1)  # hidden_1's values, mid-file
    at = column.data_page_offset + column.total_compressed_size // 2
    data[at:at + 8] = b"\xff" * 8
    shard.write_bytes(bytes(data))
    damaged = Store.open(root)  # the footer is intact
    assert list(damaged.verify()) == [shard.name]
    with pytest.raises(StoreCorrupt, match=rf"shard {shard.name} .* is damaged .*repair=True"):
        damaged.activations("hidden_1")
    repaired = harvest(corpus, root, model=default_model, layers="0,1,6", what="hidden,mlp,attention-stats", shard_bytes=40_000, repair=True)
    assert repaired.verify() == {}
    np.testing.assert_array_equal(repaired.activations("hidden_1"), store.activations("hidden_1"))


@pytest.mark.slow
def test_a_half_written_temporary_shard_is_ignored_and_redone(tmp_path, default_model):
    corpus = Corpus.from_texts(SENTENCES[:6])
    full = harvest(corpus, tmp_path / "full", model=default_model, layers="1", shard_bytes=20_000)
    root = tmp_path / "part"
    partial = harvest(corpus, root, model=default_model, layers="1", shard_bytes=20_000)
    last = sorted(root.glob("part-*.parquet"))[-1]
    last.rename(root / f".{last.name}.tmp")
    (root / f".{last.name}.tmp").write_bytes(b"PAR1 half a shard")
    with pytest.raises(StoreError, match="is incomplete .* run the same harvest command again"):
        Store.open(root)
    assert Store.open(root, partial=True).complete is False
    resumed = harvest(corpus, root, model=default_model, layers="1", shard_bytes=20_000)
    np.testing.assert_array_equal(resumed.activations("hidden_1"), full.activations("hidden_1"))
    assert partial.n_tokens == resumed.n_tokens


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest
    corpus = load_corpus("wordnet", limit=240, seed=0)
    harvest(corpus, sys.argv[1], layers="1,6", what="hidden,mlp", shard_bytes=1_500_000,
            progress=lambda done, tokens, total: time.sleep(0.05))
    """
)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_result(tmp_path, default_model):
    root = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(root)], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and len(list(root.glob("part-*.parquet"))) < 2:
        time.sleep(0.02)
    time.sleep(0.13)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(list(root.glob("part-*.parquet")))
    manifest = __import__("json").loads((root / "manifest.json").read_text())
    assert 2 <= written < manifest["shards"], "the kill must land mid-run"
    assert manifest["complete"] is False
    corpus = load_corpus("wordnet", limit=240, seed=0)
    args = dict(model=default_model, layers="1,6", what="hidden,mlp", shard_bytes=1_500_000)
    resumed = harvest(corpus, root, **args)
    clean = harvest(corpus, tmp_path / "clean", **args)
    key = "select sentence_id, position, count(*) over (partition by sentence_id, position) n from tokens order by 1, 2"
    assert resumed.query(key).equals(clean.query(key))
    assert resumed.query("select max(n) from (" + key + ")").column(0)[0].as_py() == 1  # no duplicate rows
    assert set(resumed.query("select distinct sentence_id from tokens").column(0).to_pylist()) == set(corpus.ids.tolist())
    for column in ("hidden_6", "mlp_1"):
        np.testing.assert_array_equal(resumed.activations(column), clean.activations(column))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(what="hidden,logits"), "cannot harvest 'logits'"),
        (dict(layers="9"), "layer 9 is out of range: this model has layers 1-6"),
        (dict(layers="two"), "cannot read the layers 'two'"),
        (dict(layers="0", what="mlp"), "layer 0 is the embeddings"),
        (dict(dtype="int8"), "unknown dtype 'int8'"),
        (dict(batch_tokens=100), "batch_tokens must be at least"),
    ],
)
def test_bad_harvest_arguments_name_the_fix(tmp_path, default_model, kwargs, message):
    with pytest.raises(InputError, match=message):
        harvest(Corpus.from_texts(["a text"]), tmp_path / "x", model=default_model, **kwargs)


def test_open_names_what_is_missing(tmp_path):
    with pytest.raises(StoreError, match="is not a shatterbox store .*shatterbox harvest"):
        Store.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreCorrupt, match="manifest .* unreadable"):
        Store.open(tmp_path)


def test_a_run_killed_before_its_corpus_table_was_written_resumes(tmp_path, default_model):
    import shutil

    corpus = Corpus.from_texts(SENTENCES[:4])
    full = harvest(corpus, tmp_path / "s", model=default_model, layers="1")
    expected = full.activations("hidden_1")
    shutil.rmtree(tmp_path / "s" / "corpus")
    for shard in (tmp_path / "s").glob("part-*.parquet"):
        shard.unlink()  # the state right after the manifest was written
    resumed = harvest(corpus, tmp_path / "s", model=default_model, layers="1")
    np.testing.assert_array_equal(resumed.activations("hidden_1"), expected)
    assert resumed.sentences().column("text").to_pylist() == SENTENCES[:4]


def test_token_vectors_follow_the_order_asked_and_refuse_missing_tokens(small):
    _, small = small
    column = small.columns[0]
    rows = small.rows(columns=["sentence_id", "position"]).to_pylist()
    picked = [rows[5], rows[0], rows[-1], rows[5]]  # out of store order, one twice
    got = small.token_vectors(column, [r["sentence_id"] for r in picked], [r["position"] for r in picked])
    for r, vector in zip(picked, got):
        want = small.activations(column, "sentence_id = ? and position = ?", [r["sentence_id"], r["position"]])[0]
        np.testing.assert_array_equal(vector, want)
    with pytest.raises(InputError, match="lacks 1 of the 2 tokens"):
        small.token_vectors(column, [rows[0]["sentence_id"], 10**6], [0, 0])
    assert small.require_hidden() == small.layers() and "hidden states of layer 99" in _message(lambda: small.require_hidden([99]))


def _message(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    return str(info.value)


def test_the_harvesting_model_is_loaded_again_even_with_random_weights(default_model, tmp_path):
    from shatterbox.models import random_weights
    from shatterbox.store import harvested_model, model_hash

    corpus = Corpus.from_texts(["Hi there."])
    control = harvest(corpus, tmp_path / "r", model=random_weights(default_model, 3), layers="1")
    again = harvested_model(control)  # drawn again from the base model and the seed: the same weights
    assert again.name == "default (random weights, seed 3)" and model_hash(again) == control.manifest["model"]["hash"]
    with pytest.raises(InputError, match="not with 'default'"):
        harvested_model(control, default_model)


def test_values_beyond_float16_are_refused_not_stored_as_infinity(tiny_models, tmp_path):
    import torch

    bert = tiny_models["bert"]
    with torch.no_grad():
        saved = bert.model.embeddings.LayerNorm.weight.clone()
        bert.model.embeddings.LayerNorm.weight.mul_(1e6)  # hidden state 0 far beyond float16's 65504
    try:
        with pytest.raises(InputError, match="beyond float16's range .*dtype float32"):
            harvest(Corpus.from_texts(["one text"]), tmp_path / "h", model=bert, layers="0", dtype="float16")
    finally:
        with torch.no_grad():
            bert.model.embeddings.LayerNorm.weight.copy_(saved)
