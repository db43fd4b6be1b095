"""The JSON API with FastAPI's TestClient: same objects as the library, every bad input a JSON 4xx."""

import json
import threading
import time

import numpy as np
import pytest

import shatterbox as sb
from shatterbox.attribution import explain
from shatterbox.web import Limits, create_app
from shatterbox.web.server import Batcher, Busy, Gate, Guard
from tests.conftest import CHAPTER, PAIR, local_client


@pytest.fixture(scope="module")
def app():
    return create_app(limits=Limits(max_chars=2000, max_body=20_000))


@pytest.fixture(scope="module")
def client(app):
    with local_client(app) as c:  # one event loop for the module, as under uvicorn
        yield c


def test_model_info(client):
    info = client.get("/api/model").json()
    assert (info["model"], info["layers"], info["heads"]) == ("default", 6, 12) and info["title"] == "all-MiniLM-L6-v2 (default)"
    assert info["classifier"]["labels"] == ["negative", "positive"] and "all" in info["methods"]


def test_trace_is_the_views_payload_and_is_cached(client, app, default_model):
    first = client.post("/api/trace", json={"text": CHAPTER}).json()
    trace = sb.capture(default_model, CHAPTER)
    assert first["tokens"] == trace.labels and first["nLayers"] == 6 and len(first["layers"]) == 6
    assert first["truncated"] == 0
    cached = len(app.state.served.traces.items)
    assert client.post("/api/trace", json={"text": CHAPTER}).json() == first
    assert len(app.state.served.traces.items) == cached  # served from the cache, no new forward pass


def test_attention_table_and_ranking_equal_the_library(client, default_model):
    trace = sb.capture(default_model, CHAPTER)
    table = client.post("/api/attention", json={"text": CHAPTER, "layer": 6, "head": 6, "level": "word"}).json()
    assert table == sb.attention_table(trace, 6, 6, level="word").to_dict()
    ranking = client.post("/api/attention", json={"text": CHAPTER, "layer": 6, "head": 6, "word": "transformers"}).json()
    assert ranking == sb.attends_to(trace, 6, 6, "transformers", level="token").to_dict()


def test_pairs(client, default_model):
    data = client.post("/api/trace", json={"text": PAIR[0], "pair": PAIR[1]}).json()
    assert sorted(set(data["sequence"])) == [-1, 0, 1]


def test_heads(client):
    data = client.post("/api/heads", json={"texts": [CHAPTER, PAIR[0]], "top": 5}).json()
    assert data["texts"] == 2 and len(data["ranking"]) == 5 and np.array(data["score"]).shape == (6, 12)


@pytest.mark.slow
def test_explain_equals_the_library(client):
    data = client.post("/api/explain", json={"text": "I love playing chess with my friends."}).json()
    lib = explain(text="I love playing chess with my friends.")
    assert data["label_name"] == "positive" and data["label"] == 1 and data["method"] == "exact"
    np.testing.assert_allclose(data["values"], lib.values, atol=1e-9)
    compare = client.post("/api/explain", json={"text": "I love chess", "method": "all", "samples": 100}).json()
    assert [r["method"] for r in compare["rows"]] == ["exact", "kernel", "owen", "lime", "ig", "gradxinput", "rollout"]
    zero = client.post("/api/explain", json={"text": "The striker scored twice", "zero_shot": ["sports", "politics"]}).json()
    assert zero["label_name"] == "sports"
    text = "The staff were rude and the room was filthy, but the view was lovely."
    kernel = client.post("/api/explain", json={"text": text, "method": "kernel", "samples": 60}).json()
    assert kernel["method"] == "kernel" and kernel["evaluations"] == 60
    np.testing.assert_allclose(kernel["values"], explain(text=text, method="kernel", samples=60).values, atol=1e-9)


