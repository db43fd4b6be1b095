"""Sparse probing (SAEBench; Gurnee et al. 2023): can k latents of an SAE read a property a dense probe reads?

For each class of a property (one against the rest, balanced by a seeded sample so chance is 0.5), the k latents whose
mean activation differs most between the classes on the training split are chosen, and a logistic regression on
those k latents alone is scored on the held-out split. Next to it: the same probe on k latents drawn at random among
the live ones (the control: what any k latents give), a dense probe on the whole residual stream (the ceiling) and the
majority class (0.5). Seeds redraw the balanced sample and the split; each number is a mean ± sd over seeds.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from shatterbox.errors import InputError
from shatterbox.options import SAE
from shatterbox.factors import Factors, check_factors_control
from shatterbox.probes import examples, features, make_probe
from shatterbox.sae._core import finite
from shatterbox.store import Store, as_store

SPARSE_KS = tuple(int(k) for k in SAE.ks.split(","))
MAX_CLASSES = 8  # the most frequent classes of a property are probed, one against the rest
MAX_PER_CLASS = 400  # examples of each side of a balanced task
TEST_FRACTION = 0.2


@dataclass
class SparseProbing:
    """Sparse-probing accuracies of one SAE layer on one property.

    ``rows``: one per class, k and seed (``accuracy`` of the k chosen latents, ``control`` of k random live latents,
    ``dense`` of the residual-stream probe, ``latents`` the chosen ones); :meth:`summary` averages over classes, then
    gives mean ± sd over seeds per k, flagged where the chosen latents do not beat the control or the majority class.
    ``random_weights``: the same probing of the same SAE recipe on the random-weight store (``sparse_probing(control=...)``);
    its accuracy joins the summary, and a k that does not beat it is flagged too.
    """

    property: str
    level: str
    layer: int
    ks: tuple[int, ...]
    classes: list[str]
    seeds: int
    rows: list[dict] = field(default_factory=list)
    random_weights: "SparseProbing | None" = None

    def summary(self) -> list[dict]:
        """Per k: accuracy, control and dense (mean and sd over seeds of the class-mean), the majority class and a flag."""
        out = []
        for k in self.ks:
            per_seed = {name: [float(np.mean([r[name] for r in self.rows if r["k"] == k and r["seed"] == s])) for s in range(self.seeds)]
                        for name in ("accuracy", "control", "dense")}
            row = {"k": k} | {f"{n}{suffix}": float(f(v)) for n, v in per_seed.items() for suffix, f in (("", np.mean), ("_sd", _sd))}
            row["majority"] = 0.5
            if self.random_weights is not None:
                row["random_weights"] = next(r["accuracy"] for r in self.random_weights.summary() if r["k"] == k)
            row["flag"] = _flag(row)
            out.append(row)
        return out

    def to_dict(self) -> dict:
        """JSON-ready: the settings, the summary and every row."""
        plain = {k: v for k, v in asdict(self).items() if k not in ("rows", "random_weights")}
        return finite(plain | {"summary": self.summary(), "rows": self.rows,
                               "random_weights": None if self.random_weights is None else self.random_weights.to_dict()})


def _sd(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _flag(row: dict) -> str:
    problems = []
    if row["accuracy"] <= 0.5:
        problems.append("no better than the majority class")
    elif row["accuracy"] <= row["control"]:
        problems.append(f"k={row['k']} chosen latents do not beat {row['k']} random latents (the control)")
    if "random_weights" in row and row["accuracy"] <= row["random_weights"]:
        problems.append("does not beat the same SAE on the random-weight model")
    return "; ".join(problems)


def pooled_codes(store: Store, factors: Factors, layer: int, sentence_ids: np.ndarray) -> np.ndarray:
    """[sentences, n_factors] each sentence's mean code over its word tokens (SAEBench pools latents, not residuals).

    Examples:
        >>> # see tests/sae/test_probing.py
    """
    return store.sentence_vectors(f"hidden_{layer}", sentence_ids, special=False, transform=lambda h: factors.codes(h, layer))


def sparse_probe_arrays(codes: np.ndarray, dense: np.ndarray, labels: np.ndarray, *, ks: Sequence[int] = SPARSE_KS, seeds: int = 3,
                        max_classes: int = MAX_CLASSES, max_per_class: int = MAX_PER_CLASS, name: str = "property", level: str = "token",
                        layer: int = -1, progress: Callable[[int, int], None] | None = None) -> SparseProbing:
    """Sparse probing on given arrays: ``codes`` [n, latents], ``dense`` [n, d] (the residual stream), ``labels`` [n].

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> labels = rng.integers(0, 2, 400).astype(str)
        >>> codes = np.abs(rng.normal(size=(400, 30))); codes[:, 7] = (labels == "1") * 2.0
        >>> r = sparse_probe_arrays(codes, rng.normal(size=(400, 8)), labels, ks=(1,), seeds=2)
        >>> r.summary()[0]["accuracy"], {row["latents"][0] for row in r.rows}
        (1.0, {7})
    """
    labels = np.asarray(labels).astype(str)
    classes, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    usable = [str(classes[i]) for i in order if counts[i] >= 10 and len(labels) - counts[i] >= 10][:max_classes]
    if not usable:
        raise InputError(f"{name}: no class has 10 examples on each side; a bigger store (more sentences) gives some")
    if len(classes) == 2:
        usable = usable[:1]  # a binary property is one task, not two mirrored ones
    ks = parse_ks(ks)
    if not ks or ks[0] < 1 or ks[-1] > codes.shape[1]:
        raise InputError(f"ks must be between 1 and the {codes.shape[1]} latents (got {list(ks)})", parameter="ks")
    out = SparseProbing(name, level, layer, ks, usable, seeds)
    total, done = seeds * len(usable), 0
    for seed in range(seeds):
        for c in usable:
            out.rows += _task(codes, dense, labels == c, ks, seed, max_per_class, c)
            done += 1
            if progress:
                progress(done, total)
    return out


def _task(codes: np.ndarray, dense: np.ndarray, positive: np.ndarray, ks: tuple[int, ...], seed: int, max_per_class: int, name: str) -> list[dict]:
    """One balanced one-against-the-rest task: every k, its control and the dense probe."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])  # the same draws in every process
    pos, neg = np.flatnonzero(positive), np.flatnonzero(~positive)
    n = min(len(pos), len(neg), max_per_class)
    chosen = np.concatenate([rng.choice(pos, n, replace=False), rng.choice(neg, n, replace=False)])
    y = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    test = np.zeros(2 * n, bool)
    for side in (np.arange(n), np.arange(n, 2 * n)):  # stratified split
        test[rng.choice(side, max(1, round(TEST_FRACTION * n)), replace=False)] = True
    z, x = codes[chosen], dense[chosen]
    gap = np.abs(z[~test & y].mean(0) - z[~test & ~y].mean(0))
    ranked = np.argsort(-gap, kind="stable")
    live = np.flatnonzero((z[~test] > 0).any(0))
    dense_acc = _accuracy(x, y, test, seed)
    rows = []
    for k in ks:
        picked = ranked[:k]
        random = rng.choice(live, min(k, len(live)), replace=False) if len(live) else ranked[-k:]
        rows.append({"class": name, "k": k, "seed": seed, "accuracy": _accuracy(z[:, picked], y, test, seed),
                     "control": _accuracy(z[:, random], y, test, seed), "dense": dense_acc, "latents": [int(i) for i in picked],
                     "train": int((~test).sum()), "test": int(test.sum())})
    return rows


