"""One SAE latent as a Neuronpedia feature (the JSON its feature pages and exports use), from the store alone plus
the model's unembedding: top activating excerpts, the activation histogram, the offline explanation with its scores
and the tokens the latent's decoder row promotes and suppresses."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from shatterbox.errors import InputError
from shatterbox.factors import Factors
from shatterbox.models import LoadedModel, language_model_parts
from shatterbox.neurons import NeuronSettings, Units, explain_unit
from shatterbox.patching import factor_atom
from shatterbox.sae._files import HUB_IDS
from shatterbox.store import Store

HISTOGRAM_TOKENS = 50_000  # tokens of the store read for the activation histogram and the share of tokens it fires on
BINS = 20
LOGITS = 10


def _activations(store: Store, factors: Factors, layer: int, factor: int, limit: int = HISTOGRAM_TOKENS) -> np.ndarray:
    """The latent's activation on the first ``limit`` word tokens of the store."""
    out, seen = [], 0
    for _, hidden in store.batches(f"hidden_{layer}", "not special"):
        out.append(factors.codes(hidden, layer, units=[factor])[:, factor])
        seen += len(hidden)
        if seen >= limit:
            break
    return np.concatenate(out)[:limit] if out else np.zeros(0, np.float32)


def _logits(factors: Factors, layer: int, factor: int, model: LoadedModel | None) -> dict[str, list]:
    """Tokens whose logit the decoder row raises and lowers most (through the unembedding, as Neuronpedia shows them)."""
    if model is None:
        return {"pos_str": [], "pos_values": [], "neg_str": [], "neg_values": []}
    _, head, _ = language_model_parts(model)
    with torch.inference_mode():
        values = head.weight.float() @ factor_atom(factors, factor, layer)
    top, bottom = values.topk(LOGITS), (-values).topk(LOGITS)
    decode = lambda ids: [model.tokenizer.decode([int(i)]) for i in ids]  # noqa: E731
    return {"pos_str": decode(top.indices), "pos_values": [round(float(v), 4) for v in top.values],
            "neg_str": decode(bottom.indices), "neg_values": [round(-float(v), 4) for v in bottom.values]}


def neuronpedia_feature(factors: Factors, factor: int, *, layer: int | None = None, model: LoadedModel | None = None,
                        settings: NeuronSettings | None = None, model_id: str | None = None, sae_id: str | None = None) -> dict[str, Any]:
    """Latent ``factor`` of ``factors`` at hidden state ``layer`` as a Neuronpedia feature: ``modelId``, ``layer`` (the
    SAE id), ``index``, ``activations`` (top excerpts: ``tokens``, ``values``, ``maxValue``, ``maxValueTokenIndex``),
    the activation histogram (``freq_hist_data_bar_values``/``_heights`` over the non-zero activations), ``frac_nonzero``,
    ``maxActApprox``, ``explanations`` (the offline explanation, its scores and its baselines') and, with a decoder
    ``model``, the promoted and suppressed tokens (``pos_str``/``neg_str``).

    Examples:
        >>> # see tests/sae/test_neuronpedia.py
    """
    layer = factors.layer_of(layer)
    if not 0 <= factor < factors.n_factors:
        raise InputError(f"factor {factor} is out of range: these factors are numbered 0-{factors.n_factors - 1}", parameter="factor")
    store = factors.open_store()
    explained = explain_unit(Units.factors(store, factors, layer), factor, settings=settings or NeuronSettings())
    values = _activations(store, factors, layer, factor)
    active = values[values > 0]
    heights, edges = np.histogram(active, bins=BINS) if len(active) else (np.zeros(0), np.zeros(1))
    name = model_id or HUB_IDS.get(store.model, store.model).rsplit("/", 1)[-1]
    scores = explained["scores"]["explanation"]
    return {
        "modelId": name,
        "layer": sae_id or f"{layer}-shatterbox-res-{factors.model.n_factors}",
        "index": int(factor),
        "maxActApprox": float(values.max(initial=0.0)),
        "frac_nonzero": float(len(active) / max(len(values), 1)),
        "freq_hist_data_bar_values": [round(float(v), 5) for v in (edges[:-1] + edges[1:]) / 2],
        "freq_hist_data_bar_heights": [int(h) for h in heights],
        "activations": [_excerpt(e) for e in explained["excerpts"]],
        "explanations": [{"description": explained["explanation"], "explanationModelName": "shatterbox offline token explainer",
                          "typeName": "shatterbox-token-lookup", "flagged": explained["flagged"], "reason": explained["reason"],
                          "scores": [{"explanationScoreTypeName": m, **v} for m, v in scores.items() if v is not None],
                          "baselines": {b: {"description": explained["baselines"][b], "scores": explained["scores"][b]} for b in explained["baselines"]}}],
        **_logits(factors, layer, factor, model),
        "source": {"tool": "shatterbox", "store": factors.store.get("path"), "corpus": factors.store.get("corpus"), "tokens_read": int(len(values))},
    }


def _excerpt(excerpt: dict) -> dict:
    values = [float(v) for v in excerpt["activations"]]
    top = int(np.argmax(values)) if values else 0
    return {"tokens": list(excerpt["tokens"]), "values": values, "maxValue": max(values, default=0.0), "maxValueTokenIndex": top,
            "minValue": min(values, default=0.0)}
