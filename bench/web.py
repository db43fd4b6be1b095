"""Load test of `shatterbox serve` on loopback: 100 concurrent trace requests for different sentences.

Starts the app on a free 127.0.0.1 port in this process, fires the requests at once from 100
threads, checks every answer (its tokens must equal the tokenizer's for that sentence), checks the
server still answers afterwards, and prints p50/p95 latency and the ratio of p50 to one bare
Hugging Face forward pass of one sentence (measured in the same run).

Then a mixed load on a server in its own process (so its memory is measured alone): 100
concurrent 512-token requests and 100 short ones at once, while another client asks for `/` every
0.2 s. Every answer is checked, and the server's peak RSS (VmHWM) must stay under its configured
bounds: trace cache + three times the batch budget (a batch lives as torch tensors, stacked arrays
and per-trace copies) + the model + 1 GiB for responses in flight and the interpreter.

    python bench/web.py [--requests 100] [--long 100]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
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
    parser.add_argument("--long", type=int, default=100, help="512-token requests in the mixed load")
    args = parser.parse_args()
    torch.set_num_threads(2)
    texts = sentences(args.requests)
    bare = bare_forward_seconds(texts[0])  # before the server exists: a quiet process
    app = create_app(limits=Limits(max_queue=args.requests + 10))
    tokenizer = app.state.served.model.tokenizer
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

    mixed_load(args.long, args.requests)


SERVER = """
import sys
from shatterbox.web import Limits, serve
limits = Limits(max_queue=int(sys.argv[2]), trace_cache_bytes=int(sys.argv[3]), batch_bytes=int(sys.argv[4]))
serve(port=int(sys.argv[1]), limits=limits, on_ready=lambda url: print(url, flush=True))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def long_text(i: int) -> str:
    return " ".join(sentences(60 + i)[i:i + 60])  # about 700 tokens: cut to 512


def mixed_load(n_long: int, n_short: int, cache: int = 1 << 30, batch: int = 512 << 20) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(n_long + n_short + 10), str(cache), str(batch)],
                              stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().strip()
    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    post(url + "api/trace", {"text": "warm up"})
    idle = status_kib(server.pid, "VmRSS") / 1024
    texts = [(long_text(i), True) for i in range(n_long)] + [(f"Short request {i}: " + sentences(n_short)[i], False) for i in range(n_short)]
    texts = [texts[j] for j in sorted(range(len(texts)), key=lambda j: (j * 7919) % len(texts))]  # long and short interleaved
    page_times, stop = [], threading.Event()

    def poll_page() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            urllib.request.urlopen(url, timeout=30).read()
            page_times.append(time.perf_counter() - start)
            stop.wait(0.2)

    def check(item: tuple[str, bool]) -> tuple[bool, float]:
        text, long = item
        seconds, status, data = post(url + "api/trace", {"text": text})
        want = tokenizer.convert_ids_to_tokens(tokenizer(text, truncation=True, max_length=512)["input_ids"])
        ok = status == 200 and data["tokens"] == want and (len(want) == 512) == long and all(x["error"] < 1e-3 for x in data["layers"])
        return ok, seconds  # the 5.6 MB answer is dropped here: the client's memory is not the server's

    poller = threading.Thread(target=poll_page)
    poller.start()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        results = list(pool.map(check, texts))
    wall = time.perf_counter() - start
    stop.set()
    poller.join()
    peak = status_kib(server.pid, "VmHWM") / 1024
    server.terminate()
    server.wait(timeout=30)
    ok = sum(r[0] for r in results)
    bound = idle + (cache + 3 * batch + (1 << 30)) / 2**20
    print(f"\nmixed load: {n_long} concurrent 512-token requests + {n_short} short ones, 2 cores, server in its own process")
    print(f"correct answers: {ok}/{len(texts)}, lost: {len(texts) - len(results)}; wall {wall:.1f} s")
    print(f"GET / while loaded: {len(page_times)} requests, slowest {max(page_times) * 1000:.0f} ms, median {statistics.median(page_times) * 1000:.0f} ms")
    print(f"server RSS idle {idle:,.0f} MiB, peak {peak:,.0f} MiB; bound {bound:,.0f} MiB "
          f"(idle + trace cache {cache / 2**20:,.0f} + 3 x batch {batch / 2**20:,.0f} + 1,024)")
    assert ok == len(texts), "an answer was lost or wrong"
    assert max(page_times) < 1.0, "the page did not answer within 1 s under load"
    assert peak < bound, "the server's memory passed its bound"


if __name__ == "__main__":
    main()
