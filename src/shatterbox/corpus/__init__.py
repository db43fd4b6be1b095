"""Corpora: sentences with labels, read from files or shipped, sampled with a seed, chunked by tokens.

A :class:`Corpus` is a table (pyarrow) with an ``id`` and a ``text`` column and any label columns.
Ids survive sampling, shuffling and chunking, so labels can always be joined back.

==================================  =============================================================
source                              how it is read
==================================  =============================================================
``"wordnet"``                       the shipped corpus: 165,998 WordNet 3.0 glosses and example
                                    sentences with sense, part of speech and supersense labels
``"wordnet-senses"``                5,000 WordNet sentences: every example of the words with two or
                                    more senses marked in 3+ examples each, then a seeded sample
``"sentiment"``                     the 716 hand-written sentences the shipped sentiment classifier was
                                    trained on, with ``label`` (positive/negative) and ``kind`` columns
``*.txt`` (default)                 one sentence per line (blank lines skipped)
``*.txt`` with ``prose=True``       running text split into sentences (:func:`split_sentences`)
``*.csv``, ``*.tsv``, ``*.parquet``  the ``text`` column (or ``column=``); other columns are labels
==================================  =============================================================

Examples:
    >>> c = load_corpus("wordnet", limit=1000, seed=0, where={"kind": "example"})
    >>> len(c), c.table.column_names[:3]
    (1000, ['id', 'text', 'kind'])
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shatterbox.corpus.wordnet import DATA_FILE
from shatterbox.errors import InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["Corpus", "CorpusError", "SHIPPED", "load_corpus", "sentiment_corpus", "sample_indices", "split_sentences", "wordnet_corpus"]

# The sentiment sentences ship with the classifier they trained (read as a file: no import of that package from here).
SENTIMENT_FILE = Path(__file__).resolve().parent.parent / "classifiers" / "data" / "sentiment.tsv"
SHIPPED = {"wordnet": DATA_FILE, "wordnet-senses": DATA_FILE, "sentiment": SENTIMENT_FILE}


class CorpusError(InputError):
    """A corpus that cannot be read: missing file, unknown column, no sentences."""


def sample_indices(size: int, n: int, seed: int = 0) -> np.ndarray:
    """Which ``n`` of ``size`` rows a seeded sample keeps, in order: the first ``n`` of one seeded permutation, so that
    a smaller sample is part of a larger one (what ``--limit`` means in every command).

    Examples:
        >>> sample_indices(10, 3, seed=1).tolist(), set(sample_indices(10, 3, 1)) <= set(sample_indices(10, 6, 1))
        ([4, 7, 8], True)
    """
    if n >= size:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).permutation(size)[:n])


@dataclass(frozen=True)
class Corpus:
    """Sentences (``table["text"]``) with their ids and labels; ``name`` says where they came from.

    Examples:
        >>> c = Corpus.from_texts(["one sentence.", "another one."])
        >>> c.texts, c.ids.tolist()
        (['one sentence.', 'another one.'], [0, 1])
    """

    table: pa.Table
    name: str = "texts"

    @classmethod
    def from_texts(cls, texts: Iterable[str], name: str = "texts", **labels: Iterable) -> "Corpus":
        """A corpus of ``texts`` numbered from 0, with optional label columns.

        Examples:
            >>> Corpus.from_texts(["good", "bad"], label=[1, 0]).column("label")
            [1, 0]
        """
        texts = list(texts)
        columns = {"id": pa.array(np.arange(len(texts), dtype=np.int64)), "text": pa.array(texts, pa.string())}
        columns.update({k: pa.array(list(v)) for k, v in labels.items()})
        return cls(_checked(pa.table(columns), name), name)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def texts(self) -> list[str]:
        """The sentences, in corpus order."""
        return self.table.column("text").to_pylist()

    @property
    def ids(self) -> np.ndarray:
        """Each sentence's id (its row in the source, kept through sampling and chunking)."""
        return self.table.column("id").to_numpy()

    def column(self, name: str) -> list:
        """One label column as a list (names the available columns when it is missing)."""
        _require_columns(self.table, [name], self.name)
        return self.table.column(name).to_pylist()

    def fingerprint(self) -> str:
        """SHA-256 of the ids and texts in order: two corpora with the same sentences share it.

        Examples:
            >>> Corpus.from_texts(["a b"]).fingerprint() == Corpus.from_texts(["a b"]).fingerprint()
            True
        """
        digest = hashlib.sha256()
        for i, text in zip(self.ids.tolist(), self.texts):
            digest.update(f"{i}\t{len(text)}\t".encode())
            digest.update(text.encode("utf-8"))
        return digest.hexdigest()

    def select(self, rows: np.ndarray | list[int]) -> "Corpus":
        """The rows at these positions, in this order."""
        return Corpus(self.table.take(pa.array(np.asarray(rows, dtype=np.int64))), self.name)

    def shuffle(self, seed: int = 0) -> "Corpus":
        """All rows in a seeded random order (same seed, same order, on every machine).

        Examples:
            >>> Corpus.from_texts(list("abcde")).shuffle(0).texts == Corpus.from_texts(list("abcde")).shuffle(0).texts
            True
        """
        return self.select(np.random.default_rng(seed).permutation(len(self)))

    def sample(self, n: int, seed: int = 0) -> "Corpus":
        """``n`` rows drawn without replacement with ``seed``, kept in corpus order: the first ``n`` of one seeded
        permutation, so a smaller sample is part of a larger one with the same seed.

        Examples:
            >>> c = Corpus.from_texts([f"t{i}" for i in range(100)])
            >>> set(c.sample(3, seed=1).texts) <= set(c.sample(10, seed=1).texts)
            True
        """
        if n >= len(self):
            return self
        return self.select(sample_indices(len(self), n, seed))

    def head(self, n: int) -> "Corpus":
        """The first ``n`` rows."""
        return Corpus(self.table.slice(0, max(0, n)), self.name)

    def where(self, **equals: object) -> "Corpus":
        """Rows whose columns equal the given values (a list means any of them).

        Examples:
            >>> Corpus.from_texts(["a", "b"], kind=["x", "y"]).where(kind="y").texts
            ['b']
        """
        _require_columns(self.table, list(equals), self.name)
        mask = None
        for name, value in equals.items():
            values = list(value) if isinstance(value, (list, tuple, set)) else [value]
            column = self.table.column(name)
            try:
                value_set = pa.array(values).cast(column.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise CorpusError(f"cannot compare the column {name!r} ({column.type}) with {values!r}") from None
            test = pc.is_in(column, value_set=value_set)
            mask = test if mask is None else pc.and_(mask, test)
        return Corpus(self.table.filter(mask), self.name) if mask is not None else self

    def chunk(self, tokenizer: "PreTrainedTokenizerBase", max_tokens: int = 64) -> "Corpus":
        """Split every text into pieces of at most ``max_tokens`` tokens (special tokens not counted).

        Pieces end at word boundaries where a word fits (a word longer than ``max_tokens`` is cut);
        each row keeps its ``id`` and gains ``chunk`` (0, 1, ...) and ``doc_id`` (the text's row).

        Examples:
            >>> from shatterbox.models import load
            >>> c = Corpus.from_texts(["one two three four five six seven"]).chunk(load().tokenizer, 3)
            >>> c.texts
            ['one two three', 'four five six', 'seven']
        """
        if max_tokens < 1:
            raise CorpusError(f"max_tokens must be at least 1 (got {max_tokens})")
        texts = self.texts
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        keep, pieces, numbers = [], [], []
        for row, text in enumerate(texts):
            spans = _chunk_spans(encoded.word_ids(row), encoded["offset_mapping"][row], max_tokens)
            for number, (start, end) in enumerate(spans):
                keep.append(row)
                pieces.append(text[start:end])
                numbers.append(number)
        table = self.table.take(pa.array(keep, pa.int64()))
        table = table.set_column(table.column_names.index("text"), "text", pa.array(pieces, pa.string()))
        table = table.append_column("chunk", pa.array(numbers, pa.int32())).append_column("doc_id", pa.array(keep, pa.int64()))
        table = table.set_column(0, "id", pa.array(np.arange(len(pieces), dtype=np.int64)))
        return Corpus(table, f"{self.name}, chunks of {max_tokens} tokens")

    def to_parquet(self, path: str | os.PathLike[str]) -> str:
        """Write the table as Parquet (zstd)."""
        import pyarrow.parquet as pq

        pq.write_table(self.table, os.fspath(path), compression="zstd")
        return os.fspath(path)

    def __repr__(self) -> str:
        labels = [c for c in self.table.column_names if c not in ("id", "text")]
        return f"Corpus({self.name!r}, sentences={len(self)}, labels={labels})"


def _chunk_spans(word_ids: list[int | None], offsets: list, max_tokens: int) -> list[tuple[int, int]]:
    """Character spans of consecutive token windows of at most ``max_tokens``, cut before a word starts."""
    n = len(word_ids)
    spans, start = [], 0
    while start < n:
        stop = min(start + max_tokens, n)
        if stop < n:
            starts_word = [i for i in range(start + 1, stop + 1) if word_ids[i] != word_ids[i - 1]]
            if starts_word:
                stop = starts_word[-1]
        spans.append((int(offsets[start][0]), int(offsets[stop - 1][1])))
        start = stop
    return spans


_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "cf", "no", "fig", "jr", "sr", "inc", "ltd", "co", "approx", "u.s", "a.m", "p.m"}
_BOUNDARY = re.compile(r"([.!?…]+[\"')\]]*)\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences, reproducibly: blank lines always end one; otherwise
    ``.``, ``!``, ``?`` or ``…`` (with closing quotes) followed by space and a capital or digit,
    except after common abbreviations (Mr., e.g., U.S.) and single initials.

    Examples:
        >>> split_sentences("Dr. Smith arrived. He sat down!  Then, e.g. Tea? Yes.\\n\\nNew paragraph")
        ['Dr. Smith arrived.', 'He sat down!', 'Then, e.g. Tea?', 'Yes.', 'New paragraph']
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _BOUNDARY.finditer(paragraph):
            word = paragraph[start:match.start()].rsplit(" ", 1)[-1].lower()
            if match.group(1) == "." and (word.rstrip(".") in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
                continue
            sentences.append(paragraph[start:match.end(1)])
            start = match.end()
        if paragraph[start:].strip():
            sentences.append(paragraph[start:].strip())
    return sentences


def wordnet_corpus() -> Corpus:
    """The shipped WordNet 3.0 corpus (glosses and examples with sense labels; licence in
    ``shatterbox/corpus/data/LICENSE-WordNet.txt``). See :mod:`shatterbox.corpus.wordnet`.

    Examples:
        >>> c = wordnet_corpus()
        >>> len(c) > 160_000, c.column("supersense")[0]
        (True, 'noun.Tops')
    """
    import pyarrow.parquet as pq

    table = pq.read_table(DATA_FILE)
    return Corpus(table.set_column(0, "id", table.column("id").cast(pa.int64())), "wordnet")


def sentiment_corpus() -> Corpus:
    """The shipped sentiment sentences (``label``: positive or negative; ``kind``: general, negation or contrast).

    Examples:
        >>> c = sentiment_corpus()
        >>> len(c), sorted(set(c.column("label")))
        (716, ['negative', 'positive'])
    """
    import csv

    with SENTIMENT_FILE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    table = pa.table({"id": np.arange(len(rows), dtype=np.int64), "text": [r["text"] for r in rows], "label": [r["label"] for r in rows],
                      "kind": [r["kind"] for r in rows]})
    return Corpus(table, "sentiment")


def load_corpus(
    source: str | os.PathLike[str] | Corpus,
    *,
    column: str = "text",
    prose: bool = False,
    where: Mapping[str, object] | None = None,
    shuffle: bool = False,
    limit: int | None = None,
    seed: int = 0,
    chunk_tokens: int | None = None,
    tokenizer: "PreTrainedTokenizerBase | None" = None,
) -> Corpus:
    """Read a corpus (see the module table), filter it, then sample/shuffle/cap it with ``seed``.

    ``where`` keeps rows whose label columns equal the values; ``limit`` keeps that many rows
    (a seeded sample in corpus order, or the first ones after ``shuffle``); ``chunk_tokens``
    splits texts into pieces of at most that many tokens of ``tokenizer`` (default model's if none).

    Examples:
        >>> load_corpus("wordnet", where={"supersense": "noun.animal", "kind": "example"}, limit=3).column("supersense")
        ['noun.animal', 'noun.animal', 'noun.animal']
    """
    corpus = source if isinstance(source, Corpus) else _read(source, column=column, prose=prose)
    if where:
        corpus = corpus.where(**dict(where))
    if shuffle:
        corpus = corpus.shuffle(seed)
    if limit is not None:
        if limit < 1:
            raise CorpusError(f"limit must be at least 1 (got {limit})")
        corpus = corpus.head(limit) if shuffle else corpus.sample(limit, seed)
    if chunk_tokens is not None:
        if tokenizer is None:
            from shatterbox.models import load

            tokenizer = load().tokenizer
        corpus = corpus.chunk(tokenizer, chunk_tokens)
    if not len(corpus):
        raise CorpusError(f"the corpus {corpus.name!r} has no sentences left after filtering: loosen `where` or check the file")
    return corpus


def _read(source: str | os.PathLike[str], *, column: str, prose: bool) -> Corpus:
    name = os.fspath(source)
    if name == "wordnet-senses":
        from shatterbox.corpus.senses import sense_corpus

        return sense_corpus()
    if name == "sentiment":
        return sentiment_corpus()
    if name in SHIPPED:
        return wordnet_corpus()
    path = Path(name)
    if not path.is_file():
        shipped = ", ".join(SHIPPED)
        raise CorpusError(f"no corpus file {name!r}: give a .txt (one sentence per line), .csv, .tsv or .parquet file, or a shipped corpus ({shipped})")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        table = _read_table(path, suffix)
        _require_columns(table, [column], name)
        return Corpus(_checked(_with_ids(table, column), name), name)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read the corpus {name!r} ({exc}): give a UTF-8 text file") from exc
    texts = split_sentences(raw) if prose else [line.strip() for line in raw.splitlines() if line.strip()]
    return Corpus.from_texts(texts, name=name)


def _read_table(path: Path, suffix: str) -> pa.Table:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        options = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
        return pacsv.read_csv(path, parse_options=options)
    except (OSError, pa.ArrowInvalid) as exc:
        raise CorpusError(f"cannot read the table {str(path)!r}: {str(exc).splitlines()[0]}") from exc


def _with_ids(table: pa.Table, column: str) -> pa.Table:
    """Move ``column`` to ``text`` (as strings) and add ``id`` = row number unless the table has one."""
    text = table.column(column).cast(pa.string())
    rest = table.drop_columns([c for c in (column, "text") if c in table.column_names])
    if "id" in rest.column_names:
        ids = rest.column("id").cast(pa.int64())
        rest = rest.drop_columns(["id"])
    else:
        ids = pa.array(np.arange(table.num_rows, dtype=np.int64))
    return pa.table([ids, text, *rest.columns], names=["id", "text", *rest.column_names])


def _checked(table: pa.Table, name: str) -> pa.Table:
    """Drop rows whose text is missing or blank; refuse duplicate ids."""
    text = table.column("text")
    keep = pc.and_(pc.is_valid(text), pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(pc.fill_null(text, ""))), 0))
    table = table.filter(keep)
    if pc.count_distinct(table.column("id")).as_py() != table.num_rows:
        raise CorpusError(f"the corpus {name!r} has duplicate ids: make its 'id' column unique or drop it")
    return table


def _require_columns(table: pa.Table, names: list[str], source: str) -> None:
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise CorpusError(f"the corpus {source!r} has no column {missing[0]!r}; its columns are: {', '.join(table.column_names)}")

