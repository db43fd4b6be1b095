"""``shatterbox serve``: the analyses in the browser, from one local FastAPI app.

The model is loaded once; traces and explanations are kept in bounded LRU caches, so switching
layer, head or view never re-runs the model. At most ``max_concurrent`` model calls run at once;
further requests wait in a bounded queue (503 when it is full). Every error is a JSON 4xx
``{"error": message}`` that the page shows next to the input. Requests never name files.

Example:
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app())
    >>> client.post("/api/attention", json={"text": "Transformers possess surprising emerging features.",
    ...                                     "layer": 6, "head": 6}).json()["layer"]
    6
"""

from __future__ import annotations

import queue
import re
import sys
import threading
import warnings
from concurrent.futures import Future
from collections import OrderedDict
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from shatterbox.attribution import METHODS
from shatterbox.capture import TruncationWarning
from shatterbox.errors import InputError, ShatterboxError

__all__ = ["Limits", "create_app", "running", "serve"]




class Limits(BaseModel):
    """What one request may ask for."""

    max_chars: int = 5_000
    max_body: int = 256 * 1024
    max_texts: int = 200
    max_concurrent: int = 1
    max_queue: int = 256
    trace_cache: int = 64
    explain_cache: int = 64


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


class ExplainRequest(BaseModel):
    text: str
    method: str = Field("shapley", description="shapley, exact, sampled, owen, lime, ig, gradxinput, rollout, or all.")
    label: str | None = Field(None, description="Label to explain (default: the predicted one).")
    masking: Literal["auto", "mask", "delete"] = "auto"
    precision: float = Field(0.02, ge=0.001, le=1.0)
    budget: int | None = Field(None, ge=1, le=20_000)
    pairs: int | None = Field(None, ge=1, le=200, description="Quick mode: sampled Shapley with exactly this many antithetic pairs.")
    samples: int = Field(500, ge=10, le=5_000)
    steps: int = Field(32, ge=2, le=256)
    seed: int = 0
    zero_shot: list[str] | None = Field(None, description="Classify by similarity to these labels instead.")


