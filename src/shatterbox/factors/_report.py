"""What a factors report shows: per-layer quality, factors of every level with their curves and contexts, polysemy."""

from __future__ import annotations

from typing import Callable

import numpy as np

from shatterbox.engines import Engine
from shatterbox.errors import InputError
from shatterbox.factors._fit import LEVELS, Factors
from shatterbox.store import Store, TopK, check_control


def contexts(factors: Factors, store: Store, units: list[int], layer: int, k: int = 6, *, top: TopK | None = None,
             engine: Engine | str = "local", progress: Callable[[int, int], None] | None = None) -> dict[int, list[dict]]:
    """Top-``k`` tokens of each factor in ``units`` at ``layer``, in one pass over the store (or read from
    ``top``, a :meth:`Store.top_k` of every factor computed before): value, token, sentence text and the
    token's character span (for highlighting). ``engine``: where the pass runs, as for :meth:`Store.top_k`."""
    if top is None:
        top = store.top_k(f"hidden_{layer}", units, k, transform=lambda h: factors.codes(h, layer, units=units), where="not special",
                          engine=engine, progress=progress)
    index = {int(u): i for i, u in enumerate(top.units)}
    found = [(u, int(s), int(p), float(v)) for u in units
             for s, p, v in list(zip(top.sentence_id[index[u]], top.position[index[u]], top.values[index[u]]))[:k] if s >= 0 and v > 0]
    if not found:
        return {u: [] for u in units}
    keys = ", ".join(f"({s}, {p})" for _, s, p, _ in found)
    rows = store.query(
        "select t.sentence_id, t.position, t.token, t.char_start, t.char_end, s.text from tokens t join sentences s on s.id = t.sentence_id "
        f"where (t.sentence_id, t.position) in ({keys})"
    ).to_pylist()
    by_key = {(r["sentence_id"], r["position"]): r for r in rows}
    out: dict[int, list[dict]] = {u: [] for u in units}
    for unit, sid, pos, value in found:
        r = by_key[(sid, pos)]
        out[unit].append({"value": value, "token": r["token"], "text": r["text"], "start": r["char_start"], "end": r["char_end"], "sentence_id": sid})
    return out


def check_factors_control(factors: Factors, store: Store, control: Factors, control_store: Store) -> None:
    """Refuse a control that is not one: its store must be the random-weight control of ``store`` (same architecture,
    corpus and settings; :func:`shatterbox.store.check_control`) and its factors fitted the same way on the same layers."""
    check_control(store, control_store)
    if control.describe() != factors.describe() or control.layers != factors.layers:
        raise InputError(f"the control factors were fitted another way ({control.describe()} on layers {control.layers}), not as "
                         f"these ({factors.describe()} on layers {factors.layers}): fit the control with the same options", parameter="control")


def factors_report(factors: Factors, store: Store, *, per_level: int = 3, k: int = 6, polysemy_words: list[str] | None = None,
                   control: tuple[Factors, Store] | None = None, loaded=None, downstream_sentences: int = 128,
                   engine: Engine | str = "local", progress: Callable[[int, int], None] | None = None) -> dict:
    """Everything the HTML report shows, as JSON-ready data.

    Per level, the ``per_level`` factors with the highest peak importance, each with its importance
    curve and top-``k`` contexts at its peak layer; the per-layer fit reports (and a control's, such
    as the same fit on a random-weight model); the polysemy table when the store has sense labels;
    with ``loaded`` (the store's model), the sentence embedding recovered per layer
    (:func:`embedding_recovered`) on the first ``downstream_sentences`` sentences of the store. ``engine``:
    where the contexts' pass over the store runs (as for :meth:`Store.top_k`). ``progress(done, total)`` counts the
    report's steps: a pass over the store per layer with contexts, the polysemy table, the downstream check, the control.
    """
    if store.manifest["key"] != factors.store.get("key"):
        raise InputError(f"these factors were fitted on another store ({factors.store.get('path')!r}): give that store, or fit again")
    if control is not None:
        check_factors_control(factors, store, *control)
    peak = factors.importance_.max(1)
    chosen = {level: [int(f) for f in np.flatnonzero(factors.levels_ == level)[np.argsort(-peak[factors.levels_ == level], kind="stable")][:per_level]]
              for level in LEVELS}
    by_layer: dict[int, list[int]] = {}
    for units in chosen.values():
        for f in units:
            by_layer.setdefault(factors.layers[int(factors.importance_[f].argmax())], []).append(f)
    found: dict[int, list[dict]] = {}
    steps = len(by_layer) + 1 + (loaded is not None) + (control is not None)
    step = _stepper(progress, steps)
    for layer, units in by_layer.items():
        found.update(contexts(factors, store, units, layer, k, engine=engine))
        step()
    sections = {
        level: [{"factor": f, "curve": factors.importance_[f].round(4).tolist(), "peak_layer": factors.layers[int(factors.importance_[f].argmax())],
                 "contexts": found.get(f, [])} for f in units]
        for level, units in chosen.items()
    }
    out = {
        "model": factors.describe(), "shared": factors.shared, "store": factors.store, "layers": factors.layers, "levels": factors.level_counts(),
        "reports": {str(l): r.to_dict() for l, r in factors.reports.items()}, "sections": sections,
        "control": None, "skipped": {},
    }
    out["polysemy"] = _polysemy(factors, store, polysemy_words, out["skipped"])
    step()
    if loaded is not None:
        from shatterbox.factors._downstream import embedding_recovered

        texts = store.query(f"select text from sentences order by id limit {int(downstream_sentences)}").column("text").to_pylist()
        out["downstream"] = [embedding_recovered(factors, loaded, texts, l) for l in factors.layers]
        step()
    if control is not None:
        c_factors, c_store = control
        words = [row["word"] for row in out["polysemy"]] if out["polysemy"] else polysemy_words
        out["control"] = {"store": c_factors.store, "model": c_store.model, "reports": {str(l): r.to_dict() for l, r in c_factors.reports.items()},
                          "polysemy": _polysemy(c_factors, c_store, words, out["skipped"], "control polysemy")}
        step()
    return out


def _stepper(progress: Callable[[int, int], None] | None, total: int) -> Callable[[], None]:
    """A function that reports one more of ``total`` steps to ``progress`` (0 of them at once)."""
    done = [0]
    if progress is not None:
        progress(0, total)

    def step() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    return step


def _polysemy(factors: Factors, store: Store, words: list[str] | None, skipped: dict[str, str],
              section: str = "polysemy") -> list[dict] | None:
    """The polysemy table, or None with the reason in ``skipped[section]`` (the report says why it is missing)."""
    from shatterbox.factors._polysemy import polysemy

    if "synset" not in store.sentences("false").column_names:
        skipped[section] = "the store has no sense labels (harvest wordnet-senses)"
        return None
    try:
        return polysemy(factors, store, words).to_pylist()
    except InputError as exc:
        skipped[section] = str(exc)
        return None
