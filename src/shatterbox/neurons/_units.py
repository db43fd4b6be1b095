"""Units (MLP neurons, factor codes) and their excerpts, read from the store without running the model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from shatterbox.engines import Engine, as_engine
from shatterbox.errors import InputError
from shatterbox.store import Store, parse_ranges

WINDOW = 32  # tokens shown around a unit's strongest token
MAXIMA_BYTES = 256 << 20  # per-sentence maxima held at once: more units are done in more passes
WHERE = "not special"  # excerpts are the text's own tokens: [CLS], [SEP] and padding are left out


@dataclass
class Units:
    """The units of one layer: columns of a store column, or of a transform of it (a factor model's codes).

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import Corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(Corpus.from_texts(["a b c", "d e"]), tempfile.mkdtemp(), layers="1", what="mlp")
        >>> u = Units.neurons(s, 1)
        >>> u.name(5), u.count
        ('layer 1 neuron 5', 1536)
    """

    store: Store
    column: str
    kind: str  # "neuron" or "factor"
    layer: int
    count: int
    transform: Callable[[np.ndarray, Sequence[int], pa.Table], np.ndarray] | None = None  # (raw, units, token rows) -> values
    source: str = ""  # a factors file, for factor units

    @classmethod
    def neurons(cls, store: Store, layer: int) -> "Units":
        """The MLP neurons of ``layer`` (the store must hold ``mlp_<layer>``: harvest with ``--what mlp``)."""
        if layer not in store.layers("mlp"):
            raise InputError(f"the store has no MLP activations of layer {layer}: it holds MLP layers {store.layers('mlp') or 'none'}; "
                             f"harvest with what=mlp layers={layer}")
        column = f"mlp_{layer}"
        return cls(store, column, "neuron", layer, store.width(column))

    @classmethod
    def factors(cls, store: Store, factors, layer: int, source: str = "") -> "Units":
        """The factors of ``factors`` (fitted on ``store``), coded from the hidden states of ``layer``."""
        if factors.store.get("key") != store.manifest.get("key"):
            raise InputError("these factors were fitted on another store (or it was harvested again): give that store, or fit again")
        store.require_hidden([layer])

        def codes(hidden: np.ndarray, units: Sequence[int], meta: pa.Table) -> np.ndarray:
            return factors.codes(hidden, layer, units=list(units))[:, list(units)]

        return cls(store, f"hidden_{layer}", "factor", layer, factors.n_factors, codes, source)

    @classmethod
    def planted(cls, store: Store, fire: Callable[[pa.Table], np.ndarray], count: int = 1, name: str = "planted") -> "Units":
        """Units with a known answer: ``fire(token rows)`` gives [rows, count] activations from the tokens' metadata
        (``token``, ``word``, ``position``, ...), e.g. 1 on one word and 0 elsewhere — to check that an explainer finds it.

        Examples:
            >>> import tempfile
            >>> from shatterbox.corpus import Corpus
            >>> from shatterbox.store import harvest
            >>> s = harvest(Corpus.from_texts(["a bank", "the dog"]), tempfile.mkdtemp(), layers="1")
            >>> u = Units.planted(s, lambda rows: (np.array(rows.column("token").to_pylist()) == "bank")[:, None] * 1.0)
            >>> sentence_maxima(u, [0])[1].ravel().tolist()
            [1.0, 0.0]
        """
        column = next(iter(store.columns), None)
        if column is None:
            raise InputError("the store has no activation columns")

        def values(raw: np.ndarray, units: Sequence[int], meta: pa.Table) -> np.ndarray:
            return np.asarray(fire(meta), dtype=np.float32).reshape(len(raw), -1)[:, list(units)]

        return cls(store, column, name, 0, count, values)

    def name(self, unit: int) -> str:
        """How a unit is called in tables: ``layer 3 neuron 17`` or ``layer 3 factor 17``."""
        return f"layer {self.layer} {self.kind} {unit}"

    def check(self, units: Sequence[int]) -> np.ndarray:
        """``units`` as an int array, refused when one is out of range."""
        chosen = np.asarray(list(units), dtype=np.int64)
        if chosen.size == 0:
            raise InputError("no units chosen: give e.g. units=0-99", parameter="units")
        bad = chosen[(chosen < 0) | (chosen >= self.count)]
        if bad.size:
            raise InputError(f"{self.kind} {int(bad[0])} is out of range: layer {self.layer} has {self.kind}s 0-{self.count - 1}")
        return chosen

    def values(self, raw: np.ndarray, units: Sequence[int], meta: pa.Table) -> np.ndarray:
        """[rows, len(units)] activations of ``units`` from the column's raw values (and the rows' metadata)."""
        if self.transform is None:
            return raw[:, np.asarray(units)].astype(np.float32)
        return np.asarray(self.transform(raw, units, meta), dtype=np.float32)


@dataclass
class Excerpt:
    """Consecutive tokens of one sentence with one unit's activation on each."""

    sentence_id: int
    tokens: list[str]
    activations: np.ndarray  # [len(tokens)] float32

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"sentence_id": self.sentence_id, "tokens": self.tokens, "activations": np.round(self.activations.astype(np.float64), 4).tolist()}


