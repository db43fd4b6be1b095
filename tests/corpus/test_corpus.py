"""Corpora: readers for every format, seeded sampling, chunking by tokens, and clear errors."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shatterbox.corpus import Corpus, CorpusError, load_corpus, split_sentences


def test_lines_skip_blank_lines_and_number_from_zero(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("first sentence\n\n  \nsecond one\nthird\n", encoding="utf-8")
    c = load_corpus(path)
    assert c.texts == ["first sentence", "second one", "third"]
    assert c.ids.tolist() == [0, 1, 2]


def test_prose_is_split_reproducibly(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("Mr. Brown met Dr. Who at 5 p.m. in the U.S. capital. It rained!\nThey left?  \"Yes.\" Then J. R. R. Tolkien wrote.\n\nA new paragraph", encoding="utf-8")
    expected = [
        "Mr. Brown met Dr. Who at 5 p.m. in the U.S. capital.",
        "It rained!",
        "They left?",
        "\"Yes.\"",
        "Then J. R. R. Tolkien wrote.",
        "A new paragraph",
    ]
    assert load_corpus(path, prose=True).texts == expected
    assert split_sentences(path.read_text()) == expected


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_tables_read_the_text_column_and_keep_labels(tmp_path, suffix):
    table = pa.table({"review": ["good film", "bad film", ""], "label": ["pos", "neg", "neg"]})
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        pq.write_table(table, path)
    else:
        sep = "\t" if suffix == ".tsv" else ","
        path.write_text("review{0}label\ngood film{0}pos\nbad film{0}neg\n{0}neg\n".format(sep), encoding="utf-8")
    c = load_corpus(path, column="review")
    assert c.texts == ["good film", "bad film"]  # the empty row is dropped
    assert c.column("label") == ["pos", "neg"]
    with pytest.raises(CorpusError, match="no column 'text'; its columns are: review, label"):
        load_corpus(path)


def test_sampling_is_seeded_and_keeps_ids():
    c = Corpus.from_texts([f"sentence {i}" for i in range(100)])
    a, b, other = c.sample(10, seed=1), c.sample(10, seed=1), c.sample(10, seed=2)
    assert a.texts == b.texts and a.texts != other.texts
    assert all(t == f"sentence {i}" for i, t in zip(a.ids, a.texts))
    assert np.all(np.diff(a.ids) > 0)  # kept in corpus order
    shuffled = load_corpus(c, shuffle=True, seed=3, limit=5)
    assert shuffled.texts == c.shuffle(3).texts[:5]
    assert sorted(c.shuffle(3).ids.tolist()) == list(range(100))


def test_where_filters_and_casts(tmp_path):
    c = Corpus.from_texts(["a", "b", "c"], kind=["x", "y", "x"], n=[1, 2, 3])
    assert c.where(kind="x").texts == ["a", "c"]
    assert c.where(kind=["x", "y"], n=["2"]).texts == ["b"]
    with pytest.raises(CorpusError, match="has no column 'nope'"):
        c.where(nope="x")
    with pytest.raises(CorpusError, match="no sentences left"):
        load_corpus(c, where={"kind": "z"})


def test_chunks_cover_every_token_and_respect_the_bound(default_model):
    tok = default_model.tokenizer
    text = " ".join(["internationalization"] * 7 + ["the cat sat on the mat"] * 5)
    chunks = Corpus.from_texts([text, "short one"]).chunk(tok, 12)
    pieces = [tok(t, add_special_tokens=False)["input_ids"] for t in chunks.texts]
    assert max(len(p) for p in pieces) <= 12
    whole = tok(text, add_special_tokens=False)["input_ids"]
    assert [i for p, d in zip(pieces, chunks.column("doc_id")) if d == 0 for i in p] == whole
    assert chunks.column("chunk")[:3] == [0, 1, 2] and chunks.texts[-1] == "short one"
    assert not any(t.startswith("##") for t in tok.convert_ids_to_tokens([p[0] for p in pieces]))  # cut at word starts


@pytest.mark.parametrize(
    "source, message",
    [
        ("nope.txt", "no corpus file 'nope.txt'"),
        ("empty", "no sentences left"),
        ("latin1", "give a UTF-8 text file"),
    ],
)
def test_bad_corpora_name_the_fix(tmp_path, source, message):
    if source == "empty":
        (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
        source = tmp_path / "empty.txt"
    elif source == "latin1":
        (tmp_path / "l.txt").write_bytes("caf\xe9\n".encode("latin-1"))
        source = tmp_path / "l.txt"
    with pytest.raises(CorpusError, match=message):
        load_corpus(source)


def test_fingerprint_changes_with_any_text():
    a = Corpus.from_texts(["one", "two"])
    assert a.fingerprint() == Corpus.from_texts(["one", "two"]).fingerprint()
    assert a.fingerprint() != Corpus.from_texts(["one", "two!"]).fingerprint()
    assert a.fingerprint() != Corpus.from_texts(["two", "one"]).fingerprint()
