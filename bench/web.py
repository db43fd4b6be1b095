"""Load test of `shatterbox serve` on loopback: 100 concurrent trace requests for different sentences.

Starts the app on a free 127.0.0.1 port in this process, fires the requests at once from 100
threads, checks every answer (its tokens must equal the tokenizer's for that sentence), checks the
server still answers afterwards, and prints p50/p95 latency and the ratio of p50 to one bare
Hugging Face forward pass of one sentence (measured in the same run).

    python bench/web.py [--requests 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import torch
from transformers import AutoModel, AutoTokenizer

from shatterbox.models import default_model_path
from shatterbox.web import Limits, create_app, running

SUBJECTS = ["The cat", "My neighbour", "A tired student", "The old train", "Our new manager", "The quiet river", "A small robot", "The chess club", "Her first novel", "The city library"]
VERBS = ["watches", "surprises", "follows", "explains", "ignores", "remembers", "paints", "carries", "helps", "questions"]
OBJECTS = ["the morning light", "every careful word", "a strange idea", "the long winter", "our last meeting", "the red bicycle", "a forgotten song", "the busy market", "an honest answer", "the distant hills"]


def sentences(n: int) -> list[str]:
    return [f"{SUBJECTS[i % 10]} {VERBS[(i // 10) % 10]} {OBJECTS[(i * 7) % 10]} number {i}." for i in range(n)]


def post(url: str, body: dict) -> tuple[float, int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            data = json.load(response)
            return time.perf_counter() - start, response.status, data
    except urllib.error.HTTPError as exc:
        return time.perf_counter() - start, exc.code, json.load(exc)


def bare_forward_seconds(text: str, repeats: int = 50) -> float:
    path = default_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    enc = tok(text, return_tensors="pt")
    times = []
    with torch.inference_mode():
        model(**enc, output_attentions=True)
        for _ in range(repeats):
            start = time.perf_counter()
            model(**enc, output_attentions=True)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts = sentences(args.requests)
    bare = bare_forward_seconds(texts[0])  # before the server exists: a quiet process
    app = create_app(limits=Limits(max_queue=args.requests + 10))
    tokenizer = app.state.model.tokenizer
    with running(app) as url:
        post(url + "api/trace", {"text": "warm up"})
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.requests) as pool:
            results = list(pool.map(lambda t: post(url + "api/trace", {"text": t}), texts))
        wall = time.perf_counter() - start
        alive = urllib.request.urlopen(url + "api/model").status
    latencies = sorted(r[0] for r in results)
    ok = sum(
        1 for (_, status, data), text in zip(results, texts)
        if status == 200 and data["tokens"] == tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
    )
    p50 = statistics.median(latencies)
    p95 = latencies[int(round(0.95 * (len(latencies) - 1)))]
    print(f"{args.requests} concurrent POST /api/trace (different sentences), one model call at a time, queued requests batched, 2 cores")
    print(f"correct answers: {ok}/{args.requests}, lost: {args.requests - len(results)}, server alive after: {alive == 200}")
    print(f"wall {wall:.2f} s, {args.requests / wall:.1f} requests/s")
    print(f"latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; bare HF forward of one sentence {bare * 1000:.1f} ms")
    print(f"p50 / bare forward = {p50 / bare:.1f}x (requests wait in the queue: the median request waits for about half of the others)")
    print(f"per-request cost: wall / requests / bare forward = {wall / args.requests / bare:.2f}x")


if __name__ == "__main__":
    main()
