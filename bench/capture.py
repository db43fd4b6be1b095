"""Capture overhead: shatterbox.trace vs a plain Hugging Face forward with output_attentions=True.

Both sides tokenize and run the same texts on the same model in the same process; the plain
side loads its own copy with eager attention (no recorder). Prints median seconds and the ratio.

    python bench/capture.py
"""

from __future__ import annotations

import statistics
import time

import torch
from transformers import AutoModel, AutoTokenizer

import shatterbox as sb
from shatterbox.models import default_model_path

SENTENCE = "Transformers possess surprising emerging features."
WORDS = ("the model reads every word and attends to the others in each of its heads and layers "
         "so that meaning emerges from numbers").split()


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(2)
    m = sb.load()
    path = default_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    plain = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    long_text = " ".join(WORDS[i % len(WORDS)] for i in range(254))
    batch = [" ".join(WORDS[i % 7 : i % 7 + 5 + i % 20]) for i in range(32)]
    cases = {"one sentence": ([SENTENCE], 30), "batch of 32 sentences": (batch, 10), "256-token text": ([long_text], 10)}
    print(f"{'case':24} {'HF forward (s)':>15} {'capture (s)':>12} {'ratio':>7}")
    for name, (texts, repeats) in cases.items():
        def hf():
            enc = tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
            with torch.inference_mode():
                plain(**enc, output_attentions=True)

        def ours():
            sb.capture_batch(m, texts, batch_size=32)

        n_tokens = len(tok(texts[0])["input_ids"])
        base, cap = median_seconds(hf, repeats), median_seconds(ours, repeats)
        print(f"{name:24} {base:15.4f} {cap:12.4f} {cap / base:7.2f}x   ({n_tokens} tokens in the first text)")


if __name__ == "__main__":
    main()
