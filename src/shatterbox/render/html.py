"""Self-contained HTML views of a Trace: head view, model view and probability table.

No CDN, no network: the page carries its own small JavaScript and CSS, and the attention as
16-bit fixed-point numbers (one base64 string per layer, decoded only when that layer is shown).
Tokens are inserted with ``textContent`` only, and the JSON payload is escaped so that no token
can close the ``<script>`` element that carries it.

Example:
    >>> from shatterbox import load
    >>> page = trace_html(load().capture("hello <script>"))
    >>> "<script>alert" in page, page.startswith("<!DOCTYPE html>")
    (False, True)
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources

import numpy as np

from shatterbox.capture.trace import Trace

SCALE = 65535


def quantise(attention: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] as uint16 fixed point (error at most 1/131070 ≈ 7.6e-6).

    Example:
        >>> quantise(np.array([0.0, 0.5, 1.0])).tolist()
        [0, 32768, 65535]
    """
    return np.rint(np.clip(attention, 0.0, 1.0) * SCALE).astype("<u2")


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def payload(trace: Trace, *, neuron: bool = True) -> dict:
    """The JSON the page reads: labels, alignment, each layer's attention [head, query, key] in base64,
    and (for the neuron view) each layer's queries and keys [head, token, d] as little-endian float32."""
    data = {
        "model": trace.model,
        "tokens": trace.labels,
        "words": trace.words,
        "wordIndex": trace.word_index.tolist(),
        "special": trace.special.astype(int).tolist(),
        "sequence": trace.sequence.tolist(),
        "nLayers": trace.n_layers,
        "nHeads": trace.n_heads,
        "scale": SCALE,
        "layers": [_b64(quantise(layer)) for layer in trace.attentions],
        "causal": trace.is_causal,
    }
    if neuron:
        data["headDim"] = trace.head_dim
        data["scaling"] = [float(x) for x in trace.scaling]
        data["queries"] = [_b64(layer.astype("<f4")) for layer in trace.queries]
        data["keys"] = [_b64(layer.astype("<f4")) for layer in trace.keys]
    return data


def _script_json(data: dict) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _asset(name: str) -> str:
    return resources.files("shatterbox.render.assets").joinpath(name).read_text(encoding="utf-8")


def trace_html(trace: Trace, *, title: str | None = None, neuron: bool = True) -> str:
    """One self-contained HTML page with the head view, the model view, the probability table and
    (``neuron=True``) the neuron view, which carries exact float32 queries and keys.

    Example:
        >>> from shatterbox import load
        >>> len(trace_html(load().capture("Transformers possess surprising emerging features."), neuron=False)) < 80_000
        True
    """
    heading = html.escape(title or f"shatterbox - {trace.model}")
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + heading + "</title>"
        "<style>" + _asset("views.css") + "</style></head><body>"
        "<div id=\"sb-root\"></div>"
        "<script type=\"application/json\" id=\"sb-data\">" + _script_json(payload(trace, neuron=neuron)) + "</script>"
        "<script>" + _asset("views.js") + "</script></body></html>"
    )
