"""Reading a store: the manifest checked once on open, rows by SQL (DuckDB), activations in chunks, top-k."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from shatterbox.engines import Engine, as_engine
from shatterbox.errors import InputError, StoreCorrupt, StoreError
from shatterbox.store import _layout as lay

REPAIR = "re-run the harvest that made it with repair=True (it redoes only the damaged shards), or delete the store and harvest again"
READ_ROWS = 16384  # rows per chunk when streaming activations
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class TopK:
    """The ``k`` largest values of each unit: ``values`` [units, k], with the rows they come from.

    ``sentence_id`` and ``position`` [units, k] locate each value's token; rows with fewer
    than ``k`` tokens in the store are padded with NaN values and -1 ids.
    """

    column: str
    units: np.ndarray
    values: np.ndarray
    sentence_id: np.ndarray
    position: np.ndarray


class Store:
    """An activation store written by :func:`shatterbox.store.harvest`, opened for reading.

    One row per token: ``sentence_id``, ``position``, ``token``, ``token_id``, ``word_index``,
    ``word``, ``special``, ``char_start``/``char_end`` (characters in the sentence), then one fixed-size list column per activation (``hidden_L`` [D],
    ``mlp_L`` [F], ``attn_<stat>_L`` [heads]); the corpus (text and labels) is the ``sentences`` table.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import Corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(Corpus.from_texts(["The bank raised rates.", "A river bank."]), tempfile.mkdtemp(), layers="1")
        >>> s.activations("hidden_1", where="word = 'bank'").shape
        (2, 384)
        >>> s.sql("select count(*) from tokens join sentences on sentence_id = id").fetchall()
        [(13,)]
    """

    def __init__(self, root: Path, manifest: dict, shards: dict[int, Path]) -> None:
        self.root = root
        self.manifest = manifest
        self.shards = shards
        self._con: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def open(cls, path: str | Path, *, partial: bool = False) -> "Store":
        """Open a store; every shard's footer is checked. ``partial=True`` reads an unfinished harvest.

        Examples:
            >>> Store.open("/nonexistent")
            Traceback (most recent call last):
            ...
            shatterbox.errors.StoreError: '/nonexistent' is not a shatterbox store (no manifest.json): make one with `shatterbox harvest CORPUS --out /nonexistent`
        """
        root = Path(path)
        manifest = lay.read_manifest(root)
        shards = lay.shard_files(root)
        for path_ in shards.values():
            lay.shard_meta(path_, manifest["key"], REPAIR)
        missing = sorted(set(range(manifest["shards"])) - set(shards))
        if missing and not partial:
            raise StoreError(
                f"the store {str(root)!r} is incomplete ({len(shards)} of {manifest['shards']} shards, "
                f"first missing: {lay.SHARD.format(missing[0])}): run the same harvest command again to finish it"
            )
        return cls(root, manifest, shards)

    def __reduce__(self):
        """A store travels (e.g. to a Ray worker) as its folder and is opened again there."""
        return (_reopen, (str(self.root),))

    # --- what it holds -------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """Activation column names, in manifest order."""
        return [c["name"] for c in self.manifest["columns"]]

    @property
    def model(self) -> str:
        """The name of the harvested model."""
        return self.manifest["model"]["name"]

    @property
    def complete(self) -> bool:
        """Whether every shard has been written."""
        return len(self.shards) == self.manifest["shards"]

    @property
    def n_tokens(self) -> int:
        """Rows (tokens) in the store."""
        if self.complete and "tokens" in self.manifest:
            return int(self.manifest["tokens"])
        return int(self.sql("select count(*) from tokens").fetchall()[0][0]) if self.shards else 0

    def _stored_sentences(self) -> int:
        """Sentences whose token rows are in the finished shards (a partial store)."""
        return int(self.sql("select count(distinct sentence_id) from tokens").fetchall()[0][0]) if self.shards else 0

    @property
    def n_sentences(self) -> int:
        """Sentences of the corpus the store covers."""
        return int(self.manifest["corpus"]["sentences"])

    def layers(self, kind: str = "hidden") -> list[int]:
        """Layers the store holds ``kind`` columns of: ``hidden`` (0 = embeddings), ``mlp`` or ``attention`` (statistics).

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> harvest(Corpus.from_texts(["Hi there."]), tempfile.mkdtemp(), layers="0,2").layers()
            [0, 2]
        """
        return [c["layer"] for c in self.manifest["columns"] if c["kind"] == kind]

    def require_hidden(self, layers: Sequence[int] | None = None) -> list[int]:
        """``layers`` (default: every hidden layer the store holds), refused with one message naming the
        layers it does hold when one is missing.

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> harvest(Corpus.from_texts(["Hi there."]), tempfile.mkdtemp(), layers="0,2").require_hidden()
            [0, 2]
        """
        available = self.layers("hidden")
        chosen = available if layers is None else [int(l) for l in layers]
        missing = [l for l in chosen if l not in available]
        if not chosen or missing:
            raise InputError(f"the store has no hidden states of layer {missing[0] if missing else '(any)'}: it holds hidden layers "
                             f"{available or 'none'}; harvest with what=hidden")
        return chosen

    def token_vectors(self, column: str, sentence_ids: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """[n, width] ``column`` of the tokens at (``sentence_ids[i]``, ``positions[i]``), in that order.

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> s = harvest(Corpus.from_texts(["Hi there.", "Bye."]), tempfile.mkdtemp(), layers="1")
            >>> s.token_vectors("hidden_1", [1, 0], [1, 2]).shape
            (2, 384)
        """
        ids, places = [int(i) for i in sentence_ids], [int(p) for p in positions]
        table = self._fetch(
            "with wanted as (select unnest(?::bigint[]) as sentence_id, unnest(?::int[]) as position, unnest(?::int[]) as k) "
            f"select t.{self._checked_name(column)} from tokens t join wanted w using (sentence_id, position) order by w.k",
            [ids, places, list(range(len(ids)))],
        )
        if table.num_rows != len(ids):
            raise InputError(f"the store lacks {len(ids) - table.num_rows} of the {len(ids)} tokens asked for (a partial store?): finish the harvest first")
        return _matrix(table.column(0), self.width(column))

    def width(self, column: str) -> int:
        """Values per row of an activation column (e.g. 384 for ``hidden_3`` of the default model)."""
        return int(self._column(column)["width"])

    def to_dict(self) -> dict:
        """JSON-ready summary: model, corpus, columns, shards, tokens, size on disk."""
        size = sum(p.stat().st_size for p in self.shards.values())
        return {
            "path": str(self.root),
            "model": self.manifest["model"],
            "corpus": self.manifest["corpus"],
            "dtype": self.manifest["dtype"],
            "columns": self.manifest["columns"],
            "shards": len(self.shards),
            "shards_expected": self.manifest["shards"],
            "complete": self.complete,
            "tokens": self.n_tokens,
            "sentences_stored": self.manifest["corpus"]["sentences"] if self.complete else self._stored_sentences(),
            "truncated": self.manifest.get("truncated", 0),
            "skipped": self.manifest.get("skipped", 0),
            "bytes": size,
            "seconds": self.manifest.get("seconds"),
        }

    def __repr__(self) -> str:
        return (
            f"Store({str(self.root)!r}, model={self.model!r}, corpus={self.manifest['corpus']['name']!r}, "
            f"sentences={self.n_sentences}, columns={len(self.columns)}, shards={len(self.shards)}/{self.manifest['shards']})"
        )

    # --- SQL -----------------------------------------------------------------------------------
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the views ``tokens`` (all shards) and ``sentences`` (the corpus)."""
        if self._con is None:
            con = duckdb.connect()
            files = [str(p) for p in self.shards.values()]
            if files:
                con.execute(f"create view tokens as select * from read_parquet({_sql_list(files)})")
            else:
                con.execute("create view tokens as select 0::bigint as sentence_id where false")
            con.execute(f"create view sentences as select * from read_parquet({_sql_list([str(self.root / lay.SENTENCES)])})")
            self._con = con
        return self._con

    def sql(self, query: str, params: Sequence | None = None) -> duckdb.DuckDBPyRelation:
        """SQL over the views ``tokens`` and ``sentences``, as a DuckDB relation (``.fetchall()``, ``.df()``).

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> s = harvest(Corpus.from_texts(["Hi there."]), tempfile.mkdtemp(), layers="0")
            >>> s.sql("select token from tokens order by position").fetchall()
            [('[CLS]',), ('hi',), ('there',), ('.',), ('[SEP]',)]
        """
        try:
            return self.connection.cursor().sql(query, params=params)
        except duckdb.Error as exc:
            raise self._read_error(exc) from exc

    def _fetch(self, query: str, params: Sequence | None) -> pa.Table:
        try:
            return _arrow(self.sql(query, params))
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise self._read_error(exc) from exc

    def query(self, sql: str, params: Sequence | None = None) -> pa.Table:
        """The result of SQL over ``tokens`` and ``sentences`` as an Arrow table (bad SQL: one clear error)."""
        return self._fetch(sql, params)

    def rows(self, where: str | None = None, columns: Sequence[str] = lay.META_COLUMNS, params: Sequence | None = None) -> pa.Table:
        """Token rows (metadata columns by default) matching the SQL condition ``where``, in store order."""
        names = ", ".join(self._checked_name(c) for c in columns)
        return self._fetch(f"select {names} from tokens{_where(where)}", params)

    def sentences(self, where: str | None = None, params: Sequence | None = None) -> pa.Table:
        """The corpus rows (id, text, labels) matching ``where``."""
        return self._fetch(f"select * from sentences{_where(where)} order by id", params)

    # --- activations ---------------------------------------------------------------------------
    def activations(self, column: str, where: str | None = None, params: Sequence | None = None) -> np.ndarray:
        """[rows, width] float32 array of one activation column for the rows matching ``where``, in store order.

        Loads the selected rows into memory: use :meth:`batches` to stream a whole store. Without
        ``where`` every page is read with its checksum (damage is an error naming the shard).
        """
        width = self.width(column)
        if not where:
            parts = [values for _, values in self.batches(column)]
            return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)
        table = self._fetch(f"select {column} from tokens{_where(where)}", params)
        return _matrix(table.column(0), width)

    def sentence_vectors(self, column: str, sentence_ids: Sequence[int], *, pool: str = "mean", special: bool = True,
                         transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        """[len(sentence_ids), width] one vector per sentence: the mean of its tokens' ``column`` (``pool="mean"``;
        special tokens included unless ``special=False``: the default is how sentence-transformers embed) or its
        first token's (``pool="first"``, e.g. [CLS]). ``transform`` maps the chosen tokens' rows first (e.g. to their
        factor codes: the mean of the codes, not the codes of the mean). Streams the store; memory stays bounded.

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> s = harvest(Corpus.from_texts(["Hi there.", "Bye."]), tempfile.mkdtemp(), layers="1")
            >>> s.sentence_vectors("hidden_1", [1, 0]).shape
            (2, 384)
        """
        if pool not in ("mean", "first"):
            raise InputError(f"unknown pooling {pool!r}: mean or first")
        ids = np.asarray(sentence_ids, dtype=np.int64)
        index = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int64)
        index[ids] = np.arange(len(ids))
        sums = np.zeros((len(ids), self.width(column)), dtype=np.float64) if transform is None else None
        counts = np.zeros(len(ids))
        where = "position = 0" if pool == "first" else (None if special else "not special")
        for meta, values in self.batches(column, where):
            sid = meta.column("sentence_id").to_numpy()
            rows = np.where(sid < len(index), index[np.minimum(sid, max(len(index) - 1, 0))], -1) if len(index) else np.full(len(sid), -1)
            ok = rows >= 0
            if not ok.any():
                continue
            chosen = values[ok] if transform is None else transform(values[ok])
            if sums is None:
                sums = np.zeros((len(ids), chosen.shape[1]), dtype=np.float64)
            np.add.at(sums, rows[ok], chosen)
            np.add.at(counts, rows[ok], 1)
        if (counts == 0).any():
            missing = int(ids[np.flatnonzero(counts == 0)[0]])
            raise InputError(f"sentence {missing} has no tokens in the store (a partial store, or an id the corpus lacks): finish the harvest first")
        if sums is None:  # no sentence asked for, and a transform of unknown width
            return np.zeros((0, 0), np.float32)
        return (sums / counts[:, None]).astype(np.float32)

    def batches(self, column: str, where: str | None = None, *, rows: int = READ_ROWS, params: Sequence | None = None,
                shards: Sequence[int] | None = None) -> Iterator[tuple[pa.Table, np.ndarray]]:
        """Stream (metadata [n rows], activations [n, width]) chunks of at most ``rows`` rows, in store order;
        memory stays bounded. A full scan (no ``where``) checks every page's checksum. ``shards``: only those
        shards (by index)."""
        width = self.width(column)
        names = ["sentence_id", "position", "token", "word", column]
        paths = list(self.shards.values()) if shards is None else [self.shards[i] for i in shards]
        if not where:
            yield from self._scan(names, width, rows, paths)
            return
        source = "tokens" if shards is None else f"read_parquet({_sql_list([str(p) for p in paths])})"
        query = f"select {', '.join(names)} from {source}{_where(where)}"
        try:
            for batch in _reader(self.sql(query, params), rows):
                table = pa.Table.from_batches([batch])
                yield table.drop_columns([column]), _matrix(table.column(column), width)
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise self._read_error(exc) from exc

    def _scan(self, names: list[str], width: int, rows: int, paths: list[Path]) -> Iterator[tuple[pa.Table, np.ndarray]]:
        """The shards ``paths`` in order through pyarrow, page checksums verified."""
        import pyarrow.parquet as pq

        for path in paths:
            try:
                handle = pq.ParquetFile(path, page_checksum_verification=True)
                batches = handle.iter_batches(batch_size=rows, columns=names)
                while True:
                    batch = next(batches, None)
                    if batch is None:
                        break
                    table = pa.Table.from_batches([batch])
                    yield table.drop_columns([names[-1]]), _matrix(table.column(names[-1]), width)
            except (pa.ArrowException, OSError) as exc:
                raise StoreCorrupt(f"shard {path.name} of {str(self.root)!r} is damaged ({str(exc).splitlines()[0][:200]}): {REPAIR}") from exc

    def top_k(
        self,
        column: str,
        units: int | Sequence[int] | None = None,
        k: int = 10,
        *,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        where: str | None = None,
        engine: Engine | str = "local",
        progress: Callable[[int, int], None] | None = None,
    ) -> TopK:
        """The ``k`` tokens where each unit (a dimension, a neuron, or a column of ``transform``'s output,
        e.g. a factor code) is largest, in one streaming pass over the store; on a Ray ``engine`` the pass is split
        by shard over its replicas, with the same result. ``progress(done, total)``: token rows read of the store's
        (locally), or shards done of all (on Ray).

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> s = harvest(Corpus.from_texts(["a b c", "d e"]), tempfile.mkdtemp(), layers="1", what="mlp")
            >>> t = s.top_k("mlp_1", [0, 5], k=3)
            >>> t.values.shape, bool((np.diff(t.values, axis=1) <= 0).all())
            ((2, 3), True)
        """
        if k < 1:
            raise InputError(f"k must be at least 1 (got {k})")
        engine = as_engine(engine)
        if engine.local:  # one streaming pass over every shard
            total = 0 if progress is None else self.n_tokens if where is None else int(self.sql(f"select count(*) from tokens where {where}").fetchall()[0][0])
            partial = _top_k_of(_counted(self.batches(column, where), progress, total), units, k, transform, column)
        else:
            partial = self._top_k_by_shard(column, units, k, transform, where, engine, progress)
        if partial is None:
            raise InputError("no rows match: loosen `where`")
        chosen, best_v, best_s, best_p = partial
        pad = k - best_v.shape[1]
        if pad > 0:
            best_v = np.pad(best_v, ((0, 0), (0, pad)), constant_values=np.nan)
            best_s, best_p = (np.pad(a, ((0, 0), (0, pad)), constant_values=-1) for a in (best_s, best_p))
        return TopK(column, chosen, best_v, best_s, best_p)

    def _top_k_by_shard(self, column, units, k, transform, where, engine: Engine, progress=None):
        """Each shard's top ``k`` on a replica of ``engine`` (which opens the store itself), merged in shard order:
        the same rows as one pass here, ties included."""
        indices = sorted(self.shards)
        found: dict[int, tuple | None] = {}

        def keep(index: int, part) -> None:
            found[index] = part
            if progress is not None:
                progress(len(found), len(indices))

        engine.map(_reopen, str(self.root),  # as a partial store: the driver chose the shards, every one of them exists
                   lambda store, index: _top_k_of(store.batches(column, where, shards=[index]), units, k, transform, column),
                   indices, keep)
        parts = [found[i] for i in indices if found[i] is not None]
        return _merge_top_k(parts, k) if parts else None

    def top_rows(self, column: str, unit: int, k: int = 10, *, transform: Callable[[np.ndarray], np.ndarray] | None = None,
                 where: str | None = None, engine: Engine | str = "local", progress: Callable[[int, int], None] | None = None) -> pa.Table:
        """:meth:`top_k` of one unit as a table: rank, value, token, word, sentence id, position and the sentence text.

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> s = harvest(Corpus.from_texts(["a b c", "d e"]), tempfile.mkdtemp(), layers="1", what="mlp")
            >>> s.top_rows("mlp_1", 7, k=2).column_names
            ['rank', 'value', 'token', 'word', 'sentence_id', 'position', 'text']
        """
        top = self.top_k(column, [unit], k, transform=transform, where=where, engine=engine, progress=progress)
        found = top.sentence_id[0] >= 0
        keys = pa.table({
            "rank": np.arange(1, int(found.sum()) + 1),
            "sentence_id": top.sentence_id[0][found].astype(np.int64),
            "position": top.position[0][found].astype(np.int32),
            "value": top.values[0][found],
        })
        cursor = self.connection.cursor()
        cursor.register("top_keys", keys)
        query = (
            "select k.rank, k.value, t.token, t.word, k.sentence_id, k.position, s.text from top_keys k "
            "join tokens t on t.sentence_id = k.sentence_id and t.position = k.position "
            "join sentences s on s.id = k.sentence_id order by k.rank"
        )
        try:
            return _arrow(cursor.sql(query))
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            raise self._read_error(exc) from exc

    # --- integrity -----------------------------------------------------------------------------
    def verify(self) -> dict[str, str]:
        """Read every page of every shard with its checksum: {shard file name: problem} (empty when whole)."""
        problems = {}
        for path in self.shards.values():
            problem = lay.verify_shard(path)
            if problem:
                problems[path.name] = problem
        return problems

    def _read_error(self, exc: BaseException) -> StoreError:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, duckdb.Error) and not isinstance(exc, (duckdb.IOException, duckdb.InvalidInputException, duckdb.InternalException)):
            return InputError(f"the query failed: {message}; tables: tokens ({', '.join(lay.META_COLUMNS)}, {', '.join(self.columns[:6])}{' ...' if len(self.columns) > 6 else ''}) and sentences")
        damaged = self.verify()
        if damaged:
            name, problem = next(iter(damaged.items()))
            return StoreCorrupt(f"shard {name} of {str(self.root)!r} is damaged ({problem}): {REPAIR}")
        return StoreError(f"cannot read the store {str(self.root)!r}: {message}")

    def _column(self, name: str) -> dict:
        for c in self.manifest["columns"]:
            if c["name"] == name:
                return c
        raise InputError(f"the store has no column {name!r}; its activation columns are: {', '.join(self.columns)}")

    def _checked_name(self, name: str) -> str:
        if name not in lay.META_COLUMNS:
            self._column(name)
        if not _NAME.match(name):  # pragma: no cover - every known column name matches
            raise InputError(f"bad column name {name!r}")
        return name