def _accuracy(x: np.ndarray, y: np.ndarray, test: np.ndarray, seed: int) -> float:
    if np.ptp(x[~test], axis=0).max(initial=0) == 0:  # constant features: the probe can only say the majority
        return 0.5
    probe = make_probe("linear", seed=seed).fit(x[~test], y[~test])
    return float((probe.predict(x[test]) == y[test]).mean())


def parse_ks(ks: str | Sequence[int]) -> tuple[int, ...]:
    """``"1,2,5"`` (or a sequence) as sorted distinct ints, or one clear error.

    Examples:
        >>> parse_ks("5, 1,2"), parse_ks([3])
        ((1, 2, 5), (3,))
    """
    try:
        values = [int(v) for v in (ks.split(",") if isinstance(ks, str) else ks) if str(v).strip()]
    except ValueError:
        raise InputError(f"ks must be whole numbers separated by commas, such as 1,2,5,10,20 (got {ks!r})", parameter="ks") from None
    return tuple(sorted(set(values)))


def sparse_probing(factors: Factors, property: str, *, layer: int | None = None, level: str = "token", store: Store | str | None = None,
                   ks: str | Sequence[int] = SAE.ks, seeds: int = SAE.seeds, limit: int | None = 4000, progress: Callable[[int, int], None] | None = None,
                   control: tuple[Factors, Store | str | None] | None = None) -> SparseProbing:
    """Sparse probing of ``factors`` at ``layer`` on a property of their store (or ``store``): token level reads the
    WordNet headword (``pos``, ``supersense``), sentence level pools the codes over a sentence's word tokens (any label
    column, e.g. the sentiment corpus's ``label``). ``control`` = (factors fitted the same way on the random-weight
    store, checked to be that control; with ``store``, the random-weight model's store of the same corpus, else None):
    probed alike, into :attr:`SparseProbing.random_weights`.

    Examples:
        >>> # see tests/sae/test_probing.py
    """
    store = as_store(store) if store is not None else factors.open_store()
    layer = factors.layer_of(layer)
    if control is not None:  # refused before any work when it is not the control
        check_factors_control(factors, factors.open_store(), control[0], control[0].open_store())
    found = examples(store, property, level=level, limit=limit)
    dense = features(store, found, layer)
    codes = factors.codes(dense, layer) if level == "token" else pooled_codes(store, factors, layer, found.sentence_ids)
    result = sparse_probe_arrays(codes, dense, found.labels, ks=parse_ks(ks), seeds=seeds, name=property, level=level, layer=layer, progress=progress)
    if control is not None:
        c_factors, c_store = control
        result.random_weights = sparse_probing(c_factors, property, layer=layer, level=level, store=c_store if store is not None else None,
                                               ks=ks, seeds=seeds, limit=limit)
    return result
