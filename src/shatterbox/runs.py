"""Resumable run folders shared by the corpus analyses: a run record (``run.json``) checked on every start and
written just before the first part, and parts written once, atomically (temporary file, fsync, rename), so that a
killed run loses at most the part it was writing and a restart with other arguments is refused.

Examples:
    >>> import tempfile, pyarrow as pa
    >>> folder = RunFolder(Path(tempfile.mkdtemp()) / "run", {"format": "demo/1", "n": 3}, what="a demo run", option="--out")
    >>> folder.done("part-0.parquet")
    False
    >>> folder.write("part-0.parquet", pa.table({"x": [1, 2]})); folder.done("part-0.parquet")
    True
    >>> RunFolder(folder.path, {"format": "demo/1", "n": 4}, what="a demo run", option="--out")
    Traceback (most recent call last):
    ...
    shatterbox.errors.InputError: '...run' holds a demo run made with other arguments: give another --out folder, or delete it to start over
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shatterbox.errors import InputError

__all__ = ["RECORD", "RunFolder", "read_record", "write_atomic"]

RECORD = "run.json"


def write_atomic(table: pa.Table, path: Path) -> None:
    """``table`` as Parquet at ``path``, all or nothing (a temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_record(folder: Path) -> dict | None:
    """The run record of ``folder``, or None when it has none (or an unreadable one)."""
    try:
        return json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None


class RunFolder:
    """A run's folder: refused at once when it holds a run made with other arguments, or files of something else."""

    def __init__(self, path: str | os.PathLike, record: dict, *, what: str, option: str) -> None:
        self.path, self.record = Path(path), json.loads(json.dumps(record))
        if (self.path / RECORD).exists():
            if read_record(self.path) != self.record:
                raise InputError(f"{str(self.path)!r} holds {what} made with other arguments: give another {option} folder, or delete it to start over")
        elif self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise InputError(f"{str(self.path)!r} exists and is not {what}: give an empty or new {option} folder")

    def done(self, name: str) -> bool:
        """Whether the part ``name`` has been written."""
        return (self.path / name).exists()

    def read(self, name: str) -> pa.Table:
        """A written part."""
        return pq.read_table(self.path / name)

    def write(self, name: str, table: pa.Table, *, first: dict[str, pa.Table] | None = None) -> None:
        """Write the part ``name`` atomically; before the first part, the tables of ``first`` and the run record."""
        if not (self.path / RECORD).exists():
            self.path.mkdir(parents=True, exist_ok=True)
            for other, content in (first or {}).items():
                write_atomic(content, self.path / other)
            tmp = self.path / f".{RECORD}.tmp"
            tmp.write_text(json.dumps(self.record, indent=1))
            os.replace(tmp, self.path / RECORD)
        write_atomic(table, self.path / name)