def as_store(store: "Store | str | Path") -> "Store":
    """``store`` itself, or the store at that path opened (a path that is not one: one message naming the fix).

    Examples:
        >>> as_store("/nonexistent")
        Traceback (most recent call last):
        ...
        shatterbox.errors.StoreError: '/nonexistent' is not a shatterbox store (no manifest.json): make one with `shatterbox harvest CORPUS --out /nonexistent`
    """
    return store if isinstance(store, Store) else Store.open(store)


def _reopen(root: str) -> "Store":
    return Store.open(root, partial=True)


def _counted(batches, progress: Callable[[int, int], None] | None, total: int):
    """``batches`` passed through, ``progress(rows read, total)`` after each."""
    done = 0
    for meta, values in batches:
        yield meta, values
        done += len(values)
        if progress is not None:
            progress(done, total)


def _top_k_of(batches, units, k: int, transform, column: str):
    """(units, values, sentence ids, positions) of the ``k`` largest values per unit over ``batches``, earliest rows
    first among ties; ``None`` when there is no row."""
    chosen: np.ndarray | None = None if units is None else np.atleast_1d(np.asarray(units, dtype=np.int64))
    best = None
    for meta, values in batches:
        values = transform(values) if transform is not None else values
        if chosen is None:
            chosen = np.arange(values.shape[1])
        if chosen.size and (chosen.min() < 0 or chosen.max() >= values.shape[1]):
            raise InputError(f"unit {int(chosen.max())} is out of range: {column} has units 0-{values.shape[1] - 1}")
        v = values[:, chosen].T.astype(np.float64)  # [units, rows]
        s = np.broadcast_to(meta.column("sentence_id").to_numpy(), v.shape)
        p = np.broadcast_to(meta.column("position").to_numpy(), v.shape)
        best = _merge_top_k([best, (chosen, v, s, p)] if best is not None else [(chosen, v, s, p)], k)
    return best


