"""Self-contained HTML views of a Trace: head view, model view and probability table.

No CDN, no network: the page carries its own small JavaScript and CSS and, per layer, the queries and
keys quantised to 15 bits, from which the page recomputes the softmax (its largest difference from the
model's attention is measured here and printed on the page); a layer whose attention the softmax does
not reproduce (position biases, other masks) carries the attention itself, quantised to 15 bits.
Tokens are inserted with ``textContent`` only, and the JSON payload is escaped so that no token
can close the ``<script>`` element that carries it.

Examples:
    >>> from shatterbox import capture, load
    >>> page = trace_html(capture(load(), "hello <script>"))
    >>> "<script>alert" in page, page.startswith("<!DOCTYPE html>")
    (False, True)
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources

import numpy as np

from shatterbox.attention import recompute_attention, sliding_window
from shatterbox.render.palette import palette_json
from shatterbox.trace import Trace

ALPHABET = "".join(c for c in map(chr, range(32, 127)) if c not in '"&<>\\')  # 90 characters JSON and HTML keep as is
LEVELS = 36299  # the most levels three of which fit seven characters: LEVELS**3 <= 90**7 < 2**53 (exact in JavaScript)
SCALE = LEVELS - 1  # attention p in [0, 1] is the integer round(p * SCALE)
HALF = SCALE // 2  # queries and keys: round(x / scale) in [-HALF, HALF], one scale per head and dimension
RECOMPUTE_TOLERANCE = 1e-3  # a layer whose page-recomputed softmax differs more ships its exact attention


def pack(codes: np.ndarray) -> str:
    """Integers in [0, LEVELS) as text: three per seven characters of ``ALPHABET`` (15.1 bits in 2.33 bytes;
    base64 of 16-bit integers takes 2.67). views.js ``unpack`` reads it back.

    Examples:
        >>> text = pack(np.array([0, 1, SCALE, 7]))
        >>> len(text), unpack(text, 4).tolist()
        (14, [0, 1, 36298, 7])
    """
    flat = np.asarray(codes, dtype=np.int64).ravel()
    if flat.size and (flat.min() < 0 or flat.max() >= LEVELS):
        raise ValueError(f"pack takes integers in [0, {LEVELS})")
    flat = np.concatenate([flat, np.zeros(-flat.size % 3, dtype=np.int64)]).reshape(-1, 3)
    number = (flat[:, 0] * LEVELS + flat[:, 1]) * LEVELS + flat[:, 2]
    digits = np.empty((flat.shape[0], 7), dtype=np.int64)
    for k in range(6, -1, -1):
        number, digits[:, k] = np.divmod(number, len(ALPHABET))
    return np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)[digits].tobytes().decode("ascii")


def unpack(text: str, count: int) -> np.ndarray:
    """The first ``count`` integers of a ``pack`` string.

    Examples:
        >>> unpack(pack(np.arange(5)), 5).tolist()
        [0, 1, 2, 3, 4]
    """
    lookup = np.zeros(128, dtype=np.int64)
    lookup[np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)] = np.arange(len(ALPHABET))
    digits = lookup[np.frombuffer(text.encode("ascii"), dtype=np.uint8)].reshape(-1, 7)
    number = np.zeros(digits.shape[0], dtype=np.int64)
    for k in range(7):
        number = number * len(ALPHABET) + digits[:, k]
    out = np.stack([number // (LEVELS * LEVELS), number // LEVELS % LEVELS, number % LEVELS], axis=1)
    return out.ravel()[:count]


def quantise(attention: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] as integers round(p * SCALE) (error at most 1 / (2 * SCALE) ≈ 1.4e-5).

    Examples:
        >>> quantise(np.array([0.0, 0.5, 1.0])).tolist()
        [0, 18149, 36298]
    """
    return np.rint(np.clip(np.asarray(attention, dtype=np.float64), 0.0, 1.0) * SCALE).astype(np.int64)


