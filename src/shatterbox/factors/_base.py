"""What every factor model shares: input checks, fitted state, save and load (one safetensors file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shatterbox.errors import InputError

FORMAT = "shatterbox.factors/2"
READS = {"shatterbox.factors/1", FORMAT}
EXTRA = "extra."


def check_matrix(x: np.ndarray, verb: str, width: int | None = None) -> np.ndarray:
    """``x`` as a finite float32 [n, d] array, or one clear error (shape, width, NaN)."""
    array = np.asarray(x, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] == 0:
        raise InputError(f"{verb} needs a 2-D array of vectors [n, d] with n >= 1 (got shape {array.shape})")
    if width is not None and array.shape[1] != width:
        raise InputError(f"these vectors have {array.shape[1]} dimensions but the factors were fitted on {width}: use the store and layer they were fitted on")
    if not np.isfinite(array).all():
        raise InputError(f"{verb}: the vectors contain NaN or infinite values")
    return array


def as_tensor(x: np.ndarray) -> torch.Tensor:
    """A float32 torch view of a numpy array (no copy when already contiguous float32)."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


class FactorModel:
    """Base of :class:`SparseDictionary` and :class:`SparseAutoencoder`: fitted attributes end in ``_``;
    ``save(path)`` / ``load(path)`` round-trip hyper-parameters and weights in one safetensors file."""

    kind = "base"

    def __init__(self, *, n_factors: int, seed: int) -> None:
        if int(n_factors) < 1:
            raise InputError(f"n_factors must be at least 1 (got {n_factors})")
        self.n_factors, self.seed = int(n_factors), int(seed)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def fitted(self) -> bool:
        """Whether ``fit`` (or ``load``) has run."""
        return hasattr(self, "components_")

    def _check_fitted(self) -> None:
        if not self.fitted():
            raise InputError(f"this {type(self).__name__} is not fitted: call fit(x) or load a saved one first")

    def fit_transform(self, x: np.ndarray, **kwargs) -> np.ndarray:
        """``fit(x)`` then ``transform(x)``."""
        return self.fit(x, **kwargs).transform(x)

    def save(self, path: str | Path, *, extra: dict | None = None, arrays: dict[str, np.ndarray] | None = None) -> Path:
        """Write hyper-parameters, weights, ``extra`` (JSON-ready) and ``arrays`` to ``path`` (.safetensors)."""
        return save_models(path, {"": self}, extra=extra, arrays=arrays)

    @staticmethod
    def load(path: str | Path) -> "FactorModel":
        """A saved factor model (its class is read from the file)."""
        models, extra, arrays = load_models(path)
        if len(models) != 1:
            raise InputError(f"{str(path)!r} holds one factor model per layer: load it with Factors.load")
        model = next(iter(models.values()))
        model.extra_, model.arrays_ = extra, arrays
        return model

    # subclasses
    def _params(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def save_models(path: str | Path, models: dict[str, FactorModel], *, extra: dict | None = None,
                arrays: dict[str, np.ndarray] | None = None) -> Path:
    """One safetensors file holding several fitted models (their weights under ``name.``), ``extra``
    (JSON-ready) and ``arrays``.

    Examples:
        >>> import tempfile
        >>> from shatterbox.factors import SparseDictionary
        >>> x = np.abs(np.random.default_rng(0).normal(size=(64, 4))).astype(np.float32)
        >>> m = SparseDictionary(n_factors=4, alpha=0.1, n_epochs=1).fit(x)
        >>> path = save_models(Path(tempfile.mkdtemp()) / "f.safetensors", {"1": m, "2": m})
        >>> sorted(load_models(path)[0])
        ['1', '2']
    """
    from safetensors.numpy import save_file

    for model in models.values():
        model._check_fitted()
    meta = {"format": FORMAT, "models": json.dumps({name: {"kind": m.kind, "params": m._params()} for name, m in models.items()}),
            "extra": json.dumps(extra or {})}
    tensors = {_prefix(name) + k: np.ascontiguousarray(v) for name, m in models.items() for k, v in m._state().items()}
    tensors |= {EXTRA + k: np.ascontiguousarray(v) for k, v in (arrays or {}).items()}
    path = Path(path)
    save_file(tensors, str(path), metadata=meta)
    return path


def load_models(path: str | Path) -> tuple[dict[str, FactorModel], dict, dict[str, np.ndarray]]:
    """The models, ``extra`` and ``arrays`` written by :func:`save_models` (or by ``FactorModel.save``)."""
    from safetensors import safe_open

    from shatterbox.factors import MODELS

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no factors file at {str(path)!r}: fit one with `shatterbox factors fit STORE --out {path}`")
    try:
        with safe_open(str(path), "np") as handle:
            meta = handle.metadata() or {}
            state = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise InputError(f"{str(path)!r} is not a shatterbox factors file ({exc})") from None
    if meta.get("format") not in READS:
        raise InputError(f"{str(path)!r} is not a shatterbox factors file (format {meta.get('format')!r})")
    specs = json.loads(meta["models"]) if "models" in meta else {"": {"kind": meta.get("kind"), "params": json.loads(meta.get("params", "{}"))}}
    models = {}
    for name, spec in specs.items():
        if spec["kind"] not in MODELS:
            raise InputError(f"{str(path)!r} holds an unknown factor model kind {spec['kind']!r}")
        model = MODELS[spec["kind"]](**spec["params"])
        prefix = _prefix(name)
        model._set_state({k[len(prefix):]: v for k, v in state.items() if not k.startswith(EXTRA) and k.startswith(prefix)
                          and (prefix or "." not in k)})
        models[name] = model
    arrays = {k.removeprefix(EXTRA): v for k, v in state.items() if k.startswith(EXTRA)}
    return models, json.loads(meta.get("extra", "{}")), arrays


def _prefix(name: str) -> str:
    """Where a model's weights live in the file: ``name.`` (nothing for a lone model)."""
    return f"{name}." if name else ""
