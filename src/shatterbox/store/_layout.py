"""What a store directory holds and how it is written: manifest, shards, atomic replacement."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shatterbox.errors import StoreCorrupt, StoreError

FORMAT = "shatterbox.store/2"
MANIFEST = "manifest.json"
SENTENCES = Path("corpus") / "sentences.parquet"
SHARD = "part-{:05d}.parquet"
SHARD_GLOB = "part-*.parquet"
_SHARD_RE = re.compile(r"^part-(\d{5})\.parquet$")
META_KEY = b"shatterbox"
META_COLUMNS = ("sentence_id", "position", "token", "token_id", "word_index", "word", "special", "char_start", "char_end")
DTYPES = {"float32": np.float32, "float16": np.float16}
WHAT = ("hidden", "mlp", "attention")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a killed writer) sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    atomic_write_bytes(root / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))


def read_manifest(root: Path) -> dict[str, Any]:
    """The store's manifest; a clear error when ``root`` is not a store."""
    path = root / MANIFEST
    if not path.is_file():
        raise StoreError(f"{str(root)!r} is not a shatterbox store (no {MANIFEST}): make one with `shatterbox harvest CORPUS --out {root}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreCorrupt(f"the manifest of {str(root)!r} is unreadable ({exc}): re-run the harvest with overwrite=True") from exc
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{str(root)!r} was written by an incompatible shatterbox version ({manifest.get('format')!r}): harvest it again")
    return manifest


def settings_key(settings: dict[str, Any]) -> str:
    """A short hash of everything that decides a store's content (model, corpus, columns, dtype, shards)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def shard_path(root: Path, index: int) -> Path:
    """Path of shard ``index``."""
    return root / SHARD.format(index)


def shard_files(root: Path) -> dict[int, Path]:
    """Completed shard files by index (temporary files of an interrupted write are not listed)."""
    found = {}
    for path in root.glob(SHARD_GLOB):
        match = _SHARD_RE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def shard_meta(path: Path, key: str, repair_hint: str) -> dict[str, Any]:
    """A shard's own metadata, read from its footer; damaged or foreign shards are refused."""
    try:
        raw = pq.read_schema(path).metadata or {}
        meta = json.loads(raw[META_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise StoreCorrupt(f"shard {path.name} of {str(path.parent)!r} is truncated or damaged ({_short(exc)}): {repair_hint}") from exc
    if meta.get("key") != key:
        raise StoreCorrupt(f"shard {path.name} of {str(path.parent)!r} belongs to another harvest (settings differ): {repair_hint}")
    return meta


def verify_shard(path: Path) -> str | None:
    """Read every page of a shard with checksums; the problem found, or None when it is whole."""
    try:
        handle = pq.ParquetFile(path, page_checksum_verification=True)
        rows = 0
        for group in range(handle.num_row_groups):
            rows += handle.read_row_group(group).num_rows
        if rows != handle.metadata.num_rows:
            return f"{rows} rows read, {handle.metadata.num_rows} expected"
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        return _short(exc)
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def activation_field(name: str, width: int, dtype: str) -> pa.Field:
    """A fixed-size list column of ``width`` values of ``dtype`` (one row per token)."""
    return pa.field(name, pa.list_(pa.from_numpy_dtype(DTYPES[dtype]), width))


def meta_schema() -> list[pa.Field]:
    """The per-token columns every shard starts with."""
    return [
        pa.field("sentence_id", pa.int64()),
        pa.field("position", pa.int32()),
        pa.field("token", pa.string()),
        pa.field("token_id", pa.int32()),
        pa.field("word_index", pa.int32()),
        pa.field("word", pa.string()),
        pa.field("special", pa.bool_()),
        pa.field("char_start", pa.int32()),
        pa.field("char_end", pa.int32()),
    ]


def fixed_list(values: np.ndarray, field: pa.Field) -> pa.Array:
    """[rows, width] numpy -> a fixed-size list array of ``field``'s type (no copy when already contiguous)."""
    flat = np.ascontiguousarray(values, dtype=field.type.value_type.to_pandas_dtype()).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), field.type.list_size)
