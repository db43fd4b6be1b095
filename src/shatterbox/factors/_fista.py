"""Non-negative sparse coding by batched monotone FISTA, and a dictionary learned online from its codes."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.errors import InputError
from shatterbox.factors._base import FactorModel, as_tensor, check_matrix

Progress = Callable[[int, int], None]  # (steps done, steps in all)
TOL = 1e-3  # FISTA stops when ten iterations lower the objective by less than this fraction


def lipschitz(gram: torch.Tensor) -> float:
    """Largest eigenvalue of the Gram matrix ``D Dᵀ``: the step size of FISTA is its inverse."""
    return float(torch.linalg.eigvalsh(gram.double())[-1].clamp_min(1e-12))


def fista_codes(
    x: torch.Tensor, dictionary: torch.Tensor, alpha: float, *, n_iter: int = 100, init: torch.Tensor | None = None,
    history: list[float] | None = None, tol: float = 0.0,
) -> torch.Tensor:
    """Non-negative codes ``A`` [n, K] minimising ``½‖X − A D‖² + α Σ A`` for rows of ``x`` [n, d].

    Monotone FISTA (Beck & Teboulle 2009, MFISTA): an accelerated proximal-gradient step
    ``Z = max(0, Y − (Y G − X Dᵀ)/L − α/L)`` with ``G = D Dᵀ`` and ``L`` its largest eigenvalue,
    then each row keeps ``Z`` only if it lowers that row's objective, so the objective never
    rises. ``history`` (a list) receives the total objective after every iteration. With ``tol``,
    iterations stop once ten of them lower the objective by less than that fraction.

    Examples:
        >>> d = torch.eye(3)
        >>> fista_codes(torch.tensor([[2.0, -1.0, 0.5]]), d, 0.5).round(decimals=3)
        tensor([[1.5000, 0.0000, 0.0000]])
    """
    gram = dictionary @ dictionary.T
    step = 1.0 / lipschitz(gram)
    xd = x @ dictionary.T  # [n, K]
    sq = (x * x).sum(1)
    a = torch.zeros_like(xd) if init is None else init.clone()
    a_g = sparse_mm(a, gram)
    f_a = _objective(a, a_g, xd, sq, alpha)
    y, y_g, t = a, a_g, 1.0
    checkpoint = float(f_a.sum())
    for step_no in range(1, n_iter + 1):
        z = torch.clamp_min(y - step * (y_g - xd) - step * alpha, 0.0)
        z_g = sparse_mm(z, gram)  # the one product per iteration: every other one is a mix of these
        f_z = _objective(z, z_g, xd, sq, alpha)
        better = (f_z <= f_a).unsqueeze(1)
        a_new, a_g_new = torch.where(better, z, a), torch.where(better, z_g, a_g)
        t_new = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        c1, c2 = t / t_new, (t - 1.0) / t_new
        y = a_new + c1 * (z - a_new) + c2 * (a_new - a)
        y_g = a_g_new + c1 * (z_g - a_g_new) + c2 * (a_g_new - a_g)
        a, a_g, f_a, t = a_new, a_g_new, torch.minimum(f_a, f_z), t_new
        if history is not None:
            history.append(float(f_a.sum()))
        if tol > 0 and step_no % 10 == 0:
            now = float(f_a.sum())
            if checkpoint - now <= tol * abs(now):
                break
            checkpoint = now
    return a


def sparse_mm(codes: torch.Tensor, dense: torch.Tensor, density: float = 0.15) -> torch.Tensor:
    """``codes @ dense``, through a sparse product when fewer than ``density`` of the codes are non-zero.

    Examples:
        >>> c = torch.tensor([[0.0, 2.0], [0.0, 0.0]])
        >>> sparse_mm(c, torch.eye(2), density=0.9)
        tensor([[0., 2.],
                [0., 0.]])
    """
    if codes.numel() and float((codes != 0).sum()) < density * codes.numel():
        return torch.sparse.mm(codes.to_sparse(), dense)
    return codes @ dense


def _objective(a: torch.Tensor, a_g: torch.Tensor, xd: torch.Tensor, sq: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-row ``½‖x − a D‖² + α Σ a`` from ``a G`` (no [n, d] reconstruction needed)."""
    return 0.5 * (sq - 2.0 * (a * xd).sum(1) + (a_g * a).sum(1)) + alpha * a.sum(1)


