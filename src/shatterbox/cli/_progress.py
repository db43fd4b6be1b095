"""One progress display for every long command: a bar on stderr when stderr is a terminal, else plain lines on
stderr (one every :data:`PLAIN_EVERY` seconds, and a last one when there were any), so a piped or logged run is
never silent for long and a quick one stays quiet.

Examples:
    >>> import io
    >>> err = io.StringIO()
    >>> with progress_of("probe pos", "fits", stream=err, every=0) as tick:
    ...     tick(1, 4); tick(4, 4)
    >>> err.getvalue().splitlines()[-1].startswith("probe pos: 4/4 fits done in")
    True
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

PLAIN_EVERY = 10.0  # seconds between two plain progress lines
PROGRESS_HELP = (f"Progress goes to stderr: a bar on a terminal; piped or redirected, a plain line every {PLAIN_EVERY:.0f} s "
                 "(done/total, elapsed, time left).")

Tick = Callable[..., None]  # tick(done, total=None, note="")


class _Plain:
    """Plain progress lines: what, done/total unit, elapsed, an estimate of the time left."""

    def __init__(self, what: str, unit: str, stream: TextIO, every: float) -> None:
        self.what, self.unit, self.stream, self.every = what, unit, stream, every
        self.start = self.last = time.monotonic()
        self.done, self.total, self.note = 0, None, ""

    def __call__(self, done: int, total: int | None = None, note: str = "") -> None:
        self.done, self.total, self.note = done, total if total is not None else self.total, note or self.note
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.write(now)

    def line(self, now: float, finished: bool = False) -> str:
        elapsed = now - self.start
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total else "")
        if finished:
            return f"{self.what}: {count} {self.unit} done in {elapsed:,.1f} s"
        left = f", about {elapsed * (self.total - self.done) / self.done:,.0f} s left" if self.total and self.done else ""
        return f"{self.what}: {count} {self.unit}{' · ' + self.note if self.note else ''} · {elapsed:,.0f} s elapsed{left}"

    def write(self, now: float, finished: bool = False) -> None:
        print(self.line(now, finished), file=self.stream, flush=True)


@contextmanager
def progress_of(what: str, unit: str, total: int | None = None, *, stream: TextIO | None = None,
                every: float | None = None) -> Iterator[Tick]:
    """A callback ``tick(done, total=None, note="")`` for a library's ``progress``: a rich bar on a terminal, plain
    lines on ``stream`` (stderr) otherwise."""
    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        columns = (TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn(unit + "{task.fields[note]}"),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(file=stream), transient=True) as bar:
            task = bar.add_task(what, total=total, note="")

            def tick(done: int, total: int | None = None, note: str = "") -> None:
                bar.update(task, completed=done, note=f" · {note}" if note else "", **({"total": total} if total is not None else {}))

            yield tick
        return
    plain = _Plain(what, unit, stream, PLAIN_EVERY if every is None else every)
    plain.total = total
    yield plain
    if plain.last > plain.start:  # lines were written: say that it finished (a quick run stays quiet)
        plain.write(time.monotonic(), finished=True)
