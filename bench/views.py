"""HTML size of our views vs BertViz's head_view + model_view for the same sentence and model, and our
512-token page (BertViz's would be gigabytes of JSON: not built).

BertViz is a dev-only dependency (`pip install -e ".[bench]"`). Both pages are built from the same
captured attention in the same run; BertViz's are the HTML strings its views return.

    python bench/views.py
"""

from __future__ import annotations

import torch

import shatterbox as sb
from shatterbox.render.html import payload, trace_html

SENTENCES = {
    5: "Transformers possess surprising emerging features.",
    14: "A lot of people like animals so they adopt cats and dogs from shelters.",
    18: "The quick brown fox jumps over the lazy dog while the farmer watches quietly from the old barn.",
    40: (
        "The attention heads of a transformer model read every word of a sentence and weigh how much each "
        "other word matters, so that layer after layer the numbers that stand for words slowly turn into "
        "meaning, grammar and sentence structure."
    ),
}
LONG = "the model reads every word and attends to the others in each head".split()


def bertviz_bytes(trace: sb.Trace) -> int:
    from bertviz import head_view, model_view

    attention = tuple(torch.from_numpy(layer[None].copy()) for layer in trace.attentions)
    head = head_view(attention, trace.tokens, html_action="return")
    model = model_view(attention, trace.tokens, html_action="return")
    return len(head.data.encode()) + len(model.data.encode())


def main() -> None:
    m = sb.load()
    print(f"{'words':>5} {'tokens':>6} {'BertViz head+model':>19} {'ours (no neuron)':>17} {'ratio':>6} {'ours (all 3 views)':>19} {'ratio':>6} {'largest error':>13}")
    for words, text in SENTENCES.items():
        trace = sb.capture(m, text)
        assert len(text.split()) == words, (words, len(text.split()))
        theirs = bertviz_bytes(trace)
        small = len(trace_html(trace, neuron=False).encode())
        full = len(trace_html(trace).encode())
        error = max(layer["error"] for layer in payload(trace)["layers"])
        print(f"{words:>5} {trace.n_tokens:>6} {theirs:>19,} {small:>17,} {small / theirs:>6.3f} {full:>19,} {full / theirs:>6.3f} {error:>13.1e}")
    long = sb.capture(m, " ".join(LONG[i % len(LONG)] for i in range(510)))
    full = len(trace_html(long).encode())
    error = max(layer["error"] for layer in payload(long)["layers"])
    print(f"{'':>5} {long.n_tokens:>6} {'-':>19} {len(trace_html(long, neuron=False).encode()):>17,} {'':>6} {full:>19,} {'':>6} {error:>13.1e}")
    print("largest error: the page's attention (softmax recomputed from 15-bit q and k) against the model's, any layer")


if __name__ == "__main__":
    main()
