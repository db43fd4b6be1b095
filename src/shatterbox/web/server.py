"""The serving machinery under every tab: limits, admission and the model gate, batched captures, the Host and
body-size guard, error handlers, the served folder's listings, and a thread to run the app in.

Examples:
    >>> Limits().max_concurrent
    1
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import queue
import sys
import threading
import warnings
from concurrent.futures import Future, InvalidStateError
from contextlib import asynccontextmanager, contextmanager
from importlib import resources
from typing import Any, Iterator, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from shatterbox.trace import Trace, TruncationWarning
from shatterbox.errors import ShatterboxError

__all__ = ["LOCAL_HOSTS", "Admission", "Batcher", "Busy", "Gate", "Guard", "Limits", "add_error_handlers", "read_static", "result", "running"]


class Limits(BaseModel):
    """What one request may ask for, and what the server may hold (bytes and seconds)."""

    max_chars: int = 5_000
    max_body: int = 256 * 1024
    max_texts: int = 200
    max_concurrent: int = 1  # model calls at once
    max_queue: int = 256  # further requests admitted to wait; beyond: 503
    threads: int = 4  # worker threads for model calls, tables, stores and JSON
    timeout: float = 300.0  # seconds a request may wait and run; beyond: 503
    abandon_after: float = 30.0  # seconds a job runs on after its page stopped asking for its progress
    trace_cache_bytes: int = 1 << 30  # traces kept (a 512-token trace of the default model holds 185 MB)
    explain_cache_bytes: int = 64 << 20
    batch_bytes: int = 512 << 20  # the traces of one batched capture (a longer text runs alone)



class Busy(Exception):
    pass


class Gate:
    """At most ``limit`` model calls at once and at most ``queue`` more callers waiting; beyond that, busy."""

    def __init__(self, limit: int, queue: int) -> None:
        self.limit, self.queue, self.pending = limit, queue, 0
        self.slots, self.lock = threading.Semaphore(limit), threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self.lock:
            if self.pending >= self.limit + self.queue:
                raise Busy()
            self.pending += 1
        self.slots.acquire()
        try:
            yield
        finally:
            self.slots.release()
            with self.lock:
                self.pending -= 1


async def result(future: Future) -> Any:
    """Await a batcher future without cancelling it when the request gives up (its trace still gets cached)."""
    return await asyncio.shield(asyncio.wrap_future(future))


class Admission:
    """At most ``limit`` requests admitted at once (running or waiting); beyond that, busy.

    Used on the event loop only, so a plain counter is enough.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.active = limit, 0

    @asynccontextmanager
    async def __call__(self):
        if self.active >= self.limit:
            raise Busy()
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


class Batcher:
    """Captures waiting trace requests together: one batched forward pass for everything queued.

    While one batch runs, new requests queue up and form the next batch (at most ``max_batch``
    texts whose traces, padded to the longest, stay under ``max_bytes``; a longer text runs alone),
    so under load the model sees large batches and alone a request runs at once. A text that fails
    is retried on its own so that it gets its own error and the others their traces.
    """

    def __init__(self, loaded, gate: Gate, *, max_batch: int = 32, max_bytes: int = 512 << 20) -> None:
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
        from shatterbox.trace import capture_batch

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


class Guard:
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

STATIC = {  # the only files the app serves: name -> (package, file, media type)
    "app.js": ("shatterbox.web.static", "app.js", "text/javascript"),
    "app.css": ("shatterbox.web.static", "app.css", "text/css"),
    "palette.js": ("shatterbox.render.assets", "palette.js", "text/javascript"),  # served after the palette's data
    "views.js": ("shatterbox.render.assets", "views.js", "text/javascript"),
    "plots.js": ("shatterbox.render.assets", "plots.js", "text/javascript"),
    "plots.css": ("shatterbox.render.assets", "plots.css", "text/css"),
    "views.css": ("shatterbox.render.assets", "views.css", "text/css"),
    "projector.js": ("shatterbox.render.assets", "projector.js", "text/javascript"),
    "projector.css": ("shatterbox.render.assets", "projector.css", "text/css"),
}


def read_static(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")



SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@contextmanager
def running(app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread for the duration of the block; yields its URL (port 0: a free one).

    Examples:
        >>> import urllib.request, json
        >>> from shatterbox.web import create_app
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


def add_error_handlers(app: FastAPI, limits: Limits) -> None:
    """Every error as JSON ``{"error": message}``: bad input 400, validation 422, busy or timed out 503, others 500."""

    @app.exception_handler(ShatterboxError)
    async def shatterbox_error(_request: Request, exc: ShatterboxError):
        return JSONResponse({"error": str(exc), "type": type(exc).__name__, "field": exc.parameter}, 400)

    @app.exception_handler(Busy)
    async def busy(_request: Request, _exc: Busy):
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