@dataclass
class Records:
    """What the store says about one unit: its top-activating excerpts (split into those an explainer sees and
    held-out ones for scoring), random excerpts (likewise split), and quantiles of its per-sentence maximum."""

    unit: int
    name: str
    maximum: float  # the largest activation over all top excerpts: 10 on the discretised scale
    explain_top: list[Excerpt]
    score_top: list[Excerpt]
    explain_random: list[Excerpt]
    score_random: list[Excerpt]
    quantiles: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> list[Excerpt]:
        """Every top excerpt, strongest first."""
        return sorted(self.explain_top + self.score_top, key=lambda e: -float(e.activations.max()))


def sentence_maxima(units: Units, chosen: Sequence[int], *, engine: Engine | str = "local") -> tuple[np.ndarray, np.ndarray]:
    """(sentence ids [S], maxima [S, len(chosen)]): each unit's largest activation in each sentence, in one
    streaming pass (segments of consecutive rows reduced at once); a Ray ``engine`` reduces the shards on its
    replicas, with the same result.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import Corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(Corpus.from_texts(["a b c", "d e"]), tempfile.mkdtemp(), layers="1", what="mlp")
        >>> ids, m = sentence_maxima(Units.neurons(s, 1), [0, 3])
        >>> ids.tolist(), m.shape
        ([0, 1], (2, 2))
    """
    chosen = units.check(chosen)
    engine = as_engine(engine)
    maxima = np.full((_id_bound(units.store), len(chosen)), -np.inf, dtype=np.float32)

    def fold(ids: np.ndarray, reduced: np.ndarray) -> None:
        np.maximum.at(maxima, ids, reduced)  # a sentence split across chunks meets its earlier part here

    if engine.local:
        for ids, reduced in _run_maxima(units, chosen, None):  # folded chunk by chunk: memory holds the maxima and one chunk
            fold(ids, reduced)
    else:
        def shard(u: Units, index: int) -> tuple[np.ndarray, np.ndarray]:
            found = list(_run_maxima(u, chosen, [index])) or [(np.zeros(0, np.int64), np.zeros((0, len(chosen)), np.float32))]
            return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])

        engine.map(lambda shipped: shipped, units, shard, sorted(units.store.shards), lambda _, found: fold(*found))
    present = np.isfinite(maxima[:, 0])
    return np.flatnonzero(present), maxima[present]


def _run_maxima(units: Units, chosen: np.ndarray, shards: list[int] | None):
    """(sentence ids, maxima) of each run of consecutive rows of one sentence, chunk by chunk, in ``shards`` (default: all)."""
    for meta, raw in units.store.batches(units.column, WHERE, shards=shards):
        sid = meta.column("sentence_id").to_numpy()
        values = units.values(raw, chosen, meta)
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
        yield sid[starts], np.maximum.reduceat(values, starts, axis=0).astype(np.float32)


