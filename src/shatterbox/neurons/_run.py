"""A run: explain and score many units, part by part, resumable (each part written once, atomically)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shatterbox.engines import Engine, as_engine
from shatterbox.errors import InputError
from shatterbox.neurons._offline import Explainer, Simulator, TokenExplainer, TokenSimulator, random_explanation, token_lookup
from shatterbox.neurons._score_unit import BASELINES, MARGIN, Judge, Remembered, SimulationJudge, score, verdict
from shatterbox.neurons._scoring import discretise
from shatterbox.neurons._units import Records, Units, records
from shatterbox.runs import RECORD as RUN, RunFolder
from shatterbox.store import Store
from shatterbox.trace import glue

FORMAT = "shatterbox.neurons/1"
PART_UNITS = 64
SCORES = ("correlation", "detection", "fuzzing")
EXCERPTS = 5  # top excerpts kept with each result (for the report and the web app)


@dataclass
class NeuronSettings:
    """How excerpts are chosen: ``n_explain`` top excerpts for the explainer (and as many random ones), ``n_top``
    held-out top and ``n_random`` held-out random excerpts for the scores, ``window`` tokens, ``seed``."""

    n_explain: int = 10
    n_top: int = 10
    n_random: int = 10
    window: int = 32
    seed: int = 0

    def to_dict(self) -> dict:
        """JSON-ready."""
        return dict(self.__dict__)


@dataclass
class Explained:
    """One unit's explanation, its baselines' explanations and every score (rows of the result table)."""

    records: Records
    explanation: str
    baselines: dict[str, str]
    scores: dict[str, dict]  # "explanation" and each baseline -> {"correlation": Score, ...}
    flagged: bool
    reason: str
    differences: dict = field(default_factory=dict)
    seconds: float = 0.0

    def row(self, units: Units) -> dict:
        """One flat row of the result table."""
        out = {"layer": units.layer, "kind": units.kind, "unit": self.records.unit, "explanation": self.explanation,
               "flagged": self.flagged, "reason": self.reason, "maximum": self.records.maximum, "seconds": self.seconds,
               "excerpts": json.dumps([e.to_dict() for e in self.records.top[:EXCERPTS]])}
        for name, text in self.baselines.items():
            out[f"{name}_explanation"] = text
        for who, scores in self.scores.items():
            for metric in SCORES:
                s = scores[metric]
                prefix = metric if who == "explanation" else f"{who}_{metric}"
                out[prefix], out[f"{prefix}_low"], out[f"{prefix}_high"] = s.value, s.low, s.high
        for name, d in self.differences.items():
            out[f"beats_{name}"], out[f"beats_{name}_low"] = d.value, d.low
        out |= {k: v for k, v in self.records.quantiles.items() if k != "max"}  # of the unit's per-sentence maxima
        return _dead(out) if is_dead(self.records.maximum) else out | {"dead": False}


def is_dead(maximum: float) -> bool:
    """A unit that never fires on the store (its largest activation is not above 0): nothing to explain.

    Examples:
        >>> is_dead(0.0), is_dead(float("nan")), is_dead(0.3)
        (True, True, False)
    """
    return not (np.isfinite(maximum) and maximum > 0)


def _dead(row: dict) -> dict:
    """A dead unit's row: flagged as dead, its scores empty (not 0 or NaN: they are not results)."""
    keys = [f"{who}{metric}{part}" for who in ("", *(f"{b}_" for b in BASELINES)) for metric in SCORES for part in ("", "_low", "_high")]
    return row | {k: None for k in keys if k in row} | {"flagged": True, "dead": True,
                                                         "reason": "dead: never fires on this store (largest activation not above 0)"}