@pytest.mark.slow
def test_long_text_is_truncated_for_attention_and_refused_for_explain(client):
    text = " ".join(["a"] * 600)
    data = client.post("/api/trace", json={"text": text}).json()
    assert data["truncated"] == 90 and len(data["tokens"]) == 512 and "90 tokens" in data["warning"]
    assert data["neuron"] and all(layer["recomputed"] for layer in data["layers"])  # long: q and k carry the attention
    short = client.post("/api/trace", json={"text": CHAPTER, "neuron": False}).json()
    assert not short["neuron"] and all("queries" not in layer for layer in short["layers"])
    r = client.post("/api/explain", json={"text": text})
    assert r.status_code == 400 and "shorten the text" in r.json()["error"]


BAD = [
    ("/api/trace", {"text": ""}, 400, "empty"),
    ("/api/trace", {"text": "   "}, 400, "empty"),
    ("/api/trace", {"text": "\x01\x02"}, 400, "empty"),
    ("/api/trace", {"text": "\u200b"}, 400, "empty"),
    ("/api/trace", {"text": CHAPTER, "pair": "  "}, 400, "second text is empty"),
    ("/api/trace", {}, 422, "text: Field required"),
    ("/api/trace", {"text": 5}, 422, "text"),
    ("/api/trace", {"text": "x" * 2001}, 400, "at most 2,000"),
    ("/api/attention", {"text": CHAPTER, "layer": 7}, 400, "layer 7 is out of range: this model has layers 1-6"),
    ("/api/attention", {"text": CHAPTER, "layer": 0}, 400, "layers 1-6"),
    ("/api/attention", {"text": CHAPTER, "head": 13}, 400, "heads 1-12"),
    ("/api/attention", {"text": CHAPTER, "word": "cats"}, 400, "'cats' is not in the text"),
    ("/api/attention", {"text": CHAPTER, "level": "phrase"}, 422, "level"),
    ("/api/heads", {"texts": []}, 422, "texts"),
    ("/api/heads", {"texts": ["  "]}, 400, "empty"),
    ("/api/explain", {"text": "chess"}, 400, "single word"),
    ("/api/explain", {"text": "I love chess", "label": "neutral"}, 400, "'neutral' is not one of"),
    ("/api/explain", {"text": "I love chess", "method": "magic"}, 400, "unknown method"),
    ("/api/explain", {"text": " ".join(["good"] * 16), "method": "exact"}, 400, "65,536 model evaluations"),
    ("/api/explain", {"text": "I love chess", "method": "sampled", "budget": 5}, 400, "too small"),
    ("/api/explain", {"text": "I love chess", "zero_shot": ["sports"]}, 400, "at least two distinct"),
    ("/api/explain", {"text": "I love chess", "masking": "blur"}, 422, "masking"),
    ("/api/explain", {"text": "I love chess", "samples": 10**9}, 422, "samples"),
]


