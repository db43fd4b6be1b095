"""Where corpus work runs: here (``local``) or on model replicas on Ray (``ray``), with the same results.

A corpus command splits its work into independent units (a store's shards, a corpus explanation's parts); on Ray
each replica builds its state once (loads the model or classifier) and then takes units, at most
``IN_FLIGHT_PER_WORKER`` queued per replica; the driver receives each unit's result as it lands, in any order,
and keeps writing and reporting progress as it does locally. A replica killed mid-unit is restarted by Ray and
the unit is done again: whatever a unit writes must land whole or not at all (temporary file, then rename).

One :class:`Engine` says where: ``Engine()`` here, ``Engine("ray", address=..., workers=...)`` on Ray; every corpus
call takes it as its one ``engine`` parameter (the strings ``"local"`` and ``"ray"`` are accepted too) and runs its
units through :meth:`Engine.map`.

Examples:
    >>> Engine().map(len, "abc", lambda n, unit: n * unit, [1, 2], lambda unit, result: print(unit, result))
    1 3
    2 6
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from shatterbox.errors import InputError, ShatterboxError

__all__ = ["ENGINES", "Engine", "IN_FLIGHT_PER_WORKER", "as_engine", "check_engine", "connect", "load_source", "model_source", "ray_map"]

IN_FLIGHT_PER_WORKER = 2  # units queued per replica: one computing, one waiting (bounds the driver's memory)
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    """Where corpus work runs: ``kind`` "local" (this process) or "ray" (model replicas on Ray: ``workers`` of them,
    default one per CPU; ``address`` an existing cluster, default a local Ray instance).

    Examples:
        >>> Engine("ray", workers=0)
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: workers must be at least 1 (got 0)
    """

    kind: str = "local"
    address: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        check_engine(self.kind)
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be at least 1 (got {self.workers})", parameter="workers")

    @property
    def local(self) -> bool:
        """True when the work runs in this process."""
        return self.kind == "local"

    def map(self, make: Callable[[Any], Any], argument: Any, work: Callable[[Any, Any], Any], units: Sequence[Any],
            on_done: Callable[[Any, Any], None]) -> None:
        """``on_done(unit, work(state, unit))`` for every unit, where ``state = make(argument)`` is built once per
        process that works (here: once; on Ray: once per replica), results handed over as they land."""
        if self.local:
            state = make(argument)
            for unit in units:
                on_done(unit, work(state, unit))
        else:
            ray_map(make, argument, work, units, on_done, address=self.address, workers=self.workers)


def as_engine(engine: "Engine | str | None") -> Engine:
    """``engine`` as an :class:`Engine` ("local", "ray", None for local, or an Engine as it is).

    Examples:
        >>> as_engine("ray" if False else None).local
        True
    """
    if isinstance(engine, Engine):
        return engine
    return Engine(engine or "local")


def check_engine(engine: str) -> None:
    """Refuse an unknown engine, or ``ray`` without the extra installed, with the fix.

    Examples:
        >>> check_engine("spark")
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: unknown engine 'spark': use local or ray
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}: use local or ray")
    if engine == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise InputError("engine ray needs Ray: pip install -e \".[ray]\" (or pip install 'shatterbox[ray]')", parameter="engine") from None


def connect(address: str | None = None, workers: int | None = None) -> int:
    """Start a local Ray instance (or join the cluster at ``address``) unless one is running; the number of
    replicas to run: ``workers``, default one per CPU of the cluster.

    Examples:
        >>> connect(workers=0)
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: workers must be at least 1 (got 0)
    """
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1 (got {workers})", parameter="workers")
    import ray

    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     **({} if address else {"num_cpus": workers or os.cpu_count()}))
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"could not reach the Ray cluster at {address!r}: {str(exc).splitlines()[0]}; "
                             "start it with `ray start --head` or give no address (a local Ray instance)", parameter="address") from None
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(workers or cpus, cpus))


def ray_map(make: Callable[[Any], Any], argument: Any, work: Callable[[Any, Any], Any], units: Sequence[Any],
            on_done: Callable[[Any, Any], None], *, address: str | None = None, workers: int | None = None) -> None:
    """Run ``work(state, unit)`` for every unit on Ray replicas whose ``state = make(argument)`` is built once each
    (``argument`` travels by value, so a restarted replica can build it again), calling ``on_done(unit, result)``
    in the driver as each result lands.

    Example (needs Ray):
        >>> ray_map(len, "abc", lambda n, u: n * u, [1, 2], lambda u, r: print(u, r), workers=1)  # doctest: +SKIP
        1 3
        2 6
    """
    import ray

    replicas = connect(address, workers)
    threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // replicas)

    @ray.remote(num_cpus=threads, max_restarts=-1, max_task_retries=-1)
    class Replica:  # one state (a loaded model) per worker process
        def __init__(self, make, argument) -> None:
            import torch

            torch.set_num_threads(threads)
            self.state = make(argument)

        def run(self, unit):
            return work(self.state, unit)

    actors = [Replica.remote(make, argument) for _ in range(replicas)]
    queue, pending, turn = list(units), {}, 0
    try:
        while queue or pending:
            while queue and len(pending) < IN_FLIGHT_PER_WORKER * replicas:
                unit = queue.pop(0)
                pending[actors[turn % replicas].run.remote(unit)] = unit
                turn += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                on_done(pending.pop(ref), _result(ref))
    finally:
        for actor in actors:
            ray.kill(actor)


def _result(ref: Any) -> Any:
    """A unit's result; a shatterbox error raised in a replica is raised here as itself (one clear message)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(getattr(exc, "cause", None), ShatterboxError):
            raise exc.cause from None
        raise


def model_source(loaded: Any) -> Any:
    """What a replica loads a model from: its name when ``load(name)`` gives it back, else the object itself.

    Examples:
        >>> from shatterbox.models import load
        >>> model_source(load())
        'default'
    """
    from shatterbox.models import DEFAULT_MODEL

    if loaded.name == DEFAULT_MODEL or (loaded.source and os.path.isdir(loaded.source)):
        return loaded.name
    return loaded


def load_source(source: Any) -> Any:
    """A replica's model: loaded by name, or the object shipped to it.

    Examples:
        >>> load_source("default").n_layers
        6
    """
    from shatterbox.models import load

    return load(source) if isinstance(source, str) else source