def explain_records(chunk: Sequence[Records], explainer: Explainer, simulator: Simulator, judge: Judge, *, seed: int = 0,
                    partners: Sequence[Records] = (), vocabulary: Sequence[str] | None = None) -> list[Explained]:
    """Explain each unit of ``chunk`` and score it next to its baselines (the shuffled baseline of unit ``i`` is
    the explanation of unit ``i+1`` of the chunk, cyclically; ``partners`` are extra units explained only for that;
    the random baseline draws from ``vocabulary``, by default every token type of the chunk's excerpts).

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=80), tempfile.mkdtemp(), layers="2", what="mlp")
        >>> r = records(Units.neurons(s, 2), [3, 4], n_explain=5, n_top=5, n_random=5)
        >>> out = explain_records(r, TokenExplainer(), TokenSimulator(), SimulationJudge(TokenSimulator()))
        >>> sorted(out[0].scores)
        ['explanation', 'random', 'shuffled', 'token_lookup']
    """
    everyone = list(chunk) + list(partners)
    if len(everyone) < 2:
        raise InputError("the shuffled baseline needs at least two units: explain more units, or pass partners")
    started = time.perf_counter()
    texts = [explainer.explain(r) for r in everyone]
    per_unit = (time.perf_counter() - started) / len(everyone)
    vocab = sorted({t.lower() for r in everyone for e in r.explain_top + r.score_top + r.explain_random + r.score_random for t in e.tokens}
                   if vocabulary is None else set(vocabulary))
    out = []
    for i, rec in enumerate(chunk):
        t0 = time.perf_counter()
        baselines = {"random": random_explanation(rec, vocab, seed), "shuffled": texts[(i + 1) % len(everyone)], "token_lookup": token_lookup(rec)}
        scores = {"explanation": score(rec, texts[i], simulator, judge, seed=seed)}
        scores |= {name: score(rec, text, simulator, judge, seed=seed) for name, text in baselines.items()}
        flagged, reason, diffs = verdict(rec, scores["explanation"], scores, seed)
        for s in scores.values():
            s.pop("simulated")
        out.append(Explained(rec, texts[i], baselines, scores, flagged, reason, diffs, per_unit + time.perf_counter() - t0))
    return out


def _run_record(units_by_layer: dict[int, np.ndarray], source: Units, settings: NeuronSettings, names: dict[str, str]) -> dict:
    return {"format": FORMAT, "store": {"path": str(source.store.root), "key": source.store.manifest.get("key")}, "kind": source.kind,
            "source": source.source, "units": {str(l): u.tolist() for l, u in units_by_layer.items()}, "settings": settings.to_dict(),
            "explainer": names["explainer"], "simulator": names["simulator"], "judge": names["judge"], "margin": MARGIN}


def explain_units(make_units: Callable[[int], Units], units_by_layer: dict[int, Sequence[int]], out: str | Path | None = None, *,
                  explainer: Explainer | None = None, simulator: Simulator | None = None, judge: Judge | None = None,
                  settings: NeuronSettings | None = None, part_units: int = PART_UNITS,
                  progress: Callable[[int, int], None] | None = None, engine: Engine | str = "local") -> pa.Table:
    """Explain and score every unit of ``units_by_layer`` ({layer: units}); ``make_units(layer)`` gives the
    layer's :class:`Units`. With ``out`` (a folder) each part of ``part_units`` units is written once,
    atomically, as it finishes: run again with the same arguments after an interruption and only the missing
    parts are done. A Ray ``engine`` explains the parts on its replicas (each reads the store, which they must
    see), with the same results. Returns the table of all units (one row each, sorted by
    correlation score).

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=80), tempfile.mkdtemp(), layers="2", what="mlp")
        >>> t = explain_units(lambda l: Units.neurons(s, l), {2: [0, 1, 2]}, settings=NeuronSettings(n_explain=5, n_top=5, n_random=5))
        >>> t.num_rows, "beats_token_lookup_low" in t.column_names
        (3, True)
    """
    settings = settings or NeuronSettings()
    explainer, simulator = explainer or TokenExplainer(), Remembered(simulator or TokenSimulator())
    judge = judge or SimulationJudge(simulator)  # the default judge shares the scorer's simulations
    layers = {int(l): make_units(int(l)) for l in units_by_layer}
    chosen = {l: layers[l].check(u) for l, u in units_by_layer.items()}
    record = _run_record(chosen, next(iter(layers.values())), settings, {"explainer": explainer.name, "simulator": simulator.name, "judge": judge.name})
    folder = None if out is None else RunFolder(out, record, what="a neurons run", option="--out")
    total = sum(len(u) for u in chosen.values())
    words = vocabulary(next(iter(layers.values())).store)  # one store: its token types, read once for every part
    engine = as_engine(engine)
    plan = [(layer, start, f"layer-{layer:03d}-part-{start // part_units:05d}.parquet")
            for layer in layers for start in range(0, len(chosen[layer]), part_units)]
    found: dict[str, pa.Table] = {}
    counted = [0]

    def landed(unit: tuple, table: pa.Table) -> None:
        layer, start, name = unit
        found[name] = table
        if folder is not None and not folder.done(name):
            folder.write(name, table)
        counted[0] += len(chosen[layer][start:start + part_units])
        if progress:
            progress(counted[0], total)

    todo = []
    for unit in plan:
        if folder is not None and folder.done(unit[2]):
            landed(unit, folder.read(unit[2]))
        else:
            todo.append(unit)

    def explain_one(state: tuple, unit: tuple) -> pa.Table:
        units_of, explain_with, simulate_with, judge_with = state
        layer, start, _ = unit
        return _part(units_of[layer], chosen[layer][start:start + part_units], explain_with, simulate_with, judge_with, settings, words)

    engine.map(lambda shipped: shipped, (layers, explainer, simulator, judge), explain_one, todo, landed)
    tables = [found[name] for _, _, name in plan]
    table = pa.concat_tables(tables, promote_options="default")
    return table.sort_by([("correlation", "descending")])