@pytest.mark.parametrize("path,body,status,message", BAD)
def test_bad_input_is_a_json_error_with_a_message(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status and message in r.json()["error"], r.text


def test_body_limit_and_malformed_json(client):
    r = client.post("/api/trace", content=b'{"text": "' + b"a" * 30_000 + b'"}', headers={"content-type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["error"]
    r = client.post("/api/trace", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()


def test_no_file_is_reachable_from_a_request(client):
    assert client.get("/static/app.js").status_code == 200
    for path in ("/static/..%2F__init__.py", "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/index.html/..", "/etc/passwd"):
        r = client.get(path)
        assert r.status_code == 404 and "error" in r.json(), path
    assert "path" not in str(client.get("/openapi.json").json()["components"]).lower().replace("jsonpath", "")


def test_page_and_docs_work_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace('href="/docs"', "")
    docs = client.get("/docs").text
    assert "cdn" not in docs and "/static-offline-docs/swagger-ui-bundle.js" in docs
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert set(client.get("/openapi.json").json()["paths"]) >= {"/api/trace", "/api/attention", "/api/heads", "/api/explain", "/api/model"}


def test_a_model_without_classifier_explains_only_zero_shot(tiny_dir):
    client = local_client(create_app(tiny_dir["bert"]))
    r = client.post("/api/explain", json={"text": "the cat sat"})
    assert r.status_code == 400 and "has no classification head" in r.json()["error"]
    assert client.post("/api/explain", json={"text": "the cat sat", "zero_shot": ["a", "b"]}).status_code == 200
    assert client.post("/api/attention", json={"text": "the cat sat", "head": 5}).json()["error"].endswith("heads 1-4 (numbered from 1)")


def test_unknown_model_fails_at_start():
    with pytest.raises(sb.ShatterboxError, match="not available locally"):
        create_app("no-such-org/no-such-model")


def test_gate_bounds_concurrency_and_queue():
    gate, inside, peak, lock = Gate(1, 2), [0], [0], threading.Lock()

    def work():
        with gate():
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.01)
    with pytest.raises(Busy):  # one running, two waiting: the queue is full
        with gate():
            pass
    for t in threads:
        t.join()
    assert peak[0] == 1


def test_a_full_queue_is_a_503_and_the_page_still_answers():
    from concurrent.futures import ThreadPoolExecutor

    app = create_app(limits=Limits(max_concurrent=1, max_queue=2))
    with local_client(app) as client, ThreadPoolExecutor(3) as pool:  # one event loop, as under uvicorn
        with app.state.served.gate():  # the model is busy: admitted requests wait for it
            waiting = [pool.submit(client.post, "/api/trace", json={"text": f"waiting sentence {i}"}) for i in range(3)]
            deadline = time.monotonic() + 10
            while app.state.served.admission.active < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert app.state.served.admission.active == 3  # one for the model slot, two in the queue
            r = client.post("/api/trace", json={"text": "one too many"})
            assert r.status_code == 503 and "busy" in r.json()["error"]
            start = time.perf_counter()
            assert client.get("/").status_code == 200 and client.get("/static/views.js").status_code == 200
            assert time.perf_counter() - start < 1.0  # the page is answered on the event loop, not behind the queue
        assert [f.result().status_code for f in waiting] == [200, 200, 200]
    assert local_client(app).post("/api/trace", json={"text": "one too many"}).status_code == 200


def test_a_request_that_waits_too_long_is_a_503():
    app = create_app(limits=Limits(timeout=0.3))
    client = local_client(app)
    with app.state.served.gate():
        r = client.post("/api/trace", json={"text": "a sentence that cannot be captured now"})
    assert r.status_code == 503 and "more than 0.3 s" in r.json()["error"]


@pytest.mark.slow
def test_batched_captures_equal_single_ones_and_a_bad_text_fails_alone(default_model):
    from concurrent.futures import ThreadPoolExecutor


    batcher = Batcher(default_model, Gate(1, 64))
    texts = [f"sentence number {i} about cats" for i in range(12)] + ["   "]
    with ThreadPoolExecutor(len(texts)) as pool:
        futures = [pool.submit(batcher.capture, t, None) for t in texts]
    for text, future in zip(texts[:-1], futures):
        single = sb.capture(default_model, text)
        assert future.result().labels == single.labels
        np.testing.assert_allclose(future.result().attentions, single.attentions, atol=1e-5)
    with pytest.raises(sb.errors.EmptyText):
        futures[-1].result()


def test_concurrent_requests_all_answer(client):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"The {i}th request arrives at once." for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda t: client.post("/api/trace", json={"text": t}), texts))
    assert all(r.status_code == 200 for r in results)
    assert [r.json()["text"] for r in results] == texts


def test_an_unexpected_failure_is_still_json(app, monkeypatch):
    import shatterbox.heads

    def broken(_traces):
        raise RuntimeError("boom")

    monkeypatch.setattr(shatterbox.heads, "head_stats", broken)
    r = local_client(app, raise_server_exceptions=False).post("/api/heads", json={"texts": [CHAPTER]})
    assert r.status_code == 500 and r.json() == {"error": "unexpected RuntimeError: boom"}


@pytest.mark.slow
def test_the_plan_of_an_explanation_matches_what_runs(client):
    req = {"text": "I love playing chess with my friends.", "method": "all"}
    plan = client.post("/api/explain/plan", json=req).json()
    assert plan["words"] == 8 and plan["faithfulness"] == 18
    assert [p["method"] for p in plan["plan"]] == ["exact", "kernel", "owen", "lime", "ig", "gradxinput", "rollout"]
    done = client.post("/api/explain", json=req).json()
    for p, a in zip(plan["plan"], done["attributions"]):
        assert a["method"] == p["method"] and a["evaluations"] <= p["evaluations"] + 2 * 8 + 2  # faithfulness adds its own
    bad = client.post("/api/explain/plan", json={**req, "method": "shapley", "label": "joy"})
    assert bad.status_code == 400 and "joy" in bad.json()["error"]


def test_other_host_names_are_refused_and_frames_are_forbidden(client):
    r = client.get("/", headers={"host": "attacker.example:8000"})
    assert r.status_code == 421 and "DNS rebinding" in r.json()["error"]
    assert client.post("/api/trace", json={"text": "hi"}, headers={"host": "rebound.example"}).status_code == 421
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert client.get("/", headers={"host": host}).status_code == 200, host
    assert "frame-ancestors 'none'" in client.get("/").headers["content-security-policy"]


def test_serving_on_all_interfaces_answers_ip_addresses_only():

    guard = Guard(None, max_body=1, hosts=("127.0.0.1", "localhost", "::1", "0.0.0.0"))
    assert guard.host_allowed("192.168.1.20:8000") and guard.host_allowed("[fe80::1]:8000")
    assert not guard.host_allowed("attacker.example:8000") and not guard.host_allowed("")


@pytest.mark.slow
def test_a_streamed_body_is_cut_off_while_it_streams():
    import http.client

    from shatterbox.web import running

    with running(create_app(limits=Limits(max_body=20_000))) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.putrequest("POST", "/api/trace")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")  # no Content-Length to refuse up front
        conn.endheaders()
        chunk = b"a" * 8_000
        conn.send(b'%x\r\n{"text": "\r\n' % len(b'{"text": "'))
        for _ in range(4):  # 32 kB: past the limit, and the body never ends
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = conn.getresponse()
        assert response.status == 413 and "too large" in json.loads(response.read())["error"]
        conn.close()


def test_the_trace_cache_is_bounded_in_bytes(default_model):
    one = sb.capture(default_model, "The 0th short sentence of the cache test.").nbytes
    app = create_app(limits=Limits(trace_cache_bytes=int(3.5 * one)))
    with local_client(app) as client:
        for i in range(10):
            assert client.post("/api/trace", json={"text": f"The {i}th short sentence of the cache test."}).status_code == 200
    cache = app.state.served.traces
    assert len(cache) == 3 and cache.nbytes <= 3.5 * one
    assert ("The 9th short sentence of the cache test.", None) in cache and ("The 0th short sentence of the cache test.", None) not in cache


def test_a_batch_holds_at_most_batch_bytes_of_traces(default_model, monkeypatch):
    import importlib


    module = importlib.import_module("shatterbox.trace")  # shatterbox.trace is also the function
    texts = [f"sentence number {i} about cats and dogs" for i in range(7)]
    one = sb.capture(default_model, texts[0]).nbytes
    sizes, real = [], module.capture_batch

    def recording(model, texts, pairs=None, **kw):
        sizes.append(len(texts))
        return real(model, texts, pairs, **kw)

    monkeypatch.setattr(module, "capture_batch", recording)
    gate = Gate(1, 64)
    batcher = Batcher(default_model, gate, max_bytes=int(2.5 * one))
    with gate():  # everything queues up behind the busy model
        futures = [batcher.submit(t, None) for t in texts]
        time.sleep(0.2)
    results = [f.result(timeout=60) for f in futures]
    assert [r.text for r in results] == texts and sum(sizes) == 7 and max(sizes) == 2  # without the bound: one batch of 6
