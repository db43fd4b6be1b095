"""What every factor model shares: input checks, fitted state, save and load (one safetensors file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shatterbox.errors import InputError

FORMAT = "shatterbox.factors/1"
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
        from safetensors.numpy import save_file

        self._check_fitted()
        meta = {"format": FORMAT, "kind": self.kind, "params": json.dumps(self._params()), "extra": json.dumps(extra or {})}
        path = Path(path)
        tensors = {k: np.ascontiguousarray(v) for k, v in self._state().items()}
        tensors |= {EXTRA + k: np.ascontiguousarray(v) for k, v in (arrays or {}).items()}
        save_file(tensors, str(path), metadata=meta)
        return path

    @staticmethod
    def load(path: str | Path) -> "FactorModel":
        """A saved factor model (its class is read from the file)."""
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
        if meta.get("format") != FORMAT or meta.get("kind") not in MODELS:
            raise InputError(f"{str(path)!r} is not a shatterbox factors file (format {meta.get('format')!r})")
        model = MODELS[meta["kind"]](**json.loads(meta["params"]))
        model._set_state({k: v for k, v in state.items() if not k.startswith(EXTRA)})
        model.extra_ = json.loads(meta.get("extra", "{}"))
        model.arrays_ = {k.removeprefix(EXTRA): v for k, v in state.items() if k.startswith(EXTRA)}
        return model

    # subclasses
    def _params(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
