"""``shatterbox serve``: the analyses in the browser, from one local FastAPI app.

The model is loaded once; traces and explanations are kept in LRU caches bounded by bytes, so
switching layer, head or view never re-runs the model. Endpoints are asynchronous: the page and
its files are answered on the event loop at once, whatever the load; work runs in a few worker
threads, at most ``max_concurrent`` model calls at once, and at most ``max_concurrent + max_queue``
requests are admitted (503 beyond, and after ``timeout`` seconds). Waiting trace requests share
batched forward passes whose traces stay under ``batch_bytes``. Bodies are cut off at ``max_body``
while they stream; a Host header other than the served address is refused (DNS rebinding).
Every error is a JSON 4xx ``{"error": message}`` that the page shows next to the input. Requests
never name files.

Example:
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app(), base_url="http://127.0.0.1")
    >>> client.post("/api/attention", json={"text": "Transformers possess surprising emerging features.",
    ...                                     "layer": 6, "head": 6}).json()["layer"]
    6
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import queue
import re
import sys
import threading
import warnings
from concurrent.futures import Future, InvalidStateError
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import anyio
import numpy as np

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from shatterbox.attribution import DEFAULT_SAMPLES, METHODS
from shatterbox.capture import Trace, TruncationWarning
from shatterbox.errors import InputError, ShatterboxError
from shatterbox.memory import ByteLRU

__all__ = ["Limits", "create_app", "running", "serve"]




class Limits(BaseModel):
    """What one request may ask for, and what the server may hold (bytes and seconds)."""

    max_chars: int = 5_000
    max_body: int = 256 * 1024
    max_texts: int = 200
    max_concurrent: int = 1  # model calls at once
    max_queue: int = 256  # further requests admitted to wait; beyond: 503
    threads: int = 4  # worker threads for model calls, tables, stores and JSON
    timeout: float = 300.0  # seconds a request may wait and run; beyond: 503
    trace_cache_bytes: int = 1 << 30  # traces kept (a 512-token trace of the default model holds 185 MB)
    explain_cache_bytes: int = 64 << 20
    batch_bytes: int = 512 << 20  # the traces of one batched capture (a longer text runs alone)


class TraceRequest(BaseModel):
    text: str = Field(..., description="The sentence to analyse.", examples=["Transformers possess surprising emerging features."])
    pair: str | None = Field(None, description="An optional second sentence (a sentence pair).")


class ViewRequest(TraceRequest):
    neuron: bool = Field(
        True, description="Include the neuron view (its queries and keys; past twice the head size in tokens the other views read them anyway, so it costs nothing there)."
    )


class AttentionRequest(TraceRequest):
    layer: int = Field(1, description="Layer, numbered from 1.")
    head: int = Field(1, description="Head, numbered from 1.")
    level: Literal["token", "word"] = "token"
    specials: bool = Field(True, description="Keep [CLS]/[SEP]-like tokens (false: drop them and renormalise rows).")
    word: str | None = Field(None, description="Rank what this word attends to instead of returning the table.")


class HeadsRequest(BaseModel):
    texts: list[str] = Field(..., min_length=1, description="Sentences to measure the heads over.")
    top: int = Field(15, ge=1, le=1000)


class GenerateRequest(BaseModel):
    prompt: str = Field(..., description="The prompt to continue.", examples=["The capital of France is"])
    continuation: str | None = Field(None, description="Explain this continuation instead of generating one (include its leading space).")
    max_new_tokens: int = Field(6, ge=1, le=32, description="Tokens to generate greedily.")
    method: Literal["shapley", "exact", "sampled", "ig", "rollout"] = "shapley"
    contrast: str | None = Field(None, description="An alternative continuation of as many tokens: why this one rather than that.")
    budget: int = Field(2000, ge=10, le=20_000, description="Sampled Shapley: most forward passes.")
    precision: float = Field(0.2, ge=0.01, le=5.0, description="Sampled Shapley: stop when every 95% error bar is at most this (nats).")
    steps: int = Field(64, ge=2, le=256, description="Integrated gradients: Gauss-Legendre steps.")


class ExplainRequest(BaseModel):
    text: str
    method: str = Field("shapley", description="shapley, exact, sampled, kernel, owen, lime, ig, gradxinput, rollout, or all.")
    label: str | None = Field(None, description="Label to explain (default: the predicted one).")
    masking: Literal["auto", "mask", "delete"] = "auto"
    precision: float = Field(0.02, ge=0.001, le=1.0)
    budget: int | None = Field(None, ge=1, le=20_000)
    pairs: int | None = Field(None, ge=1, le=200, description="Quick mode: sampled Shapley with exactly this many antithetic pairs.")
    samples: int = Field(DEFAULT_SAMPLES, ge=10, le=5_000, description="LIME: perturbed texts; kernel: model evaluations.")
    steps: int = Field(32, ge=2, le=256)
    seed: int = 0
    zero_shot: list[str] | None = Field(None, description="Classify by similarity to these labels instead.")


class _Busy(Exception):
    pass


class _Gate:
    """At most ``limit`` model calls at once and at most ``queue`` more callers waiting; beyond that, busy."""

    def __init__(self, limit: int, queue: int) -> None:
        self.limit, self.queue, self.pending = limit, queue, 0
        self.slots, self.lock = threading.Semaphore(limit), threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.pending >= self.limit + self.queue:
                raise _Busy()
            self.pending += 1
        self.slots.acquire()
        try:
            yield
        finally:
            self.slots.release()
            with self.lock:
                self.pending -= 1


async def _result(future: Future) -> Any:
    """Await a batcher future without cancelling it when the request gives up (its trace still gets cached)."""
    return await asyncio.shield(asyncio.wrap_future(future))


class _Admission:
    """At most ``limit`` requests admitted at once (running or waiting); beyond that, busy.

    Used on the event loop only, so a plain counter is enough.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.active = limit, 0

    @asynccontextmanager
    async def __call__(self):
        if self.active >= self.limit:
            raise _Busy()
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