def _merge_top_k(parts: list[tuple], k: int) -> tuple:
    """The ``k`` largest per unit of partial results given in row order (a stable sort keeps the earlier of equals)."""
    v, s, p = (np.concatenate([part[i] for part in parts], axis=1) for i in (1, 2, 3))
    keep = np.argsort(-v, axis=1, kind="stable")[:, :k]
    return (parts[0][0], *(np.take_along_axis(a, keep, axis=1) for a in (v, s, p)))


def _where(where: str | None) -> str:
    return f" where {where}" if where and where.strip() else ""


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def _arrow(result: duckdb.DuckDBPyRelation) -> pa.Table:
    """The whole result as an Arrow table (DuckDB 2 names it ``to_arrow_table``, 1.x ``arrow``)."""
    fetch = getattr(result, "to_arrow_table", None) or result.arrow
    return fetch()


def _reader(result: duckdb.DuckDBPyRelation, rows: int) -> pa.RecordBatchReader:
    """The result streamed in record batches of at most ``rows`` rows."""
    stream = getattr(result, "to_arrow_reader", None) or result.fetch_arrow_reader
    return stream(rows)


def _matrix(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """A list column of equal-length rows -> [rows, width] numpy (float16 widened to float32)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = array.flatten().to_numpy(zero_copy_only=False) if len(array) else np.zeros(0, np.float32)
    values = values.reshape(-1, width)
    return values.astype(np.float32) if values.dtype == np.float16 else values