class _LRU:
    """A small thread-safe least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def __contains__(self, key: Any) -> bool:
        with self.lock:
            return key in self.items

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


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


class _Batcher:
    """Captures waiting trace requests together: one batched forward pass for everything queued.

    While one batch runs, new requests queue up and form the next batch (at most ``max_batch``),
    so under load the model sees large batches and alone a request runs at once. A text that
    fails is retried on its own so that it gets its own error and the others their traces.
    """

    def __init__(self, loaded, gate: _Gate, *, max_batch: int = 32, max_queue: int = 256) -> None:
        self.loaded, self.gate, self.max_batch, self.max_queue = loaded, gate, max_batch, max_queue
        self.queue: "queue.Queue[tuple[str, str | None, Future]]" = queue.Queue()
        self.worker = threading.Thread(target=self._run, daemon=True, name="shatterbox-batcher")
        self.worker.start()

    def submit(self, text: str, pair: str | None) -> Future:
        """A future Trace of ``text`` (and ``pair``), captured in the next batch."""
        if self.queue.qsize() + self.gate.pending >= self.gate.limit + self.max_queue:
            raise _Busy()
        done: Future = Future()
        self.queue.put((text, pair, done))
        return done

    def capture(self, text: str, pair: str | None):
        """The Trace of ``text`` (and ``pair``), captured in the next batch."""
        return self.submit(text, pair).result()

    def _run(self) -> None:
        while True:
            items = [self.queue.get()]
            while len(items) < self.max_batch:
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            for has_pair in (False, True):
                group = [item for item in items if (item[1] is not None) == has_pair]
                if group:
                    self._capture_group(group)

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
            group[0][2].set_exception(sys.exc_info()[1])
            return
        for (_, _, done), trace in zip(group, traces):
            done.set_result(trace)


_STATIC = {  # the only files the app serves: name -> (package, file, media type)
    "app.js": ("shatterbox.web.static", "app.js", "text/javascript"),
    "app.css": ("shatterbox.web.static", "app.css", "text/css"),
    "views.js": ("shatterbox.render.assets", "views.js", "text/javascript"),
    "views.css": ("shatterbox.render.assets", "views.css", "text/css"),
}


def _read(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def create_app(model: str = "default", *, limits: Limits | None = None, stores: str | Path | None = None) -> FastAPI:
    """The web app for ``model`` (loaded now, once); ``stores`` is the folder whose sub-folders are
    activation stores (the Corpus tab lists them; the app reads no other folder).

    Example:
        >>> app = create_app()
        >>> sorted(r.path for r in app.routes if r.path.startswith("/api"))[:4]
        ['/api/attention', '/api/explain', '/api/explain/plan', '/api/factors']
    """
    from shatterbox.models import load

    limits = limits or Limits()
    loaded = load(model)
    traces, explanations, zero_shots = _LRU(limits.trace_cache), _LRU(limits.explain_cache), _LRU(8)
    gate = _Gate(limits.max_concurrent, limits.max_queue)
    batcher = _Batcher(loaded, gate, max_queue=limits.max_queue)
    app = FastAPIOffline(  # FastAPI with the /docs page's Swagger UI served locally, not from a CDN
        title="shatterbox",
        version=_version(),
        description=f"Attention, heads and attributions of {model!r}. Layers and heads are numbered from 1.",
    )

    classifier = _classifier(loaded)
    app.state.traces, app.state.explanations, app.state.gate, app.state.model = traces, explanations, gate, loaded

    def check_text(text: str | None, what: str = "text") -> None:
        if text is not None and len(text) > limits.max_chars:
            raise InputError(f"the {what} has {len(text):,} characters; this server accepts at most {limits.max_chars:,}: shorten it")

    def trace_for(text: str, pair: str | None):
        check_text(text)
        check_text(pair, "second text")
        return traces.get((text, pair), lambda: batcher.capture(text, pair))

    def traces_for(texts: list[str]) -> list:
        """Several sentences: every one not cached yet is queued at once, so they share batched forward passes."""
        for text in texts:
            check_text(text)
        pending = {t: batcher.submit(t, None) for t in dict.fromkeys(texts) if (t, None) not in traces}
        out = []
        for text in texts:
            make = pending[text].result if text in pending else (lambda t=text: batcher.capture(t, None))
            out.append(traces.get((text, None), make))
        return out

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limits.max_body:
            return JSONResponse({"error": f"request body too large ({int(size):,} bytes; at most {limits.max_body:,})"}, 413)
        if request.method == "POST" and size is None:
            body = await request.body()
            if len(body) > limits.max_body:
                return JSONResponse({"error": f"request body too large (at most {limits.max_body:,} bytes)"}, 413)
        return await call_next(request)

    @app.exception_handler(ShatterboxError)
    async def shatterbox_error(_request: Request, exc: ShatterboxError):
        return JSONResponse({"error": str(exc), "type": type(exc).__name__}, 400)

    @app.exception_handler(_Busy)
    async def busy(_request: Request, _exc: _Busy):
        return JSONResponse({"error": "the server is busy (too many requests waiting): try again in a moment"}, 503)

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
    def index() -> HTMLResponse:
        return HTMLResponse(_read("shatterbox.web.static", "index.html"), headers=_SECURITY_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, f"no such file: {name!r}")
        package, file, media = _STATIC[name]
        return Response(_read(package, file), media_type=media, headers=_SECURITY_HEADERS)

    store_folder = None if stores is None else Path(stores).resolve()

    @app.get("/api/stores", summary="The activation stores in the served folder (shatterbox serve --stores DIR)")
    def list_stores() -> dict:
        return {"folder": None if store_folder is None else store_folder.name, "model_hash": model_hash_once(), "stores": _list_stores(store_folder)}

    @app.post("/api/stores/{name}/occurrences", summary="Where a word occurs in a store: token rows with their sentences")
    def occurrences(name: str, req: OccurrencesRequest) -> dict:
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

    tops = _LRU(64)  # (factors file, mtime, layer, block) -> TopK of a block of factors: [factors, 8] values and ids, ~150 KB each

    @app.get("/api/factors", summary="Factor files in the served folder (shatterbox factors fit STORE --out DIR/NAME.factors)")
    def list_factors() -> dict:
        return {"factors": _list_factors(store_folder)}

    @app.get("/api/factors/{name}/level/{level}", summary="The factors of one level, strongest first, with their importance curves")
    def factors_level(name: str, level: str, limit: int = 40) -> dict:
        factors, _ = _open_factors(store_folder, name)
        if level not in ("low", "mid", "high", "dead"):
            raise HTTPException(404, f"no level {level!r}: low, mid, high or dead")
        chosen = np.flatnonzero(factors.levels_ == level)
        chosen = chosen[np.argsort(-factors.importance_[chosen].max(1), kind="stable")][: max(1, min(limit, 200))]
        return {"name": name, "level": level, "layers": factors.layers,
                "factors": [{"factor": int(f), "curve": factors.importance_[f].round(4).tolist()} for f in chosen]}

    @app.get("/api/factors/{name}/factor/{index}", summary="One factor: level, importance curve and top contexts (from the store)")
    def factor_detail(name: str, index: int) -> dict:
        factors, store = _open_factors(store_folder, name)
        if not 0 <= index < factors.n_factors:
            raise HTTPException(404, f"factor {index} is out of range: 0-{factors.n_factors - 1}")
        layer = factors.layers[int(factors.importance_[index].argmax())]
        units = factors.companions(index)
        key = (name, (store_folder / name).stat().st_mtime_ns, layer, units[0])
        top = tops.get(key, lambda: store.top_k(f"hidden_{layer}", units, 8, transform=lambda h: factors.codes(h, layer, units=units),
                                                where="not special"))
        from shatterbox.factors import contexts

        return {"name": name, "factor": index, "home": factors.home(index), "level": str(factors.levels_[index]), "layers": factors.layers, "peak_layer": layer,
                "curve": factors.importance_[index].round(4).tolist(), "contexts": contexts(factors, store, [index], layer, 8, top=top)[index]}

    @app.post("/api/factors/{name}/word", summary="A word's sense-labelled occurrences grouped by the factors that fire, with agreement scores")
    def factor_word(name: str, req: OccurrencesRequest) -> dict:
        from shatterbox.factors import word_senses

        factors, store = _open_factors(store_folder, name)
        return word_senses(factors, store, req.word.strip())

    hashes: dict[str, str] = {}

    def model_hash_once() -> str:
        if "h" not in hashes:
            from shatterbox.store import model_hash

            hashes["h"] = model_hash(loaded)
        return hashes["h"]

    @app.get("/api/model", summary="The served model: name, layers, heads, labels, limits")
    def model_info() -> dict:
        clf = classifier
        return {
            "model": loaded.name,
            "title": loaded.title,
            "layers": loaded.n_layers,
            "heads": loaded.n_heads,
            "numbering": "layers and heads are numbered from 1",
            "classifier": None if clf is None else {"name": clf.name, "labels": clf.labels},
            "methods": [*METHODS, "all"],
            "limits": limits.model_dump(),
        }

    @app.post("/api/trace", summary="Capture a sentence: tokens, words and every layer's attention (the views' data)")
    def trace(req: ViewRequest) -> dict:
        from shatterbox.render.html import payload

        t = trace_for(req.text, req.pair)
        notes = []
        if t.truncated:
            notes.append(f"the text is longer than the model accepts ({loaded.max_length} tokens): the last {t.truncated} tokens were cut off")
        warning = "; ".join(notes) or None
        return {**payload(t, neuron=req.neuron), "text": t.text, "pair": t.text_pair, "truncated": t.truncated, "warning": warning}

    @app.post("/api/attention", summary="One head's probability table, or the ranking of what one word attends to")
    def attention(req: AttentionRequest) -> dict:
        from shatterbox.attention import attends_to, attention_table

        t = trace_for(req.text, req.pair)
        if req.word is not None:
            return attends_to(t, req.layer, req.head, req.word, level=req.level, specials=req.specials).to_dict()
        return attention_table(t, req.layer, req.head, level=req.level, specials=req.specials).to_dict()

    @app.post("/api/heads", summary="The head finder over a few sentences: statistics, kinds and ranking")
    def heads(req: HeadsRequest) -> dict:
        from shatterbox.heads import head_stats

        texts = [t for t in req.texts if t.strip()]
        if not texts:
            from shatterbox.errors import EmptyText

            raise EmptyText("list of sentences")
        if len(texts) > limits.max_texts:
            raise InputError(f"{len(texts)} sentences; this server measures at most {limits.max_texts} at once")
        return head_stats(traces_for(texts)).to_dict(req.top)

    def classifier_for(req: ExplainRequest):
        check_text(req.text)
        if req.zero_shot:
            from shatterbox.classifiers import zero_shot

            clf = zero_shots.get(tuple(req.zero_shot), lambda: zero_shot(req.zero_shot, loaded))
        else:
            clf = classifier
            if clf is None:
                from shatterbox.errors import NotAClassifier

                raise NotAClassifier(
                    f"the served model {loaded.name!r} has no classification head: give zero_shot labels, or start "
                    "`shatterbox serve` with a sequence-classification --model (or the default, which explains the shipped sentiment classifier)"
                )
        return clf

    @app.post("/api/explain/plan", summary="What an explanation will cost, before it runs: words and model evaluations per method")
    def explain_plan(req: ExplainRequest) -> dict:
        from shatterbox.attribution import make_game, plan

        game = make_game(classifier_for(req), req.text, masking=req.masking)
        planned = plan(game, req.method, label=req.label, budget=req.budget, precision=req.precision, samples=req.samples,
                       steps=req.steps, pairs=req.pairs)
        return {"words": game.n, "plan": [{"method": m, "evaluations": n} for m, n in planned], "faithfulness": 2 * game.n + 2}

    @app.post("/api/explain", summary="Which words drove the prediction (attribution with faithfulness scores)")
    def explain(req: ExplainRequest) -> dict:
        from shatterbox.attribution import explain as run_explain

        clf = classifier_for(req)
        options = req.model_dump(exclude={"text", "zero_shot"})

        def make():
            with gate():
                return run_explain(clf, req.text, **options).to_dict()

        return explanations.get((clf.name, req.text, tuple(sorted(options.items()))), make)

    return app


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _classifier(loaded):
    """The classifier explain uses: the served model's own head, or the shipped sentiment head on the default."""
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


def _version() -> str:
    from shatterbox import __version__

    return __version__


def serve(model: str = "default", *, host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None, stores: str | Path | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Load ``model`` and serve the app on ``host:port`` until Ctrl+C (127.0.0.1: this machine only).

    ``on_ready(url)`` is called once the server is listening.
    """
    import time

    with running(create_app(model, limits=limits, stores=stores), host=host, port=port) as url:
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
