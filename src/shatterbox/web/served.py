"""What every tab's router shares: the served model and classifier, the caches, the gate and the served folder.

One :class:`Served` is made per app; each tab's ``router(served)`` reads it. Work runs in worker threads,
admitted and timed out (:meth:`Served.run`); traces are captured in shared batches (:meth:`Served.traces_for`);
results computed from a file of the served folder are cached under that file's modification time
(:class:`FileCache`), so a file written again is read again.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable

import anyio
from fastapi.responses import Response

from shatterbox.errors import InputError, NotAClassifier
from shatterbox.memory import ByteLRU
from shatterbox.web.jobs import Job, Jobs
from shatterbox.web.server import Admission, Batcher, Gate, Limits, result

__all__ = ["Decoder", "FileCache", "Served", "json_bytes"]


def json_bytes(data: Any) -> Response:
    """``data`` as compact UTF-8 JSON; strict, as every answer of the app: NaN or infinity is an error, never sent.

    Examples:
        >>> json_bytes({"a": [1.5, None]}).body
        b'{"a":[1.5,null]}'
        >>> json_bytes({"a": float("nan")})
        Traceback (most recent call last):
        ...
        ValueError: Out of range float values are not JSON compliant
    """
    return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8"),
                    media_type="application/json")


class FileCache(ByteLRU):
    """A byte-bounded cache of results computed from files: the key holds each file's modification time.

    Examples:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = f.write_text("1")
        >>> c = FileCache(1 << 20)
        >>> c.get_or_make_for([f], "key", lambda: f.read_text()), c.get_or_make_for([f], "key", lambda: "again")
        ('1', '1')
    """

    def get_or_make_for(self, files: Iterable[Path], key: Hashable, make: Callable[[], Any]) -> Any:
        """The cached result for ``key`` made from ``files`` as they are now, or ``make()``'s."""
        stamp = tuple((str(p), Path(p).stat().st_mtime_ns) for p in files)
        return self.get_or_make((stamp, key), make)


class Served:
    """The state of one app: ``model`` (a LoadedModel), ``limits``, the served ``folder`` and the caches."""

    def __init__(self, model, limits: Limits, folder: str | Path | None, decoder: str | None) -> None:
        self.model, self.limits = model, limits
        self.folder = None if folder is None else Path(folder).resolve()
        self.traces = ByteLRU(limits.trace_cache_bytes, sizeof=lambda t: t.nbytes)
        self.explanations, self.zero_shots = ByteLRU(limits.explain_cache_bytes), ByteLRU(64 << 20)
        self.gate = Gate(limits.max_concurrent, limits.max_queue + limits.threads)
        self.batcher = Batcher(model, self.gate, max_bytes=limits.batch_bytes)
        self.admission, self.threads = Admission(limits.max_concurrent + limits.max_queue), anyio.CapacityLimiter(limits.threads)
        self.classifier = _classifier(model)
        self.decoders = Decoder(model, decoder)
        self._hash_lock, self._hash = threading.Lock(), None
        self.jobs = Jobs(limits.abandon_after)

    async def admitted(self, coroutine_function: Callable[[], Any]) -> Any:
        """``await coroutine_function()``, admitted (503 when the queue is full) and timed out."""
        async with self.admission():
            with anyio.fail_after(self.limits.timeout):
                return await coroutine_function()

    async def in_thread(self, work: Callable[[], Any]) -> Any:
        """``work()`` in one of the worker threads (the request gives up on it when it times out)."""
        return await anyio.to_thread.run_sync(work, limiter=self.threads, abandon_on_cancel=True)

    async def run(self, work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread, admitted and timed out."""
        return await self.admitted(lambda: self.in_thread(work))

    async def job(self, request, kind: str, work: Callable[[Job], Any]) -> Any:
        """``work(job)`` in a worker thread as a job (see :mod:`shatterbox.web.jobs`): its progress, cancel and
        abandonment come from ``job.tick``, which ``work`` passes to the library as ``progress``."""
        return await self.jobs.answer(request, kind, lambda job: self.run(lambda: work(job)))

    def check_text(self, text: str | None, what: str = "text") -> None:
        """Refuse a text longer than the limits allow, with the limit in the message."""
        if text is not None and len(text) > self.limits.max_chars:
            raise InputError(f"the {what} has {len(text):,} characters; this server accepts at most {self.limits.max_chars:,}: shorten it")

    async def traces_for(self, texts: list[str | tuple[str, str | None]]) -> list:
        """Traces of ``texts`` (or (text, pair) tuples): cached ones at once, the others queued together so they share
        batched forward passes; awaited without holding a thread."""
        keys = [t if isinstance(t, tuple) else (t, None) for t in texts]
        for text, pair in keys:
            self.check_text(text)
            self.check_text(pair, "second text")
        pending = {key: self.batcher.submit(*key) for key in dict.fromkeys(keys) if key not in self.traces}
        for key, future in pending.items():
            self.traces.put(key, await result(future))
        return [self.traces.get(key) or await result(pending.get(key) or self.batcher.submit(*key)) for key in keys]

    async def trace_for(self, text: str, pair: str | None):
        """The trace of one text (and pair)."""
        return (await self.traces_for([(text, pair)]))[0]

    def store_classifier(self):
        """The served classifier, for analyses of a store; one clear error when the served model has none."""
        if self.classifier is None:
            raise InputError("the served model has no classifier: serve the default model (the shipped sentiment classifier) or a sequence-classification model")
        return self.classifier

    def model_hash(self) -> str:
        """The served model's hash (as stores record it), computed once."""
        with self._hash_lock:
            if self._hash is None:
                from shatterbox.store import model_hash

                self._hash = model_hash(self.model)
            return self._hash


class Decoder:
    """The Generate tab's decoder: the served model when it has a language-model head, else ``name`` loaded once at
    the first request; one generation at a time (the lock)."""

    def __init__(self, served, name: str | None) -> None:
        from shatterbox.models import has_language_model_head

        self.lock = threading.Lock()
        own = has_language_model_head(served)  # a served decoder is its own; otherwise ``name`` is loaded when first asked
        self._model, self.name = (served, served.name) if own else (None, name)

    @property
    def loaded(self) -> bool:
        """Whether the decoder is in memory (the first request loads it)."""
        return self._model is not None

    def get(self, say: Callable[[str], None] | None = None):
        """The decoder, loaded at the first call (``say`` tells a job's caller that the load takes a while). Call it
        holding :attr:`lock`, so that one load serves every tab."""
        if self._model is None:
            if say is not None and self.name is not None:
                say(f"loading the decoder {self.name} (the first request only; about a minute)")
            if self.name is None:
                raise InputError("the Generate tab needs a decoder: start the app with `shatterbox serve --decoder gemma-3-270m` "
                                 "(the decoder extra) or serve a causal language model with --model")
            from shatterbox.models import load

            self._model = load(self.name)
        return self._model


def _classifier(loaded):
    """The classifier explain uses: the served model's own head, or the shipped sentiment classifier (adapters on a copy of the default's linear weights)."""
    from shatterbox.classifiers import from_model
    from shatterbox.models import DEFAULT_MODEL

    try:
        return from_model(loaded)
    except NotAClassifier:
        if loaded.name == DEFAULT_MODEL:
            from shatterbox.classifiers import sentiment

            return sentiment.on(loaded)
        return None