def _explain_part(units: Units, part: np.ndarray, explainer: Explainer, simulator: Simulator, judge: Judge, settings: NeuronSettings,
                  words: Sequence[str]) -> tuple[list[Records], list[Explained]]:
    """Records and explanations of the units of ``part`` (a lone unit gets a seeded partner for its shuffled baseline);
    each unit's seconds include its share of reading the store."""
    partners = _partner(units, part, settings.seed) if len(part) == 1 else []
    started = time.perf_counter()
    found = records(units, np.r_[part, partners].astype(np.int64), n_explain=settings.n_explain, n_top=settings.n_top,
                    n_random=settings.n_random, window=settings.window, seed=settings.seed)
    explained = explain_records(found[:len(part)], explainer, simulator, judge, seed=settings.seed, partners=found[len(part):], vocabulary=words)
    read = (time.perf_counter() - started - sum(e.seconds for e in explained)) / len(part)  # reading the store, shared out
    for e in explained:
        e.seconds += max(read, 0.0)
    return found[:len(part)], explained


def _part(units: Units, part: np.ndarray, explainer: Explainer, simulator: Simulator, judge: Judge, settings: NeuronSettings,
          words: Sequence[str]) -> pa.Table:
    return pa.Table.from_pylist([e.row(units) for e in _explain_part(units, part, explainer, simulator, judge, settings, words)[1]])


def _partner(units: Units, part: np.ndarray, seed: int) -> list[int]:
    """One seeded unit outside ``part``, whose explanation is the shuffled baseline of a lone unit."""
    if units.count < 2:
        raise InputError("the shuffled baseline needs another unit, and this layer has one: explain units of a layer with more")
    rng = np.random.default_rng([seed, int(part[0]), 3])
    return [int(rng.choice(np.setdiff1d(np.arange(units.count), part)))]


def vocabulary(store: Store) -> list[str]:
    """Every token type of the store's text (lower-cased, special tokens left out), sorted: what random explanations draw from."""
    return sorted(store.query("select distinct lower(token) from tokens where not special").column(0).to_pylist())


def read_run(folder: str | Path) -> tuple[dict, pa.Table]:
    """(run record, table of every finished unit sorted by correlation) of a run folder.

    Examples:
        >>> read_run("/nonexistent")
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: '/nonexistent' is not a neurons run (no run.json): make one with `shatterbox neurons explain STORE --out /nonexistent`
    """
    folder = Path(folder)
    meta = folder / RUN
    if not meta.is_file():
        raise InputError(f"{str(folder)!r} is not a neurons run (no {RUN}): make one with `shatterbox neurons explain STORE --out {folder}`")
    record = json.loads(meta.read_text())
    parts = sorted(folder.glob("layer-*-part-*.parquet"))
    if not parts:
        return record, pa.table({})
    table = pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")
    return record, table.sort_by([("correlation", "descending")])


