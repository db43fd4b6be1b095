"""Harvest on Ray: model replicas as Ray actors compute and write whole shards; the driver only schedules.

Each actor loads the model once and computes a shard exactly as a local harvest does (the same batching,
the same code), then writes it to the store folder atomically (temporary file, then rename), so the store
must be on storage every worker sees (one machine, a mounted volume). A killed worker is restarted by Ray
and its shard is computed again; a shard exists whole or not at all, so nothing is lost or written twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from shatterbox.errors import InputError

if TYPE_CHECKING:
    from shatterbox.models import LoadedModel

IN_FLIGHT_PER_WORKER = 2  # shards queued per replica: one computing, one waiting (bounds driver memory)
ENGINES = ("local", "ray")


def check_engine(engine: str) -> None:
    """Refuse an unknown engine, or ``ray`` without the extra installed, with the fix.

    Example:
        >>> check_engine("local")
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
            raise InputError("--engine ray needs Ray: pip install -e \".[ray]\" (or pip install 'shatterbox[ray]')") from None


def _connect(address: str | None, workers: int | None) -> int:
    """Start or join Ray; the number of replicas to run (``workers``, default: the cluster's CPUs)."""
    import ray

    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     **({} if address else {"num_cpus": workers or os.cpu_count()}))
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"could not reach the Ray cluster at {address!r}: {str(exc).splitlines()[0]}; start it with `ray start --head` or omit --ray-address") from None
    cpus = int(ray.cluster_resources().get("CPU", 1))
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1 (got {workers})")
    return max(1, min(workers or cpus, cpus))


def _model_source(loaded: "LoadedModel"):
    """What an actor loads the model from: its name when ``load(name)`` gives it back, else the object itself."""
    from shatterbox.models import DEFAULT_MODEL

    if loaded.name == DEFAULT_MODEL or (loaded.source and os.path.isdir(loaded.source)):
        return loaded.name
    return loaded


def run_on_ray(root: Path, missing: list[tuple[int, int, int]], loaded: "LoadedModel", corpus, manifest: dict, columns, batch_tokens: int,
               shard_fn: Callable, write_fn: Callable, on_done: Callable[[dict], None], *, address: str | None = None,
               workers: int | None = None) -> None:
    """Compute and write the shards ``missing`` ((index, first row, stop row) each) on Ray replicas, calling
    ``on_done(meta)`` in the driver as each shard lands. At most ``IN_FLIGHT_PER_WORKER`` shards wait per replica."""
    import ray

    replicas = _connect(address, workers)
    threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // replicas)
    source = _model_source(loaded)  # by value: a restarted replica needs its arguments again

    @ray.remote(num_cpus=threads, max_restarts=-1, max_task_retries=-1)
    class Replica:  # one model per worker process
        def __init__(self, source, corpus) -> None:
            import torch

            from shatterbox.models import load

            torch.set_num_threads(threads)
            self.loaded = load(source) if isinstance(source, str) else source
            self.corpus = corpus

        def shard(self, index: int, first: int, stop: int) -> dict:
            made = shard_fn(index, slice(first, stop), manifest, self.loaded, self.corpus, columns, batch_tokens)
            return write_fn(root, index, made)

        def pid(self) -> int:
            return os.getpid()

    actors = [Replica.remote(source, corpus) for _ in range(replicas)]
    queue, pending, turn = list(missing), {}, 0
    try:
        while queue or pending:
            while queue and len(pending) < IN_FLIGHT_PER_WORKER * replicas:
                index, first, stop = queue.pop(0)
                pending[actors[turn % replicas].shard.remote(index, first, stop)] = index
                turn += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                on_done(ray.get(ref))
    finally:
        for actor in actors:
            ray.kill(actor)