class SparseDictionary(FactorModel):
    """Transformer factors by non-negative sparse coding (Yun et al. 2021), fitted online on CPU.

    Every (centred, scaled) vector ``x`` is coded as a sparse non-negative mix of ``n_factors``
    unit-norm atoms, the rows of ``components_`` ``D`` [K, d]:

        minimise over A ≥ 0 and ‖D_k‖ = 1:   ½ ‖X − A D‖²_F + α ‖A‖₁

    Codes come from :func:`fista_codes` (at most ``fista_iter`` monotone FISTA iterations, step 1/L,
    stopped once ten iterations gain less than ``TOL``); the dictionary from the running statistics of the codes (Mairal et al. 2010):
    ``S = Σ aᵀa``, ``B = Σ aᵀx`` with forgetting, then ``dict_steps`` sweeps of block coordinate
    descent on ``½ tr(Dᵀ S D) − tr(Dᵀ B)``, each atom renormalised to unit length. Atoms that
    stay silent for an epoch are moved to the worst-reconstructed inputs. Deterministic for a seed.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = np.abs(rng.normal(size=(256, 8))).astype(np.float32)
        >>> sd = SparseDictionary(n_factors=6, alpha=0.1, n_epochs=2, seed=0).fit(x)
        >>> sd.components_.shape, bool((sd.transform(x) >= 0).all())
        ((6, 8), True)
    """

    kind = "fista"

    def __init__(self, *, n_factors: int = 1024, alpha: float = 0.25, n_epochs: int = 4, batch_size: int = 512,
                 fista_iter: int = 60, dict_steps: int = 1, forget: float = 0.95, seed: int = 0) -> None:
        super().__init__(n_factors=n_factors, seed=seed)
        self.alpha, self.n_epochs, self.batch_size = float(alpha), int(n_epochs), int(batch_size)
        self.fista_iter, self.dict_steps, self.forget = int(fista_iter), int(dict_steps), float(forget)
        self._check()

    def _check(self) -> None:
        if self.alpha < 0 or self.n_epochs < 1 or self.batch_size < 1 or self.fista_iter < 1 or not 0 < self.forget <= 1:
            raise InputError("alpha must be >= 0; n_epochs, batch_size, fista_iter >= 1; forget in (0, 1]")

    def fit(self, x: np.ndarray, *, progress: Progress | None = None, on_epoch: Callable[[int], None] | None = None) -> "SparseDictionary":
        """Learn ``components_`` [K, d] from rows of ``x`` [n, d]; returns self.

        ``on_epoch(epoch)`` runs after every epoch with ``components_`` set to the dictionary so far
        (its time is not counted in ``fit_seconds_``).
        """
        data = as_tensor(check_matrix(x, "fit"))
        gen = torch.Generator().manual_seed(self.seed)
        started = time.perf_counter()
        d = self._init_atoms(data, gen)
        s_stat = torch.zeros(self.n_factors, self.n_factors)
        b_stat = torch.zeros(self.n_factors, data.shape[1])
        steps = self.n_epochs * -(-len(data) // self.batch_size)
        done, self.loss_curve_, paused = 0, [], 0.0
        self.n_features_in_ = int(data.shape[1])
        for epoch in range(self.n_epochs):
            used = torch.zeros(self.n_factors, dtype=torch.bool)
            order = torch.randperm(len(data), generator=gen)
            worst_err, worst_rows = [], []
            for part in chunks(len(data), self.batch_size):
                rows = order[part]
                xb = data[rows]
                a = fista_codes(xb, d, self.alpha, n_iter=self.fista_iter, tol=TOL)
                used |= (a > 0).any(0)
                s_stat = self.forget * s_stat + a.T @ a / len(xb)
                b_stat = self.forget * b_stat + a.T @ xb / len(xb)
                d = _dictionary_step(d, s_stat, b_stat, self.dict_steps)
                err = ((xb - a @ d) ** 2).sum(1)
                self.loss_curve_.append(float((0.5 * err + self.alpha * a.sum(1)).mean()))
                keep = err.topk(min(len(err), 8)).indices
                worst_err.append(err[keep])
                worst_rows.append(rows[keep])
                done += 1
                if progress:
                    progress(done, steps)
            d = _resample(d, ~used, data, torch.cat(worst_err), torch.cat(worst_rows))
            if on_epoch is not None:
                pause = time.perf_counter()
                self.components_ = d.numpy()
                on_epoch(epoch)
                paused += time.perf_counter() - pause
        self.components_ = d.numpy()
        self.fit_seconds_ = time.perf_counter() - started - paused
        return self

    def _init_atoms(self, data: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Atoms start at randomly chosen inputs (unit norm)."""
        rows = torch.randint(len(data), (self.n_factors,), generator=gen)
        d = data[rows] + 1e-3 * torch.randn(self.n_factors, data.shape[1], generator=gen)
        return _unit_rows(d)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Codes [n, K] (non-negative, sparse) of rows of ``x``, in batches."""
        d = self._components()
        data = as_tensor(check_matrix(x, "transform", self.n_features_in_))
        out = np.empty((len(data), self.n_factors), np.float32)
        with torch.inference_mode():
            for part in chunks(len(data), self.batch_size):
                out[part] = fista_codes(data[part], d, self.alpha, n_iter=self.fista_iter * 4, tol=TOL / 10).numpy()
        return out

    def inverse_transform(self, codes: np.ndarray) -> np.ndarray:
        """Reconstructions ``codes @ components_`` [n, d]."""
        return np.asarray(codes, np.float32) @ self.components_

    def _params(self) -> dict:
        return {"n_factors": self.n_factors, "alpha": self.alpha, "n_epochs": self.n_epochs, "batch_size": self.batch_size,
                "fista_iter": self.fista_iter, "dict_steps": self.dict_steps, "forget": self.forget, "seed": self.seed}

    def _state(self) -> dict[str, np.ndarray]:
        return {"components": self.components_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.components_ = state["components"]
        self.n_features_in_ = int(self.components_.shape[1])

    def _components(self) -> torch.Tensor:
        self._check_fitted()
        return torch.from_numpy(np.ascontiguousarray(self.components_, np.float32))


def _unit_rows(d: torch.Tensor) -> torch.Tensor:
    return d / d.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _dictionary_step(d: torch.Tensor, s_stat: torch.Tensor, b_stat: torch.Tensor, steps: int) -> torch.Tensor:
    """Block coordinate descent on ``½ tr(Dᵀ S D) − tr(Dᵀ B)`` (Mairal et al. 2010, algorithm 2): each atom in
    turn moves to its exact minimiser given the others, then back to unit norm; ``steps`` sweeps.
    Atoms that have never fired (``S_jj = 0``) are left for resampling."""
    d = d.clone()
    diag = torch.diagonal(s_stat).clone()
    for _ in range(steps):
        for j in torch.nonzero(diag > 1e-12).flatten().tolist():
            u = d[j] + (b_stat[j] - s_stat[j] @ d) / diag[j]
            d[j] = u / u.norm().clamp_min(1e-8)
    return d


def _resample(d: torch.Tensor, dead: torch.Tensor, data: torch.Tensor, err: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Silent atoms move to the inputs reconstructed worst (largest error first)."""
    n_dead = int(dead.sum())
    if n_dead == 0 or len(rows) == 0:
        return d
    order = err.argsort(descending=True)
    picks = rows[order[torch.arange(n_dead) % len(order)]]
    d = d.clone()
    d[dead] = _unit_rows(data[picks])
    return d