def quantise_vectors(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Queries or keys [head, token, d] as integers in [-HALF, HALF] with one float32 scale per head and
    dimension. Returns ``(codes, scale)``; ``codes * scale`` is within ``scale / 2`` of every value.

    Examples:
        >>> codes, scale = quantise_vectors(np.array([[[1.0, -2.0], [0.5, 4.0]]]))
        >>> codes.tolist()
        [[[18149, -9074], [9074, 18149]]]
    """
    peak = np.abs(vectors).max(axis=1, keepdims=True).astype(np.float64)
    scale = np.where(peak > 0, peak / HALF, 1.0).astype(np.float32)  # the page reads float32 scales
    codes = np.rint(np.clip(vectors / scale, -HALF, HALF)).astype(np.int64)
    return codes, scale[:, 0, :]


def dequantise_vectors(codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The float32 vectors the page decodes from ``quantise_vectors`` (same arithmetic as views.js).

    Examples:
        >>> dequantise_vectors(*quantise_vectors(np.array([[[1.0, -2.0]]]))).tolist()
        [[[1.0, -2.0]]]
    """
    return codes.astype(np.float32) * scale[:, None, :].astype(np.float32)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _layer(trace: Trace, layer: int, *, neuron: bool) -> dict:
    """One layer as the page reads it: queries and keys where the page's softmax reproduces the model's
    (``error`` = largest difference), the model's attention where it does not or where it is smaller."""
    q, q_scale = quantise_vectors(trace.queries[layer])
    k, k_scale = quantise_vectors(trace.keys[layer])
    window = sliding_window(trace.scores[layer], trace.is_causal)
    page = recompute_attention(dequantise_vectors(q, q_scale), dequantise_vectors(k, k_scale),
                               float(trace.scaling[layer]), causal=trace.is_causal, window=window, softcap=trace.softcap)
    error = float(np.abs(page - trace.attentions[layer]).max())
    cheaper = trace.n_tokens <= 2 * trace.head_dim  # T*T attention values vs 2*T*d vector values
    exact = error > RECOMPUTE_TOLERANCE or (cheaper and not neuron)
    out: dict = {"recomputed": not exact, "window": window}
    if exact:
        codes = quantise(trace.attentions[layer])
        out["attention"] = pack(codes)
        error = float(np.abs(codes / SCALE - trace.attentions[layer]).max())
    if neuron or not exact:
        out.update(queries=pack(q + HALF), keys=pack(k + HALF),
                   qScale=_b64(q_scale.astype("<f4")), kScale=_b64(k_scale.astype("<f4")))
    out["error"] = error
    return out


def payload(trace: Trace, *, neuron: bool = True) -> dict:
    """The JSON the page reads: labels, alignment, and per layer either the quantised queries and keys
    (the page recomputes the softmax; ``error`` is its largest difference from the model's attention)
    or the exact attention [head, query, key] as ``quantise`` codes, whichever is faithful and smaller;
    integers are ``pack`` text, the per-head, per-dimension scales base64 float32.

    Examples:
        >>> from shatterbox import capture, load
        >>> d = payload(capture(load(), "hello world"))
        >>> sorted(d["layers"][0]), d["layers"][0]["error"] < 1e-3
        (['error', 'kScale', 'keys', 'qScale', 'queries', 'recomputed', 'window'], True)
    """
    return {
        "model": trace.model,
        "tokens": trace.labels,
        "words": trace.words,
        "wordIndex": trace.word_index.tolist(),
        "special": trace.special.astype(int).tolist(),
        "sequence": trace.sequence.tolist(),
        "nLayers": trace.n_layers,
        "nHeads": trace.n_heads,
        "headDim": trace.head_dim,
        "scale": SCALE,
        "half": HALF,
        "levels": LEVELS,
        "alphabet": ALPHABET,
        "scaling": [float(x) for x in trace.scaling],
        "layers": [_layer(trace, layer, neuron=neuron) for layer in range(trace.n_layers)],
        "causal": trace.is_causal,
        "softcap": trace.softcap or 0,
        "neuron": neuron,
    }


def script_json(data: dict) -> str:
    """``data`` as JSON that can sit inside a ``<script>`` element: no text in it can close the element.

    Examples:
        >>> "<" in script_json({"t": "</script><b>&"}), "&" in script_json({"t": "&"})
        (False, False)
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def palette_script() -> str:
    """The palette and its JavaScript functions (``window.shatterboxColours``), and the keyboard helper every page uses
    (``window.shatterboxKeys``, keys.js), for a page's first script.

    Examples:
        >>> palette_script().startswith("window.shatterboxPalette = {")
        True
    """
    return "window.shatterboxPalette = " + palette_json() + ";\n" + asset("palette.js") + "\n" + asset("keys.js")


def asset(name: str) -> str:
    """The text of one of the page assets (views.js, views.css, projector.js)."""
    return resources.files("shatterbox.render.assets").joinpath(name).read_text(encoding="utf-8")


def trace_html(trace: Trace, *, title: str | None = None, neuron: bool = True) -> str:
    """One self-contained HTML page with the head view, the model view, the probability table and
    (``neuron=True``) the neuron view.

    Examples:
        >>> from shatterbox import capture, load
        >>> len(trace_html(capture(load(), "Transformers possess surprising emerging features."), neuron=False)) < 80_000
        True
    """
    heading = html.escape(title or f"shatterbox - {trace.model}")
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + heading + "</title>"
        "<style>" + asset("views.css") + "</style></head><body>"
        "<div id=\"sb-root\"></div>"
        "<script type=\"application/json\" id=\"sb-data\">" + script_json(payload(trace, neuron=neuron)) + "</script>"
        "<script>" + palette_script() + "\n" + asset("views.js") + "</script></body></html>"
    )


def trace_frame(trace: Trace) -> str:
    """The page of :func:`trace_html` in an ``<iframe>``, for notebooks (its script runs apart from the notebook's).

    Examples:
        >>> from shatterbox import capture, load
        >>> trace_frame(capture(load(), "hi")).startswith("<iframe")
        True
    """
    return f'<iframe style="width:100%;height:720px;border:0" srcdoc="{html.escape(trace_html(trace), quote=True)}"></iframe>'
