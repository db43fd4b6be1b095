"""Long requests as jobs: progress from the library's own callbacks, cancel, and work that stops when its caller
goes away.

Every long endpoint runs its work as a :class:`Job` whose :meth:`Job.tick` is the library's ``progress``
callback. A caller that sends ``X-Shatterbox-Job: start`` (the page) gets ``202 {"job": id, ...}`` at once and
polls ``GET /api/jobs/{id}``: ``202`` with the progress (elapsed, done/total, an estimate, the stage) while it runs,
then the endpoint's own answer, once; ``DELETE /api/jobs/{id}`` cancels. A job nobody has polled for
``Limits.abandon_after`` seconds was abandoned (the tab was closed) and stops at its next tick. Any other caller
waits for the answer as from a plain request, and the work stops when that caller disconnects.

Examples:
    >>> job = Job("probe", detached=False)
    >>> job.tick(3, 12); job.status()["done"], job.status()["total"]
    (3, 12)
    >>> job.cancel(); job.tick(4, 12)
    Traceback (most recent call last):
    ...
    shatterbox.web.jobs.Cancelled: the probe was cancelled
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from shatterbox.errors import ShatterboxError

__all__ = ["Cancelled", "Job", "Jobs", "JOB_HEADER"]

JOB_HEADER = "x-shatterbox-job"  # "start": answer 202 with the job's id instead of waiting
POLL = 0.25  # seconds between two checks that a waiting caller is still connected


class Cancelled(ShatterboxError):
    """The job was cancelled by its caller, or abandoned."""


class Job:
    """One long request: its progress (``done`` of ``total``, a ``stage``), and a flag that stops it."""

    def __init__(self, kind: str, *, detached: bool, abandon_after: float = 30.0) -> None:
        self.id, self.kind, self.detached, self.abandon_after = secrets.token_hex(8), kind, detached, abandon_after
        self.started = self.seen = time.monotonic()
        self.done, self.total, self.stage, self.reason = 0, None, "", ""
        self.ticks = 0  # how often the library reported progress (tests measure that cancelled work stopped)
        self._stop = threading.Event()
        self.task: asyncio.Future | None = None

    def tick(self, done: int, total: int | None = None, note: str = "") -> None:
        """The library's ``progress(done, total)`` callback: records it, and raises :class:`Cancelled` once the job
        was cancelled or abandoned, which stops the library's loop."""
        self.cancel_if_abandoned()
        if self._stop.is_set():
            raise Cancelled(f"the {self.kind} was {self.reason or 'cancelled'}")
        self.ticks += 1
        self.done, self.total = int(done), self.total if total is None else int(total)
        self.stage = note or self.stage

    def say(self, stage: str) -> None:
        """What the job does now, in words (e.g. "loading the decoder"); also a point where a cancel stops it."""
        self.stage = stage
        self.tick(self.done, self.total)

    def cancel_if_abandoned(self) -> None:
        """Cancel a detached job nobody has polled for ``abandon_after`` seconds (its page was closed)."""
        if self.detached and not self.cancelled and time.monotonic() - self.seen > self.abandon_after:
            self.cancel(f"abandoned: nobody asked for its progress for {self.abandon_after:.0f} s")

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def status(self) -> dict:
        """Progress as JSON: state, elapsed seconds, done/total, an estimate of the seconds left (or null), the stage."""
        elapsed = time.monotonic() - self.started
        left = elapsed * (self.total - self.done) / self.done if self.total and self.done else None
        return {"job": self.id, "kind": self.kind, "state": "cancelling" if self.cancelled else "running",
                "elapsed": round(elapsed, 2), "done": self.done, "total": self.total,
                "estimate": None if left is None else round(left, 1), "stage": self.stage}


class Jobs:
    """The running and finished-but-unfetched jobs of one app; finished ones nobody fetches are dropped after
    ``abandon_after`` seconds, so the table stays small."""

    def __init__(self, abandon_after: float) -> None:
        self.abandon_after, self.table = abandon_after, {}

    def start(self, kind: str, detached: bool, run: Callable[[Job], Any]) -> Job:
        """Start ``run(job)`` (a coroutine function) as a task on the running loop."""
        self.sweep()
        job = Job(kind, detached=detached, abandon_after=self.abandon_after)
        job.task = asyncio.ensure_future(run(job))
        # a request that timed out leaves its worker thread running: stop it at its next tick
        job.task.add_done_callback(lambda _t: job.cancel("stopped: its request ended") if not job.cancelled else None)
        self.table[job.id] = job
        return job

    def sweep(self) -> None:
        """Cancel detached jobs nobody polls any more, and forget finished ones nobody fetched."""
        now = time.monotonic()
        for job in list(self.table.values()):
            if job.task is not None and job.task.done() and now - job.seen > self.abandon_after:
                self.table.pop(job.id, None)
                job.task.exception() if not job.task.cancelled() else None  # retrieved: no "never retrieved" warning
            else:
                job.cancel_if_abandoned()

    def get(self, job_id: str) -> Job:
        job = self.table.get(job_id)
        if job is None:
            raise ShatterboxError(f"no job {job_id!r}: it finished and was fetched, or it was never started")
        job.seen = time.monotonic()
        return job

    async def answer(self, request: Request, kind: str, run: Callable[[Job], Any]) -> Any:
        """Run ``run(job)`` as a job: 202 with its id for a caller that asked for a job, else its answer, cancelled
        when the caller disconnects first."""
        detached = request.headers.get(JOB_HEADER, "") == "start"
        job = self.start(kind, detached, run)
        if detached:
            return JSONResponse(job.status(), 202)
        try:
            while not job.task.done():
                await asyncio.wait({job.task}, timeout=POLL)
                if not job.task.done() and await request.is_disconnected():
                    job.cancel("abandoned: the caller disconnected")
            return job.task.result()
        finally:
            if not job.task.done():
                job.cancel("abandoned: the request ended")
            self.table.pop(job.id, None)


def router(jobs: Jobs) -> APIRouter:
    """``GET /api/jobs/{id}`` (progress, then the answer) and ``DELETE /api/jobs/{id}`` (cancel)."""
    api = APIRouter()

    @api.get("/api/jobs/{job_id}", summary="A job's progress (202) while it runs, then its answer (once)")
    async def job_status(job_id: str) -> Any:
        job = jobs.get(job_id)
        if not job.task.done():
            return JSONResponse(job.status(), 202)
        jobs.table.pop(job_id, None)
        return job.task.result()  # the endpoint's answer, or its error through the app's error handlers

    @api.delete("/api/jobs/{job_id}", summary="Cancel a job: its work stops at the library's next progress report")
    async def cancel_job(job_id: str) -> dict:
        job = jobs.get(job_id)
        job.cancel()
        return job.status()

    return api
