"""The core scores of an SAE, per layer, as SAEBench's core evaluation reports them, each next to its control.

Held out: variance explained (against PCA with as many components as the mean L0), mean L0, dead and dense latents;
on a decoder, the CE loss recovered when the layer is spliced with its reconstruction and the raw loss increase
(:func:`shatterbox.factors.ce_loss_recovered`); on an encoder, the sentence-embedding analogue
(:func:`shatterbox.factors.embedding_recovered`). With ``control`` (the same SAE recipe fitted on the random-weight
store of the same corpus, checked to be that), each score has the control's beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from shatterbox.factors import Factors, ce_loss_recovered, check_factors_control, embedding_recovered, heldout_texts
from shatterbox.models import LoadedModel, has_language_model_head
from shatterbox.options import SAE
from shatterbox.store import Store, harvested_model


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float (in dicts, lists and tuples) replaced by None: strict JSON, as every
    front end reads it (a score that cannot be computed is shown as missing, never as NaN).

    Examples:
        >>> finite({"a": [1.5, float("nan")], "b": float("inf")})
        {'a': [1.5, None], 'b': None}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


@dataclass
class SaeScores:
    """Per-layer core scores (``rows``) of an SAE and, when given, of its random-weight control (``control_rows``)."""

    rows: list[dict]
    control_rows: list[dict] = field(default_factory=list)
    downstream: str = "ce"  # "ce" (a decoder's LM loss) or "embedding" (an encoder's sentence embedding)

    def table(self) -> list[dict]:
        """One row per layer with the control's scores beside it and a flag naming what does not beat its control."""
        control = {r["layer"]: r for r in self.control_rows}
        out = []
        for row in self.rows:
            c = control.get(row["layer"])
            merged = dict(row) | ({f"control {k}": c[k] for k in ("variance_explained", "recovered") if k in c} if c else {})
            merged["flag"] = _flag(row, c)
            out.append(merged)
        return out

    def to_dict(self) -> dict:
        """JSON-ready."""
        return finite({"downstream": self.downstream, "layers": self.table(), "control": self.control_rows})


def _flag(row: dict, control: dict | None) -> str:
    problems = []
    if row["variance_explained"] <= row["pca_variance_explained"]:
        problems.append(f"variance explained does not beat PCA with {row['pca_components']} components")
    if row.get("downstream_flag"):
        problems.append(row["downstream_flag"])
    if control is not None:
        if row["variance_explained"] <= control["variance_explained"]:
            problems.append("variance explained does not beat the random-weight control")
        if not row["recovered"] > control.get("recovered", float("-inf")):
            problems.append("the loss recovered does not beat the random-weight control")
    return "; ".join(problems)


def layer_scores(factors: Factors, model: LoadedModel, texts: list[str]) -> list[dict]:
    """One row per fitted layer: the held-out fit report and the downstream score on ``texts``.

    Examples:
        >>> # see tests/sae/test_core.py
    """
    decoder = has_language_model_head(model)
    rows = []
    for layer in factors.layers:
        report = factors.reports[layer]
        down = ce_loss_recovered(factors, model, texts, layer) if decoder else embedding_recovered(factors, model, texts, layer)
        row = {"layer": layer, "variance_explained": report.variance_explained, "pca_variance_explained": report.pca_variance_explained,
               "pca_components": report.pca_components, "mean_l0": report.mean_l0, "dead_fraction": report.dead_fraction,
               "dense_fraction": report.dense_fraction, "recovered": down["recovered"], "downstream_flag": down["flag"]}
        if decoder:
            row |= {"increase": down["increase"], "clean_loss": down["clean_loss"], "spliced_loss": down["spliced_loss"],
                    "zero_ablated_loss": down["zero_ablated_loss"], "tokens": down["tokens"]}
        rows.append(row)
    return rows


def sae_scores(factors: Factors, model: LoadedModel, *, texts: int = SAE.texts, control: tuple[Factors, Store, LoadedModel] | None = None,
               progress: Callable[[int, int], None] | None = None) -> SaeScores:
    """The core scores of ``factors`` (fitted on a store of ``model``) on ``texts`` held-out sentences of that store;
    ``control`` = (factors fitted the same way on the random-weight store, that store, the random-weight model).

    Examples:
        >>> # see tests/sae/test_core.py
    """
    store = factors.open_store()
    harvested_model(store, model)  # refuses a model other than the store's
    chosen = heldout_texts(store, limit=texts)
    steps = 1 + (control is not None)
    rows = layer_scores(factors, model, chosen)
    if progress:
        progress(1, steps)
    control_rows = []
    if control is not None:
        c_factors, c_store, c_model = control
        check_factors_control(factors, store, c_factors, c_store)
        harvested_model(c_store, c_model)
        control_rows = layer_scores(c_factors, c_model, chosen)
        if progress:
            progress(2, steps)
    return SaeScores(rows, control_rows, "ce" if has_language_model_head(model) else "embedding")


def control_note(rows: list[dict]) -> str:
    """One line naming the layers whose scores do not beat their control ("" when all do)."""
    weak = [r for r in rows if r.get("flag")]
    if not weak:
        return ""
    return f"weak: layer{'s' if len(weak) > 1 else ''} {', '.join(str(r['layer']) for r in weak)} of {len(rows)}: {weak[0]['flag']}"