def _id_bound(store: Store) -> int:
    """One more than the largest sentence id (ids need not be consecutive)."""
    top = store.query("select max(id) from sentences").column(0)[0].as_py()
    return 0 if top is None else int(top) + 1


def unit_chunks(units: Units, chosen: Sequence[int], budget: int | None = None) -> list[np.ndarray]:
    """``chosen`` split so that one chunk's per-sentence maxima fit in ``budget`` bytes (default ``MAXIMA_BYTES``)."""
    budget = MAXIMA_BYTES if budget is None else budget
    per_unit = max(_id_bound(units.store), 1) * 4
    size = max(1, budget // per_unit)
    chosen = units.check(chosen)
    return [chosen[i:i + size] for i in range(0, len(chosen), size)]


def _split(ranked: np.ndarray, first: int, second: int) -> tuple[np.ndarray, np.ndarray]:
    """Alternate ``ranked`` items between two lists until they hold ``first`` and ``second`` (both equally strong)."""
    a, b = [], []
    for item in ranked:
        if len(a) < first and (len(a) <= len(b) or len(b) >= second):
            a.append(item)
        elif len(b) < second:
            b.append(item)
        if len(a) >= first and len(b) >= second:
            break
    return np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)


def records(units: Units, chosen: Sequence[int], *, n_explain: int = 10, n_top: int = 10, n_random: int = 10,
            window: int = WINDOW, seed: int = 0, engine: Engine | str = "local") -> list[Records]:
    """:class:`Records` of each unit in ``chosen``: two passes over the store (per-sentence maxima, then the
    tokens of the chosen sentences) for as many units as ``MAXIMA_BYTES`` of maxima hold, more passes beyond.

    Top sentences are split alternately by rank between the explainer and the scorer; random sentences
    (seeded per unit, never one of the unit's top sentences) likewise. An excerpt is the whole sentence, or
    ``window`` tokens around the unit's strongest token in a longer one.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=60), tempfile.mkdtemp(), layers="2", what="mlp")
        >>> r = records(Units.neurons(s, 2), [7], n_explain=4, n_top=4, n_random=4)[0]
        >>> len(r.explain_top), len(r.score_random), bool(r.maximum == max(e.activations.max() for e in r.top))
        (4, 4, True)
    """
    chosen = units.check(chosen)
    if min(n_explain, n_top) < 1 or n_random < 1:
        raise InputError("n_explain, n_top and n_random must be at least 1")
    return [r for chunk in unit_chunks(units, chosen) for r in _records(units, chunk, n_explain, n_top, n_random, window, seed, engine)]


def _records(units: Units, chosen: np.ndarray, n_explain: int, n_top: int, n_random: int, window: int, seed: int,
             engine: Engine | str = "local") -> list[Records]:
    """:func:`records` of units whose per-sentence maxima fit in memory together; ``engine``: where the maxima pass runs."""
    ids, maxima = sentence_maxima(units, chosen, engine=engine)
    if len(ids) < n_explain + n_top + 2:
        raise InputError(f"the store has {len(ids)} sentences: too few for {n_explain} + {n_top} top excerpts and random ones; harvest more")
    plan = []
    for i, unit in enumerate(chosen):
        ranked = ids[np.argsort(-maxima[:, i], kind="stable")]
        explain_top, score_top = _split(ranked, n_explain, n_top)
        rng = np.random.default_rng([seed, int(unit)])
        rest = np.setdiff1d(ids, np.r_[explain_top, score_top])
        drawn = rng.choice(rest, size=min(len(rest), 2 * n_random), replace=False)
        q = np.quantile(maxima[:, i], [0.5, 0.9, 0.99])
        plan.append((int(unit), explain_top, score_top, drawn[:n_random], drawn[n_random:],
                     {"q50": float(q[0]), "q90": float(q[1]), "q99": float(q[2]), "max": float(maxima[:, i].max())}))
    wanted = np.unique(np.concatenate([np.r_[p[1], p[2], p[3], p[4]] for p in plan]))
    tokens, acts = _sentences(units, chosen, wanted)
    column = {int(u): j for j, u in enumerate(chosen)}
    out = []
    for unit, et, st, er, sr, quantiles in plan:
        j = column[unit]

        def cut(sids: np.ndarray) -> list[Excerpt]:
            return [_excerpt(int(s), tokens[int(s)], acts[int(s)][:, j], window) for s in sids]

        e_top, s_top = cut(et), cut(st)
        maximum = float(max(e.activations.max() for e in e_top + s_top))
        out.append(Records(unit, units.name(unit), maximum, e_top, s_top, cut(er), cut(sr), quantiles))
    return out