def _excerpt_payload(excerpt: dict, maximum: float) -> dict:
    """An excerpt as the web page shows it: tokens, activations and their 0–10 levels, and each token as the page writes
    it (``pieces``, word-piece markers off) with the space before it (``spaces``): pieces glued as everywhere else
    (:func:`shatterbox.trace.glue`), computed here once."""
    glued = glue(excerpt["tokens"])
    return excerpt | {"levels": discretise(np.asarray(excerpt["activations"], dtype=np.float64), maximum).tolist(),
                      "spaces": [space for space, _ in glued], "pieces": [piece for _, piece in glued]}


def unit_payload(row: dict) -> dict:
    """A row of a run's table as JSON for the web app: explanation, scores with intervals (explanation and baselines),
    flag, and the kept top excerpts with their levels.

    Examples:
        >>> row = {"layer": 1, "unit": 2, "kind": "neuron", "explanation": '"a" (9)', "flagged": False, "reason": "", "maximum": 2.0,
        ...        "correlation": 0.9, "correlation_low": 0.8, "correlation_high": 1.0,
        ...        "excerpts": '[{"sentence_id": 0, "tokens": ["a"], "activations": [2.0]}]'}
        >>> p = unit_payload(row); p["scores"]["explanation"]["correlation"], p["excerpts"][0]["levels"]
        ({'value': 0.9, 'low': 0.8, 'high': 1.0}, [10])
    """
    def score(prefix: str) -> dict | None:
        if row.get(prefix) is None:
            return None
        return {"value": _num(row.get(prefix)), "low": _num(row.get(f"{prefix}_low")), "high": _num(row.get(f"{prefix}_high"))}

    scores = {who: {m: score(m if who == "explanation" else f"{who}_{m}") for m in SCORES} for who in ("explanation",) + BASELINES}
    return {"layer": row["layer"], "unit": row["unit"], "kind": row["kind"], "explanation": row["explanation"], "flagged": bool(row["flagged"]),
            "reason": row["reason"], "maximum": row["maximum"], "baselines": {b: row.get(f"{b}_explanation") for b in BASELINES},
            "scores": scores, "excerpts": [_excerpt_payload(e, row["maximum"]) for e in json.loads(row.get("excerpts") or "[]")]}


def _num(value) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def explain_unit(units: Units, unit: int, *, settings: NeuronSettings | None = None, seed: int = 0) -> dict:
    """One unit explained offline and scored next to its baselines, as JSON (the web app's Neurons tab): everything of
    :func:`unit_payload`, plus quantiles and random excerpts. A seeded partner unit supplies the shuffled baseline.

    Examples:
        >>> import tempfile
        >>> from shatterbox.corpus import load_corpus
        >>> from shatterbox.store import harvest
        >>> s = harvest(load_corpus("wordnet", limit=80), tempfile.mkdtemp(), layers="2", what="mlp")
        >>> d = explain_unit(Units.neurons(s, 2), 5, settings=NeuronSettings(n_explain=5, n_top=5, n_random=5))
        >>> d["unit"], sorted(d["scores"]), len(d["random_excerpts"])
        (5, ['explanation', 'random', 'shuffled', 'token_lookup'], 10)
    """
    settings = settings or NeuronSettings(seed=seed)
    simulator = Remembered(TokenSimulator())
    found, explained = _explain_part(units, units.check([unit]), TokenExplainer(), simulator, SimulationJudge(simulator), settings,
                                     vocabulary(units.store))
    found = found[0]
    out = unit_payload(explained[0].row(units) | {"excerpts": json.dumps([e.to_dict() for e in found.top])})
    out["name"] = units.name(unit)
    out["quantiles"] = found.quantiles
    out["random_excerpts"] = [_excerpt_payload(e.to_dict(), found.maximum) for e in found.explain_random + found.score_random]
    return out
