"""The served folder (``shatterbox serve --stores DIR``): its stores, runs and factor files, listed and opened by name.

Requests name entries of the folder only; anything else is a 404.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from starlette.exceptions import HTTPException

from shatterbox.errors import InputError, ShatterboxError


STORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def store_dirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` that hold a store manifest and have a servable name, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and (p / "manifest.json").is_file() and STORE_NAME.match(p.name))


def list_stores(folder: Path | None) -> list[dict]:
    """Every sub-folder of ``folder`` with a manifest, summarised (a damaged one is listed with its error)."""
    from shatterbox.store import Store

    if folder is None or not folder.is_dir():
        return []
    found = []
    for sub in store_dirs(folder):
        try:
            info = Store.open(sub, partial=True).to_dict()
            info.pop("path", None)
            found.append({"name": sub.name, **info})
        except ShatterboxError as exc:
            found.append({"name": sub.name, "error": str(exc).replace(str(sub), sub.name)})
    return found


def open_store(folder: Path | None, name: str):
    """The store ``name`` of the served folder; anything else (paths, unknown names) is a 404."""
    from shatterbox.store import Store

    if folder is None:
        raise HTTPException(404, "no store folder is served: start the app with `shatterbox serve --stores DIR`")
    if not STORE_NAME.match(name) or not (folder / name / "manifest.json").is_file():
        raise HTTPException(404, f"no store named {name!r} in the served folder")
    return Store.open(folder / name, partial=True)


def runs_of(folder: Path | None, kind: str) -> Iterator[tuple[Path, dict]]:
    """(sub-folder, run record) of the served folder's runs whose record's format starts with ``kind`` (``shatterbox.runs``)."""
    from shatterbox.runs import read_record

    if folder is None or not folder.is_dir():
        return
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and STORE_NAME.match(p.name)):
        record = read_record(sub)
        if record is not None and str(record.get("format", "")).startswith(kind):
            yield sub, record


def list_runs(folder: Path | None) -> list[dict]:
    """Neuron runs of the served folder: kind, units done, the store they read."""
    from shatterbox.neurons import read_run

    found = []
    for sub, _ in runs_of(folder, "shatterbox.neurons/"):
        try:
            record, table = read_run(sub)
            found.append({"name": sub.name, "kind": record["kind"], "units": table.num_rows, "store": Path(record["store"]["path"]).name,
                          "explainer": record["explainer"]})
        except (ShatterboxError, ValueError, KeyError, OSError) as exc:
            found.append({"name": sub.name, "error": str(exc).replace(str(folder), folder.name)})
    return found


def list_datasets(folder: Path | None) -> list[dict]:
    """Corpus explanations (``shatterbox explain --corpus FILE --results DIR/NAME``) of the served folder."""
    import pyarrow.parquet as pq

    return [{"name": sub.name, "source": Path(str(record.get("source"))).name, "model": record.get("model"),
             "texts": sum(pq.ParquetFile(p).metadata.num_rows for p in sub.glob("texts-*.parquet"))}
            for sub, record in runs_of(folder, "shatterbox.explain_corpus/")]


FACTORS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.(factors|safetensors)$")


def list_factors(folder: Path | None) -> list[dict]:
    """Factor files at the top of the served folder: the store they read (matched by key), layers, levels, reports."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and FACTORS_NAME.match(p.name)):
        try:
            factors, store = open_factors(folder, path.name)
            summary = factors.to_dict()
            found.append({"name": path.name, "store": store.root.name, "model": summary["model"], "layers": summary["layers"],
                          "levels": summary["levels"], "reports": summary["reports"], "shared": summary["shared"]})
        except (ShatterboxError, HTTPException) as exc:
            found.append({"name": path.name, "error": str(getattr(exc, "detail", exc)).replace(str(folder), folder.name)})
    return found


def open_factors(folder: Path | None, name: str):
    """(Factors, Store) of a factor file in the served folder; its store must be served too (matched by key)."""
    from shatterbox.factors import Factors
    from shatterbox.store import Store

    if folder is None:
        raise HTTPException(404, "no folder is served: start the app with `shatterbox serve --stores DIR`")
    if not FACTORS_NAME.match(name) or not (folder / name).is_file():
        raise HTTPException(404, f"no factors file named {name!r} in the served folder")
    factors = Factors.load(folder / name)
    for sub in store_dirs(folder):
        try:
            store = Store.open(sub, partial=True)
        except ShatterboxError:
            continue
        if store.manifest.get("key") == factors.store.get("key"):
            return factors, store
    raise HTTPException(404, f"the store {name!r} was fitted on is not in the served folder (or was harvested again): put it there or fit again")


def factors_of(folder: Path | None, name: str, store_name: str):
    """The factors file ``name`` of the served folder, refused unless it was fitted on the store ``store_name``."""
    factors, fitted_on = open_factors(folder, name)
    if fitted_on.root.name != store_name:
        raise InputError(f"{name!r} was fitted on the store {fitted_on.root.name!r}, not {store_name!r}: choose that store or other factors")
    return factors