def _excerpt(sid: int, tokens: list[str], values: np.ndarray, window: int) -> Excerpt:
    if len(tokens) <= window:
        return Excerpt(sid, tokens, values.astype(np.float32))
    start = int(np.clip(int(values.argmax()) - window // 2, 0, len(tokens) - window))
    return Excerpt(sid, tokens[start:start + window], values[start:start + window].astype(np.float32))


def _sentences(units: Units, chosen: np.ndarray, wanted: np.ndarray) -> tuple[dict[int, list[str]], dict[int, np.ndarray]]:
    """Tokens and [tokens, units] activations of the sentences ``wanted`` (their non-special tokens, in order)."""
    sids, positions, toks, parts = [], [], [], []
    for meta, raw in units.store.batches(units.column, f"{WHERE} and sentence_id in (select unnest(?::bigint[]))", params=[wanted.tolist()]):
        sids.append(meta.column("sentence_id").to_numpy())
        positions.append(meta.column("position").to_numpy())
        toks.extend(meta.column("token").to_pylist())
        parts.append(units.values(raw, chosen, meta))
    if not parts:
        raise InputError("the chosen sentences have no tokens in the store (a partial store?): finish the harvest first")
    sid, pos, values = np.concatenate(sids), np.concatenate(positions), np.concatenate(parts)
    order = np.lexsort((pos, sid))
    sid, values = sid[order], values[order]
    toks = [toks[i] for i in order]
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    ends = np.r_[starts[1:], len(sid)]
    return ({int(sid[a]): toks[a:b] for a, b in zip(starts, ends)}, {int(sid[a]): values[a:b] for a, b in zip(starts, ends)})


def parse_units(spec: str, count: int) -> list[int]:
    """Unit numbers from ``"0-99"``, ``"3,17,200"`` or ``"0-9,50"``, checked against ``count`` units.

    Examples:
        >>> parse_units("0-3,10", 1536)
        [0, 1, 2, 3, 10]
        >>> parse_units("1600", 1536)
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: unit 1600 is out of range: there are units 0-1535
    """
    units = parse_ranges(spec, f"cannot read the units {spec!r}: write e.g. 0-99 or 3,17,200")
    bad = [u for u in units if not 0 <= u < count]
    if bad or not units:
        raise InputError(f"unit {bad[0] if bad else '(none)'} is out of range: there are units 0-{count - 1}")
    return sorted(set(units))


def sample_units(count: int, n: int, *, seed: int = 0, layer: int = 0, exclude: Sequence[int] = ()) -> list[int]:
    """``n`` units of ``count`` drawn without replacement, seeded per layer, never one of ``exclude`` (e.g. dead factors).

    Examples:
        >>> len(sample_units(1536, 5, seed=1)), sample_units(1536, 5, seed=1) == sample_units(1536, 5, seed=1)
        (5, True)
    """
    pool = np.setdiff1d(np.arange(count), np.asarray(list(exclude), dtype=np.int64))
    if n < 1:
        raise InputError("sample must be at least 1", parameter="sample")
    rng = np.random.default_rng([seed, layer, 5])
    return sorted(int(u) for u in rng.choice(pool, size=min(n, len(pool)), replace=False))