class _Batcher:
    """Captures waiting trace requests together: one batched forward pass for everything queued.

    While one batch runs, new requests queue up and form the next batch (at most ``max_batch``
    texts whose traces, padded to the longest, stay under ``max_bytes``; a longer text runs alone),
    so under load the model sees large batches and alone a request runs at once. A text that fails
    is retried on its own so that it gets its own error and the others their traces.
    """

    def __init__(self, loaded, gate: _Gate, *, max_batch: int = 32, max_bytes: int = 512 << 20) -> None:
        self.loaded, self.gate, self.max_batch, self.max_bytes = loaded, gate, max_batch, max_bytes
        self.counter = copy.deepcopy(loaded.tokenizer)  # the batcher's own: fast tokenizers are not thread-safe
        config = loaded.model.config
        hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 0)
        mlp = int(getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 4 * hidden)
        self.dims = (loaded.n_layers, loaded.n_heads, hidden // max(1, loaded.n_heads), hidden, mlp)
        self.queue: "queue.Queue[tuple[str, str | None, Future]]" = queue.Queue()
        self.worker = threading.Thread(target=self._run, daemon=True, name="shatterbox-batcher")
        self.worker.start()

    def submit(self, text: str, pair: str | None) -> Future:
        """A future Trace of ``text`` (and ``pair``), captured in the next batch."""
        done: Future = Future()
        self.queue.put((text, pair, done))
        return done

    def capture(self, text: str, pair: str | None):
        """The Trace of ``text`` (and ``pair``), captured in the next batch."""
        return self.submit(text, pair).result()

    def trace_bytes(self, item: tuple) -> int:
        """The bytes of ``item``'s Trace, from its token count."""
        try:
            n = len(self.counter(item[0], item[1], truncation=True, max_length=self.loaded.max_length)["input_ids"])
        except Exception:  # noqa: BLE001 - the capture itself reports a bad text
            n = 1
        return Trace.estimate_bytes(n, *self.dims)

    def _run(self) -> None:
        carry = None
        while True:
            items, carry = self._next_batch(carry)
            for has_pair in (False, True):
                group = [item for item in items if (item[1] is not None) == has_pair]
                if group:
                    self._capture_group(group)

    def _next_batch(self, carry) -> tuple[list, Any]:
        """The waiting items of the next batch (at least one), and the item that did not fit."""
        first = carry if carry is not None else self.queue.get()
        items, largest = [first], self.trace_bytes(first)
        while len(items) < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            size = max(largest, self.trace_bytes(item))
            if size * (len(items) + 1) > self.max_bytes:
                return items, item
            items.append(item)
            largest = size
        return items, None

    def _capture_group(self, group: list) -> None:
        from shatterbox.capture import capture_batch

        texts, pairs = [g[0] for g in group], [g[1] for g in group] if group[0][1] is not None else None
        try:
            with self.gate(), warnings.catch_warnings():
                warnings.simplefilter("ignore", TruncationWarning)  # reported in the response instead
                traces = capture_batch(self.loaded, texts, pairs, batch_size=self.max_batch)
        except Exception:  # noqa: BLE001 - one bad text must not fail the others: retry one by one
            if len(group) > 1:
                for item in group:
                    self._capture_group([item])
                return
            _settle(group[0][2], error=sys.exc_info()[1])
            return
        for (_, _, done), trace in zip(group, traces):
            _settle(done, trace)


def _settle(done: Future, result: Any = None, *, error: BaseException | None = None) -> None:
    """Give ``done`` its result or error, unless it was cancelled meanwhile (nobody waits for it then)."""
    try:
        done.set_exception(error) if error is not None else done.set_result(result)
    except InvalidStateError:
        pass


class _TooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large (at most {limit:,} bytes)")


class _Guard:
    """ASGI middleware: refuse a Host header that is not one of ``hosts`` (DNS rebinding), and cut a
    request body off once it passes ``max_body`` bytes while it streams."""

    def __init__(self, app, *, max_body: int, hosts: Sequence[str]) -> None:
        self.app, self.max_body, self.hosts = app, max_body, {h.lower().strip("[]") for h in hosts}

    def host_allowed(self, header: str) -> bool:
        """``header`` (host[:port]) names this server: a listed name, or any IP literal when serving on all interfaces."""
        host = header.rsplit(":", 1)[0] if header.count(":") == 1 or header.startswith("[") else header
        host = host.lower().strip("[]")
        if host in self.hosts:
            return True
        if self.hosts & {"0.0.0.0", "::"}:
            try:
                ipaddress.ip_address(host)
                return True
            except ValueError:
                return False
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not self.host_allowed(headers.get("host", "")):
            shown = headers.get("host", "")[:100]
            return await JSONResponse({"error": f"this server answers only at {', '.join(sorted(self.hosts))}, not at the Host {shown!r}: "
                                                "open it by that address (other host names are refused against DNS rebinding)"}, 421)(scope, receive, send)
        size = headers.get("content-length", "")
        if size.isdigit() and int(size) > self.max_body:
            return await JSONResponse({"error": f"request body too large ({int(size):,} bytes; at most {self.max_body:,})"}, 413)(scope, receive, send)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge(self.max_body)
            return message

        await self.app(scope, limited, send)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

_STATIC = {  # the only files the app serves: name -> (package, file, media type)
    "app.js": ("shatterbox.web.static", "app.js", "text/javascript"),
    "app.css": ("shatterbox.web.static", "app.css", "text/css"),
    "views.js": ("shatterbox.render.assets", "views.js", "text/javascript"),
    "views.css": ("shatterbox.render.assets", "views.css", "text/css"),
    "projector.js": ("shatterbox.render.assets", "projector.js", "text/javascript"),
    "projector.css": ("shatterbox.render.assets", "projector.css", "text/css"),
}


def _read(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def create_app(model: str = "default", *, limits: Limits | None = None, stores: str | Path | None = None,
               hosts: Sequence[str] = LOCAL_HOSTS, decoder: str | None = None) -> FastAPI:
    """The web app for ``model`` (loaded now, once); ``stores`` is the folder whose sub-folders are
    activation stores (the Corpus tab lists them; the app reads no other folder); ``hosts`` are the
    names the app answers to (the Host header; anything else is refused); ``decoder`` is the model the
    Generate tab uses (loaded at its first request) when the served model is not a decoder itself.

    Example:
        >>> app = create_app()
        >>> sorted(r.path for r in app.routes if r.path.startswith("/api"))[:4]
        ['/api/attention', '/api/datasets', '/api/datasets/{run_name}', '/api/explain']
    """
    from shatterbox.models import load

    limits = limits or Limits()
    loaded = load(model)
    traces = ByteLRU(limits.trace_cache_bytes, sizeof=lambda t: t.nbytes)
    explanations, zero_shots = ByteLRU(limits.explain_cache_bytes), ByteLRU(64 << 20)
    gate = _Gate(limits.max_concurrent, limits.max_queue + limits.threads)
    batcher = _Batcher(loaded, gate, max_bytes=limits.batch_bytes)
    admission, threads = _Admission(limits.max_concurrent + limits.max_queue), anyio.CapacityLimiter(limits.threads)
    app = FastAPIOffline(  # FastAPI with the /docs page's Swagger UI served locally, not from a CDN
        title="shatterbox",
        version=_version(),
        description=f"Attention, heads and attributions of {model!r}. Layers and heads are numbered from 1.",
    )
    app.add_middleware(_Guard, max_body=limits.max_body, hosts=hosts)

    classifier = _classifier(loaded)
    decoders = _Decoder(loaded, decoder)
    app.state.traces, app.state.explanations, app.state.gate, app.state.model = traces, explanations, gate, loaded
    app.state.admission = admission

    async def admitted(coroutine_function: Callable[[], Any]) -> Any:
        """``await coroutine_function()``, admitted (503 when the queue is full) and timed out."""
        async with admission():
            with anyio.fail_after(limits.timeout):
                return await coroutine_function()

    async def in_thread(work: Callable[[], Any]) -> Any:
        """``work()`` in one of the worker threads (the request gives up on it when it times out)."""
        return await anyio.to_thread.run_sync(work, limiter=threads, abandon_on_cancel=True)

    async def run(work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread, admitted and timed out."""
        return await admitted(lambda: in_thread(work))

    def check_text(text: str | None, what: str = "text") -> None:
        if text is not None and len(text) > limits.max_chars:
            raise InputError(f"the {what} has {len(text):,} characters; this server accepts at most {limits.max_chars:,}: shorten it")

    async def traces_for(texts: list[str | tuple[str, str | None]]) -> list:
        """Traces of ``texts`` (or (text, pair) tuples): cached ones at once, the others queued together so they share
        batched forward passes; awaited without holding a thread."""
        keys = [t if isinstance(t, tuple) else (t, None) for t in texts]
        for text, pair in keys:
            check_text(text)
            check_text(pair, "second text")
        pending = {key: batcher.submit(*key) for key in dict.fromkeys(keys) if key not in traces}
        for key, future in pending.items():
            traces.put(key, await _result(future))
        return [traces.get(key) or await _result(pending.get(key) or batcher.submit(*key)) for key in keys]

    async def trace_for(text: str, pair: str | None):
        return (await traces_for([(text, pair)]))[0]

    def json_bytes(data: Any) -> Response:
        return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), media_type="application/json")

    @app.exception_handler(ShatterboxError)
    async def shatterbox_error(_request: Request, exc: ShatterboxError):
        return JSONResponse({"error": str(exc), "type": type(exc).__name__}, 400)

    @app.exception_handler(_Busy)
    async def busy(_request: Request, _exc: _Busy):
        return JSONResponse({"error": "the server is busy (too many requests waiting): try again in a moment"}, 503)

    @app.exception_handler(TimeoutError)
    async def timed_out(_request: Request, _exc: TimeoutError):
        return JSONResponse({"error": f"the server is busy: the request waited and ran for more than {limits.timeout:g} s; try again in a moment"}, 503)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, 422)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        return JSONResponse({"error": f"unexpected {type(exc).__name__}: {exc}"}, 500)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, exc.status_code)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(_read("shatterbox.web.static", "index.html"), headers=_SECURITY_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, f"no such file: {name!r}")
        package, file, media = _STATIC[name]
        return Response(_read(package, file), media_type=media, headers=_SECURITY_HEADERS)

    store_folder = None if stores is None else Path(stores).resolve()

    @app.get("/api/stores", summary="The activation stores in the served folder (shatterbox serve --stores DIR)")
    async def list_stores() -> dict:
        return await run(lambda: {"folder": None if store_folder is None else store_folder.name, "model_hash": model_hash_once(),
                                  "stores": _list_stores(store_folder)})

    @app.post("/api/stores/{name}/occurrences", summary="Where a word occurs in a store: token rows with their sentences")
    async def occurrences(name: str, req: OccurrencesRequest) -> dict:
        def work() -> dict:
            store = _open_store(store_folder, name)
            words = (  # one row per word occurrence (its pieces merged), with its characters in the sentence
                "select sentence_id, word_index, any_value(word) as word, min(position) as position, min(char_start) as char_start, max(char_end) as char_end "
                "from tokens where lower(word) = lower(?) group by sentence_id, word_index"
            )
            rows = store.query(
                f"select w.sentence_id, w.position, w.word, w.char_start, w.char_end, s.text from ({words}) w join sentences s on s.id = w.sentence_id "
                "order by w.sentence_id, w.position limit ?",
                [req.word.strip(), req.limit],
            ).to_pylist()
            total = store.query(f"select count(*) from ({words})", [req.word.strip()]).column(0)[0].as_py()
            return {"store": name, "word": req.word.strip(), "total": total, "rows": rows}

        return await run(work)

    tops = ByteLRU(64 << 20)  # (factors file, mtime, layer, block) -> TopK of a block of factors

    @app.get("/api/factors", summary="Factor files in the served folder (shatterbox factors fit STORE --out DIR/NAME.factors)")
    async def list_factors() -> dict:
        return await run(lambda: {"factors": _list_factors(store_folder)})

    @app.get("/api/factors/{name}/level/{level}", summary="The factors of one level, strongest first, with their importance curves")
    async def factors_level(name: str, level: str, limit: int = 40) -> dict:
        def work() -> dict:
            factors, _ = _open_factors(store_folder, name)
            if level not in ("low", "mid", "high", "dead"):
                raise HTTPException(404, f"no level {level!r}: low, mid, high or dead")
            chosen = np.flatnonzero(factors.levels_ == level)
            chosen = chosen[np.argsort(-factors.importance_[chosen].max(1), kind="stable")][: max(1, min(limit, 200))]
            return {"name": name, "level": level, "layers": factors.layers,
                    "factors": [{"factor": int(f), "curve": factors.importance_[f].round(4).tolist()} for f in chosen]}

        return await run(work)

    @app.get("/api/factors/{name}/factor/{index}", summary="One factor: level, importance curve and top contexts (from the store)")
    async def factor_detail(name: str, index: int) -> dict:
        def work() -> dict:
            from shatterbox.factors import contexts

            factors, store = _open_factors(store_folder, name)
            if not 0 <= index < factors.n_factors:
                raise HTTPException(404, f"factor {index} is out of range: 0-{factors.n_factors - 1}")
            layer = factors.layers[int(factors.importance_[index].argmax())]
            units = factors.companions(index)
            key = (name, (store_folder / name).stat().st_mtime_ns, layer, units[0])
            top = tops.get_or_make(key, lambda: store.top_k(f"hidden_{layer}", units, 8, transform=lambda h: factors.codes(h, layer, units=units),
                                                            where="not special"))
            return {"name": name, "factor": index, "home": factors.home(index), "level": str(factors.levels_[index]), "layers": factors.layers,
                    "peak_layer": layer, "curve": factors.importance_[index].round(4).tolist(),
                    "contexts": contexts(factors, store, [index], layer, 8, top=top)[index]}

        return await run(work)

    @app.post("/api/factors/{name}/word", summary="A word's sense-labelled occurrences grouped by the factors that fire, with agreement scores")
    async def factor_word(name: str, req: OccurrencesRequest) -> dict:
        def work() -> dict:
            from shatterbox.factors import word_senses

            factors, store = _open_factors(store_folder, name)
            return word_senses(factors, store, req.word.strip())

        return await run(work)

    probes = ByteLRU(16 << 20)  # (store, its shards' mtime, request) -> probe results

    @app.post("/api/stores/{name}/probe", summary="Probe a property layer by layer, with its control task (and a random-weight store's curves)")
    async def probe_store(name: str, req: ProbeRequest) -> dict:
        def work() -> dict:
            from shatterbox.probes import probe
            from shatterbox.render.probes import probe_svg

            store = _open_store(store_folder, name)
            control = _open_store(store_folder, req.random) if req.random else None
            options = dict(level=req.level, kind=req.kind, layers=req.layers, folds=req.folds, limit=req.limit, seed=req.seed)

            def make() -> dict:
                result = probe(store, req.property, **options)
                baseline = None if control is None else probe(control, req.property, **options)
                return {"store": name, "random": req.random, "result": result.to_dict(),
                        "random_weights": None if baseline is None else baseline.to_dict(), "svg": probe_svg(result, baseline)}

            stamp = tuple(p.stat().st_mtime_ns for p in (store.root / "manifest.json", *((control.root / "manifest.json",) if control else ())))
            return probes.get_or_make((name, stamp, req.model_dump_json()), make)

        return await run(work)

    maps = ByteLRU(256 << 20)  # (store, its manifest's mtime, request) -> projector payload

    @app.post("/api/stores/{name}/project", summary="2-D maps (PCA or UMAP) of sentences or tokens at every layer, with their faithfulness")
    async def project_store(name: str, req: ProjectRequest) -> Response:
        def work() -> Response:
            from shatterbox.projector import layer_vectors, predictions, project_layers, sentence_points, token_points
            from shatterbox.render.projector import projector_payload

            store = _open_store(store_folder, name)

            def make() -> bytes:
                first = req.colour
                points = (sentence_points if req.level == "sentence" else token_points)(store, limit=req.limit, seed=req.seed)
                if req.predict:
                    labels, confidence = predictions(store, points, classifier_for_store())
                    points.labels["prediction"], points.values["confidence"] = labels, confidence
                if req.factors:
                    from shatterbox.projector import factor_values

                    factors = _factors_of(store_folder, req.factors, name)
                    label, values = factor_values(factors, req.factor, store, points)
                    points.values[label] = values
                    first = first or label
                chosen = req.layers or store.layers()
                found = project_layers(layer_vectors(store, points, chosen, pool=req.pool), req.method, seed=req.seed)
                return json.dumps(projector_payload(points, found, colour=first), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

            stamp = (store.root / "manifest.json").stat().st_mtime_ns
            return Response(maps.get_or_make((name, stamp, req.model_dump_json()), make), media_type="application/json")

        return await run(work)

    units_cache = ByteLRU(64 << 20)  # (store, manifest mtime, request) -> one unit explained and scored

    @app.post("/api/stores/{name}/neuron", summary="One MLP neuron (or factor): top and random excerpts, an offline explanation and its scores vs baselines")
    async def neuron_detail(name: str, req: NeuronRequest) -> dict:
        def work() -> dict:
            from shatterbox.neurons import Units, explain_unit

            store = _open_store(store_folder, name)
            if req.factors:
                factors = _factors_of(store_folder, req.factors, name)
                units = Units.factors(store, factors, req.layer, req.factors)
            else:
                units = Units.neurons(store, req.layer)
            stamp = (store.root / "manifest.json").stat().st_mtime_ns
            return units_cache.get_or_make((name, stamp, req.model_dump_json()), lambda: explain_unit(units, req.unit, seed=req.seed))

        return await run(work)

    @app.get("/api/neurons", summary="Neuron runs in the served folder (shatterbox neurons explain STORE --out DIR/NAME)")
    async def list_neuron_runs() -> dict:
        return await run(lambda: {"runs": _list_runs(store_folder)})

    @app.get("/api/neurons/{run_name}", summary="The units of a neuron run sorted by score; search their explanations")
    async def neuron_run(run_name: str, search: str = "", limit: int = 50) -> dict:
        def work() -> dict:
            from shatterbox.neurons import read_run, unit_payload

            if store_folder is None or not _STORE_NAME.match(run_name) or not (store_folder / run_name / "run.json").is_file():
                raise HTTPException(404, f"no neuron run named {run_name!r} in the served folder")
            record, table = read_run(store_folder / run_name)
            rows = table.to_pylist()
            if search.strip():
                rows = [r for r in rows if search.strip().lower() in r["explanation"].lower()]
            return {"run": run_name, "kind": record["kind"], "total": table.num_rows, "matches": len(rows),
                    "units": [unit_payload(r) for r in rows[: max(1, min(limit, 500))]]}

        return await run(work)

    datasets = ByteLRU(64 << 20)  # (source, stamp, request) -> Dataset payload

    @app.get("/api/datasets", summary="Corpus explanations in the served folder (shatterbox explain --corpus FILE --results DIR/NAME)")
    async def list_datasets() -> dict:
        return await run(lambda: {"runs": _list_datasets(store_folder)})

    def dataset_response(run_, req: "DatasetRequest") -> dict:
        from shatterbox.global_attribution import dataset_payload
        from shatterbox.render.global_attribution import bars_svg

        payload = dataset_payload(run_, by=req.by, min_count=req.min_count, top=req.top)
        payload["svg"] = {label: {d: bars_svg(payload["words"][label][d]) for d in ("up", "down")} for label in payload["labels"]}
        return payload

    @app.post("/api/datasets/{run_name}", summary="A corpus explanation of the served folder: words per label with intervals, drill-down, diagnostics")
    async def dataset(run_name: str, req: DatasetRequest) -> dict:
        def work() -> dict:
            from shatterbox.global_attribution import CorpusRun

            if store_folder is None or not _STORE_NAME.match(run_name) or not (store_folder / run_name / "run.json").is_file():
                raise HTTPException(404, f"no corpus explanation named {run_name!r} in the served folder")
            folder = store_folder / run_name
            stamp = max(p.stat().st_mtime_ns for p in folder.iterdir())
            return datasets.get_or_make((run_name, stamp, req.model_dump_json()), lambda: dataset_response(CorpusRun.read(folder), req))

        return await run(work)

    @app.post("/api/stores/{name}/explain-corpus", summary="Explain the first sentences of a store with the served classifier (quick sampled Shapley or Kernel SHAP) and rank the words per label")
    async def explain_store(name: str, req: DatasetRequest) -> dict:
        def work() -> dict:
            from shatterbox.global_attribution import Settings, explain_corpus

            store = _open_store(store_folder, name)
            stamp = (store.root / "manifest.json").stat().st_mtime_ns

            def make() -> dict:
                texts = store.query(f"select text from sentences order by id limit {int(req.limit)}").column(0).to_pylist()
                settings = Settings(method=req.method, pairs=req.pairs if req.method == "sampled" else None)
                return dataset_response(explain_corpus(texts, classifier_for_store(), settings=settings), req)

            return datasets.get_or_make((name, stamp, req.model_dump_json()), make)

        return await run(work)

    def classifier_for_store():
        if classifier is None:
            raise InputError("the served model has no classifier: serve the default model (the shipped sentiment classifier) or a sequence-classification model")
        return classifier

    hashes: dict[str, str] = {}

    def model_hash_once() -> str:
        if "h" not in hashes:
            from shatterbox.store import model_hash

            hashes["h"] = model_hash(loaded)
        return hashes["h"]

    @app.get("/api/model", summary="The served model: name, layers, heads, labels, limits")
    async def model_info() -> dict:
        clf = classifier
        return {
            "model": loaded.name,
            "title": loaded.title,
            "layers": loaded.n_layers,
            "heads": loaded.n_heads,
            "numbering": "layers and heads are numbered from 1",
            "classifier": None if clf is None else {"name": clf.name, "labels": clf.labels},
            "decoder": decoders.name,
            "methods": [*METHODS, "all"],
            "limits": limits.model_dump(),
        }

    @app.post("/api/trace", summary="Capture a sentence: tokens, words and every layer's attention (the views' data)")
    async def trace(req: ViewRequest) -> Response:
        from shatterbox.render.html import payload

        async def work() -> Response:
            t = await trace_for(req.text, req.pair)

            def build() -> Response:
                warning = None
                if t.truncated:
                    warning = f"the text is longer than the model accepts ({loaded.max_length} tokens): the last {t.truncated} tokens were cut off"
                data = {**payload(t, neuron=req.neuron), "text": t.text, "pair": t.text_pair, "truncated": t.truncated, "warning": warning}
                return json_bytes(data)

            return await in_thread(build)

        return await admitted(work)

    @app.post("/api/attention", summary="One head's probability table, or the ranking of what one word attends to")
    async def attention(req: AttentionRequest) -> dict:
        from shatterbox.attention import attends_to, attention_table

        async def work() -> dict:
            t = await trace_for(req.text, req.pair)

            def table() -> dict:
                if req.word is not None:
                    return attends_to(t, req.layer, req.head, req.word, level=req.level, specials=req.specials).to_dict()
                return attention_table(t, req.layer, req.head, level=req.level, specials=req.specials).to_dict()

            return await in_thread(table)

        return await admitted(work)

    @app.post("/api/heads", summary="The head finder over a few sentences: statistics, kinds and ranking")
    async def heads(req: HeadsRequest) -> dict:
        from shatterbox.heads import head_stats

        texts = [t for t in req.texts if t.strip()]
        if not texts:
            from shatterbox.errors import EmptyText

            raise EmptyText("list of sentences")
        if len(texts) > limits.max_texts:
            raise InputError(f"{len(texts)} sentences; this server measures at most {limits.max_texts} at once")

        async def work() -> dict:
            found = await traces_for(texts)
            return await in_thread(lambda: head_stats(found).to_dict(req.top))

        return await admitted(work)

    def classifier_for(req: ExplainRequest):
        """The classifier of ``req`` (runs in a worker thread: zero-shot label prototypes are a model call, under the gate)."""
        check_text(req.text)
        if req.zero_shot:
            from shatterbox.classifiers import zero_shot

            def make():
                with gate():
                    return zero_shot(req.zero_shot, loaded)

            return zero_shots.get_or_make(tuple(req.zero_shot), make)
        if classifier is None:
            from shatterbox.errors import NotAClassifier

            raise NotAClassifier(
                f"the served model {loaded.name!r} has no classification head: give zero_shot labels, or start "
                "`shatterbox serve` with a sequence-classification --model (or the default, which explains the shipped sentiment classifier)"
            )
        return classifier

    @app.post("/api/explain/plan", summary="What an explanation will cost, before it runs: words and model evaluations per method")
    async def explain_plan(req: ExplainRequest) -> dict:
        def work() -> dict:
            from shatterbox.attribution import make_game, plan

            clf = classifier_for(req)
            with gate():  # the game tokenizes with the model's tokenizer, which concurrent calls must not share
                game = make_game(clf, req.text, masking=req.masking)
            planned = plan(game, req.method, label=req.label, budget=req.budget, precision=req.precision, samples=req.samples,
                           steps=req.steps, pairs=req.pairs)
            return {"words": game.n, "plan": [{"method": m, "evaluations": n} for m, n in planned], "faithfulness": 2 * game.n + 2}

        return await run(work)

    @app.post("/api/explain", summary="Which words drove the prediction (attribution with faithfulness scores)")
    async def explain(req: ExplainRequest) -> dict:
        def work() -> dict:
            from shatterbox.attribution import explain as run_explain

            clf = classifier_for(req)
            options = req.model_dump(exclude={"text", "zero_shot"})

            def make():
                with gate():
                    return run_explain(clf, req.text, **options).to_dict()

            return explanations.get_or_make((clf.name, req.text, tuple(sorted(options.items()))), make)

        return await run(work)

    @app.post("/api/generate", summary="Generate, then which prompt words (and earlier tokens) drove each generated token")
    async def generate(req: GenerateRequest) -> Response:
        def work() -> Response:
            from shatterbox.generation import explain_generation

            check_text(req.prompt, "prompt")
            for extra in (req.continuation, req.contrast):
                check_text(extra, "continuation")
            with decoders.lock:
                e = explain_generation(decoders.get(), req.prompt, **req.model_dump(exclude={"prompt"}))
            return json_bytes(e.to_dict())

        return await run(work)

    return app


class _Decoder:
    """The Generate tab's decoder: the served model when it has a language-model head, else ``name`` loaded once at
    the first request; one generation at a time (the lock)."""

    def __init__(self, served, name: str | None) -> None:
        from shatterbox.models import language_model_parts

        self.lock, self._model = threading.Lock(), None
        try:
            language_model_parts(served)
            self._model, self.name = served, served.name
        except InputError:
            self.name = name

    def get(self):
        if self._model is None:
            if self.name is None:
                raise InputError("the Generate tab needs a decoder: start the app with `shatterbox serve --decoder gemma-3-270m` "
                                 "(the decoder extra) or serve a causal language model with --model")
            from shatterbox.models import load

            self._model = load(self.name)
        return self._model


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _classifier(loaded):
    """The classifier explain uses: the served model's own head, or the shipped sentiment classifier (adapters on a copy of the default's linear weights)."""
    from shatterbox.classifiers import from_model
    from shatterbox.errors import NotAClassifier
    from shatterbox.models import DEFAULT_MODEL

    try:
        return from_model(loaded)
    except NotAClassifier:
        if loaded.name == DEFAULT_MODEL:
            from shatterbox.classifiers import sentiment

            return sentiment.on(loaded)
        return None


class ProbeRequest(BaseModel):
    property: str = Field("pos", min_length=1, max_length=100, description="Token level: pos, supersense or sense; sentence level: a label column.")
    level: Literal["token", "sentence"] = "token"
    kind: Literal["linear", "mlp"] = "linear"
    layers: list[int] | None = Field(None, description="Hidden layers to probe (default: all the store holds).")
    folds: int = Field(5, ge=2, le=20)
    limit: int = Field(2000, ge=20, le=20_000, description="Examples used at most (a seeded sample): probes take seconds per thousand.")
    random: str | None = Field(None, description="A store of the same corpus harvested with --random-weights, for the baseline curves.")
    seed: int = 0


class ProjectRequest(BaseModel):
    method: Literal["pca", "umap"] = "pca"
    level: Literal["sentence", "token"] = "sentence"
    pool: Literal["mean", "first"] = Field("mean", description="Sentence vectors: mean of all its tokens, or its first ([CLS]) token.")
    layers: list[int] | None = Field(None, description="Hidden layers to map (default: all the store holds).")
    limit: int = Field(5000, ge=5, le=20_000, description="Points: a seeded sample of sentences or tokens.")
    colour: str | None = Field(None, max_length=100, description="The colouring shown first: a label column, or prediction.")
    predict: bool = Field(False, description="Add the served classifier's prediction and confidence (read from the store when its encoder's last layer answers it, else run once per sentence).")
    factors: str | None = Field(None, max_length=200, description="A factors file of the served folder, fitted on this store: colour by one factor's code.")
    factor: int = Field(0, ge=0, description="The factor (from 0) whose code colours the points.")
    seed: int = 0


class DatasetRequest(BaseModel):
    by: Literal["lemma", "word"] = "lemma"
    min_count: int = Field(5, ge=1, le=10_000, description="Words in fewer texts are left out of the rankings.")
    top: int = Field(15, ge=1, le=100)
    limit: int = Field(200, ge=2, le=1000, description="Store sentences to explain (explain-corpus only): about 0.1-0.2 s each.")
    pairs: int = Field(2, ge=1, le=16, description="Antithetic permutation pairs per text (explain-corpus only, sampled).")
    method: Literal["sampled", "kernel"] = Field("sampled", description="explain-corpus only: quick sampled Shapley, or Kernel SHAP (8 evaluations per word).")


class NeuronRequest(BaseModel):
    layer: int = Field(..., ge=0, description="The layer whose MLP neurons (or, with factors, whose hidden states) are read.")
    unit: int = Field(..., ge=0, description="The neuron or factor number, from 0.")
    factors: str | None = Field(None, max_length=200, description="A factors file of the served folder fitted on this store: a factor instead of a neuron.")
    seed: int = 0


class OccurrencesRequest(BaseModel):
    word: str = Field(..., min_length=1, max_length=100, description="A word of the corpus (case-insensitive).")
    limit: int = Field(20, ge=1, le=200)


_STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _store_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` that hold a store manifest and have a servable name, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "manifest.json").is_file() and _STORE_NAME.match(p.name))


def _list_stores(folder: Path | None) -> list[dict]:
    """Every sub-folder of ``folder`` with a manifest, summarised (a damaged one is listed with its error)."""
    from shatterbox.store import Store

    if folder is None or not folder.is_dir():
        return []
    found = []
    for sub in _store_dirs(folder):
        try:
            info = Store.open(sub, partial=True).to_dict()
            info.pop("path", None)
            found.append({"name": sub.name, **info})
        except ShatterboxError as exc:
            found.append({"name": sub.name, "error": str(exc).replace(str(sub), sub.name)})
    return found


def _open_store(folder: Path | None, name: str):
    """The store ``name`` of the served folder; anything else (paths, unknown names) is a 404."""
    from shatterbox.store import Store

    if folder is None:
        raise HTTPException(404, "no store folder is served: start the app with `shatterbox serve --stores DIR`")
    if not _STORE_NAME.match(name) or not (folder / name / "manifest.json").is_file():
        raise HTTPException(404, f"no store named {name!r} in the served folder")
    return Store.open(folder / name, partial=True)


def _runs_of(folder: Path | None, kind: str) -> Iterator[tuple[Path, dict]]:
    """(sub-folder, run record) of the served folder's runs whose record's format starts with ``kind`` (``shatterbox.runs``)."""
    from shatterbox.runs import read_record

    if folder is None or not folder.is_dir():
        return
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and _STORE_NAME.match(p.name)):
        record = read_record(sub)
        if record is not None and str(record.get("format", "")).startswith(kind):
            yield sub, record


def _list_runs(folder: Path | None) -> list[dict]:
    """Neuron runs of the served folder: kind, units done, the store they read."""
    from shatterbox.neurons import read_run

    found = []
    for sub, _ in _runs_of(folder, "shatterbox.neurons/"):
        try:
            record, table = read_run(sub)
            found.append({"name": sub.name, "kind": record["kind"], "units": table.num_rows, "store": Path(record["store"]["path"]).name,
                          "explainer": record["explainer"]})
        except (ShatterboxError, ValueError, KeyError, OSError) as exc:
            found.append({"name": sub.name, "error": str(exc).replace(str(folder), folder.name)})
    return found


def _list_datasets(folder: Path | None) -> list[dict]:
    """Corpus explanations (``shatterbox explain --corpus FILE --results DIR/NAME``) of the served folder."""
    import pyarrow.parquet as pq

    return [{"name": sub.name, "source": Path(str(record.get("source"))).name, "model": record.get("model"),
             "texts": sum(pq.ParquetFile(p).metadata.num_rows for p in sub.glob("texts-*.parquet"))}
            for sub, record in _runs_of(folder, "shatterbox.explain_corpus/")]


_FACTORS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(factors|safetensors)$")


def _list_factors(folder: Path | None) -> list[dict]:
    """Factor files at the top of the served folder: the store they read (matched by key), layers, levels, reports."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and _FACTORS_NAME.match(p.name)):
        try:
            factors, store = _open_factors(folder, path.name)
            summary = factors.to_dict()
            found.append({"name": path.name, "store": store.root.name, "model": summary["model"], "layers": summary["layers"],
                          "levels": summary["levels"], "reports": summary["reports"], "shared": summary["shared"]})
        except (ShatterboxError, HTTPException) as exc:
            found.append({"name": path.name, "error": str(getattr(exc, "detail", exc)).replace(str(folder), folder.name)})
    return found


def _open_factors(folder: Path | None, name: str):
    """(Factors, Store) of a factor file in the served folder; its store must be served too (matched by key)."""
    from shatterbox.factors import Factors
    from shatterbox.store import Store

    if folder is None:
        raise HTTPException(404, "no folder is served: start the app with `shatterbox serve --stores DIR`")
    if not _FACTORS_NAME.match(name) or not (folder / name).is_file():
        raise HTTPException(404, f"no factors file named {name!r} in the served folder")
    factors = Factors.load(folder / name)
    for sub in _store_dirs(folder):
        try:
            store = Store.open(sub, partial=True)
        except ShatterboxError:
            continue
        if store.manifest.get("key") == factors.store.get("key"):
            return factors, store
    raise HTTPException(404, f"the store {name!r} was fitted on is not in the served folder (or was harvested again): put it there or fit again")


def _factors_of(folder: Path | None, name: str, store_name: str):
    """The factors file ``name`` of the served folder, refused unless it was fitted on the store ``store_name``."""
    factors, fitted_on = _open_factors(folder, name)
    if fitted_on.root.name != store_name:
        raise InputError(f"{name!r} was fitted on the store {fitted_on.root.name!r}, not {store_name!r}: choose that store or other factors")
    return factors


def _version() -> str:
    from shatterbox import __version__

    return __version__


def serve(model: str = "default", *, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None, stores: str | Path | None = None,
          on_ready: Callable[[str], None] | None = None, decoder: str | None = None) -> None:
    """Load ``model`` and serve the app on ``host:port`` until Ctrl+C (127.0.0.1: this machine only).

    The app answers to the local names and ``host``; on all interfaces (0.0.0.0, ::) to any IP address,
    never to another host name (DNS rebinding).

    ``on_ready(url)`` is called once the server is listening.
    """
    import time

    hosts = LOCAL_HOSTS if host in LOCAL_HOSTS else (*LOCAL_HOSTS, host)
    with running(create_app(model, limits=limits, stores=stores, hosts=hosts, decoder=decoder), host=host, port=port) as url:
        if on_ready is not None:
            on_ready(url)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return


@contextmanager
def running(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread for the duration of the block; yields its URL (port 0: a free one).

    Example:
        >>> import urllib.request, json
        >>> with running(create_app()) as url:
        ...     json.load(urllib.request.urlopen(url + "api/model"))["heads"]
        12
    """
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise OSError(f"the server could not listen on {host}:{port} (is the port in use?)")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
