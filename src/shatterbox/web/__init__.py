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

Examples:
    >>> from fastapi.testclient import TestClient
    >>> client = TestClient(create_app(), base_url="http://127.0.0.1")
    >>> client.post("/api/attention", json={"text": "Transformers possess surprising emerging features.",
    ...                                     "layer": 6, "head": 6}).json()["layer"]
    6
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from shatterbox.web import corpus, explain, factors, generate, help, jobs, lens, neurons, patching, probes, sae, sentence
from shatterbox.web.served import Served
from shatterbox.web.server import LOCAL_HOSTS, Guard, Limits, add_error_handlers, running

__all__ = ["Limits", "create_app", "running", "serve"]

TABS = (sentence, help, explain, generate, patching, lens, corpus, factors, sae, probes, neurons)  # each module's router(served) serves one tab (help: every tab's text)


def create_app(model: str = "default", *, limits: Limits | None = None, stores: str | Path | None = None,
               hosts: Sequence[str] = LOCAL_HOSTS, decoder: str | None = None) -> FastAPI:
    """The web app for ``model`` (loaded now, once); ``stores`` is the folder whose sub-folders are
    activation stores (the Corpus tab lists them; the app reads no other folder); ``hosts`` are the
    names the app answers to (the Host header; anything else is refused); ``decoder`` is the model the
    Generate tab uses (loaded at its first request) when the served model is not a decoder itself.

    Examples:
        >>> app = create_app()
        >>> sorted(app.openapi()["paths"])[:4]
        ['/api/attention', '/api/datasets', '/api/datasets/{run_name}', '/api/explain']
    """
    from shatterbox import __version__
    from shatterbox.models import load

    limits = limits or Limits()
    served = Served(load(model), limits, stores, decoder)
    app = FastAPIOffline(  # FastAPI with the /docs page's Swagger UI served locally, not from a CDN
        title="shatterbox", version=__version__,
        description=f"Attention, heads and attributions of {model!r}. Layers and heads are numbered from 1.",
    )
    app.add_middleware(Guard, max_body=limits.max_body, hosts=hosts)
    add_error_handlers(app, limits)
    for tab in TABS:
        app.include_router(tab.router(served))
    app.include_router(jobs.router(served.jobs))
    app.state.served = served  # the app's state (model, caches, gate), for tests and benches
    return app


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
