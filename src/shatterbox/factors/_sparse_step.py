"""One training step of a TopK-style SAE with hand-written gradients that touch only the active latents.

Autograd treats the code ``z`` [batch, width] as dense: the decoder product, the decoder's weight gradient and the
encoder's weight gradient are each a batch × width × d product, although only ``k`` of every row's ``width`` entries are
non-zero. Here the code is a CSR matrix of its ``batch · k`` entries, so those three products cost ``batch · k · d``;
only the encoder's forward product (which must score every latent) stays dense. On this CPU a step at 4096 latents ×
640 dimensions × 1024 vectors takes about a quarter of autograd's time (``tests/factors/test_sparse_step.py`` holds the
gradients to autograd's; ``bench/sae.py`` times it against SAELens and sparsify).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

Params = dict[str, torch.Tensor]


def csr(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A CSR matrix of entries given in row order (``rows`` non-decreasing)."""
    counts = torch.bincount(rows, minlength=shape[0])
    crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    with warnings.catch_warnings():  # torch calls CSR support beta; the tests hold every product to the dense one
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, cols, values, size=shape, check_invariants=False)


class Code:
    """A batch's active entries ``(rows, cols, values)`` in row order, with the products a step needs.

    Examples:
        >>> code = Code(torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([1.5, 2.0]), batch=2, width=3)
        >>> code.decode(torch.eye(3)).tolist()
        [[0.0, 0.0, 1.5], [2.0, 0.0, 0.0]]
    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, *, batch: int, width: int,
                 order: torch.Tensor | None = None) -> None:
        self.rows, self.cols, self.values, self.batch, self.width = rows, cols, values, batch, width
        self._order = torch.argsort(cols, stable=True) if order is None else order  # the transpose's entries, column by column

    def with_values(self, values: torch.Tensor) -> "Code":
        """The same pattern with other values."""
        return Code(self.rows, self.cols, values, batch=self.batch, width=self.width, order=self._order)

    def decode(self, w_dec: torch.Tensor) -> torch.Tensor:
        """``z @ W_dec`` [batch, d]."""
        return self._matrix(self.values) @ w_dec

    def entry_grad(self, grad_out: torch.Tensor, w_dec: torch.Tensor) -> torch.Tensor:
        """The gradient of each entry given the gradient of ``z @ W_dec``: ``⟨grad_out[row], W_dec[col]⟩``."""
        pattern = self._matrix(torch.zeros_like(self.values))
        return torch.sparse.sampled_addmm(pattern, grad_out, w_dec.T, beta=0.0).values()

    def transpose_times(self, weights: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """``Zᵀ @ dense`` [width, d] for the code whose entries are ``weights`` (same pattern)."""
        o = self._order
        return csr(self.cols[o], self.rows[o], weights[o], (self.width, self.batch)) @ dense

    def fired(self) -> torch.Tensor:
        """[width] bool: latents with a positive entry in this batch."""
        return torch.bincount(self.cols[self.values > 0], minlength=self.width) > 0

    def _matrix(self, values: torch.Tensor) -> torch.Tensor:
        return csr(self.rows, self.cols, values, (self.batch, self.width))

    def subset(self, keep: torch.Tensor) -> "Code":
        """The entries where ``keep`` holds (row order is kept)."""
        return Code(self.rows[keep], self.cols[keep], self.values[keep], batch=self.batch, width=self.width)


def topk_code(pre: torch.Tensor, k: int) -> Code:
    """Each row's ``k`` largest pre-activations, ReLU'd (values in float32 whatever ``pre``'s dtype)."""
    top = pre.topk(k, dim=1)
    rows = torch.arange(len(pre)).repeat_interleave(k)
    return Code(rows, top.indices.reshape(-1), torch.relu(top.values).reshape(-1).float(), batch=len(pre), width=pre.shape[1])


def batch_topk_code(pre: torch.Tensor, k: int, *, spare: int = 4) -> Code:
    """The ``k × batch`` largest ReLU'd pre-activations of the whole batch.

    Exact without sorting the whole batch: the cut among each row's ``spare · k`` largest is at most the true cut, so
    the entries above it hold every chosen one; the largest of those are taken.
    """
    n, width = pre.shape
    total = min(k * n, pre.numel())
    candidates = pre.topk(min(width, spare * k), dim=1).values.reshape(-1)
    cut = candidates.topk(min(total, candidates.numel())).values[-1]
    if float(cut) <= 0:  # fewer positive entries than k × batch: every ReLU'd entry counts
        return _batch_topk_from(torch.relu(pre).reshape(-1), torch.arange(pre.numel()), total, width, n)
    flat = pre.reshape(-1)
    index = torch.nonzero(flat >= cut).squeeze(1)
    return _batch_topk_from(flat[index], index, total, width, n)


def _batch_topk_from(values: torch.Tensor, index: torch.Tensor, total: int, width: int, n: int) -> Code:
    top = values.topk(total)
    chosen, order = index[top.indices].sort()  # row order
    return Code(chosen // width, chosen % width, torch.relu(top.values[order]).float(), batch=n, width=width)


def step_grads(params: Params, x: torch.Tensor, code_of, *, sizes: list[int], apply_b_dec: bool, bf16: bool,
               dead: torch.Tensor, k_aux: int, aux_coef: float) -> tuple[float, torch.Tensor]:
    """Set ``.grad`` of ``W_enc``, ``b_enc``, ``W_dec``, ``b_dec`` for the loss of one batch; returns (loss, fired latents).

    The loss is the mean over the nested prefixes ``sizes`` (one size, the width, for TopK) of each prefix's squared
    error summed over dimensions and averaged over the batch, plus ``aux_coef`` times the normalised error of the
    ``k_aux`` largest dead latents' raw pre-activations reconstructing the residual (when any latent is ``dead``):
    exactly the loss ``SparseAutoencoder._loss`` gives autograd.
    """
    w_enc, b_enc, w_dec, b_dec = (params[n].detach() for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    xc = x - b_dec if apply_b_dec else x
    pre = torch.addmm(b_enc.bfloat16(), xc.bfloat16(), w_enc.bfloat16()) if bf16 else torch.addmm(b_enc, xc, w_enc)
    code = code_of(pre)
    n, scale = len(x), 2.0 / (len(x) * len(sizes))
    # prefix g's error; an entry of a latent in group j is pulled by the errors of every prefix that holds it (g >= j)
    errors, recon = [], b_dec.expand_as(x)
    groups = [code] if len(sizes) == 1 else [code.subset((code.cols >= a) & (code.cols < b)) for a, b in zip([0] + sizes[:-1], sizes)]
    for group in groups:
        recon = recon + group.decode(w_dec)
        errors.append(recon - x)
    loss = sum(float((e**2).sum(1).mean()) for e in errors) / len(sizes)
    pull = torch.stack(errors).flip(0).cumsum(0).flip(0) * scale  # pull[j] = scale · Σ_{g >= j} error_g
    grad_w_dec = None
    entry_cols, entry_rows, entry_grads = [], [], []
    for group, g in zip(groups, pull):
        part = group.transpose_times(group.values, g)
        grad_w_dec = part if grad_w_dec is None else grad_w_dec.add_(part)
        entry_grads.append(group.entry_grad(g, w_dec) * (group.values > 0))
        entry_rows.append(group.rows)
        entry_cols.append(group.cols)
    grad_b_dec = pull[0].sum(0)
    aux = None
    if aux_coef > 0 and k_aux > 0 and bool(dead.any()):
        aux = _aux(pre, dead, errors[-1], w_dec, k_aux, aux_coef)
        loss += aux.loss
        grad_w_dec[aux.columns] += aux.grad_w_dec
    if len(groups) == 1:
        pre_grad = code.with_values(entry_grads[0])
    else:
        rows, cols, grads = torch.cat(entry_rows), torch.cat(entry_cols), torch.cat(entry_grads)
        order = torch.argsort(rows, stable=True)
        pre_grad = Code(rows[order], cols[order], grads[order], batch=n, width=w_enc.shape[1])
    grad_b_enc = torch.bincount(pre_grad.cols, weights=pre_grad.values, minlength=w_enc.shape[1]).float()
    grad_w_enc = pre_grad.transpose_times(pre_grad.values, xc).T.contiguous()
    if aux is not None:  # the dead columns' gradient, dense over those columns only
        grad_b_enc[aux.columns] += aux.grad_pre.sum(0)
        grad_w_enc[:, aux.columns] += xc.T @ aux.grad_pre
    params["W_enc"].grad = grad_w_enc
    params["b_enc"].grad = grad_b_enc
    params["W_dec"].grad = grad_w_dec
    params["b_dec"].grad = grad_b_dec - w_enc @ grad_b_enc if apply_b_dec else grad_b_dec
    return loss, code.fired()


class _Aux(NamedTuple):
    loss: float
    columns: torch.Tensor  # the dead latents
    grad_w_dec: torch.Tensor  # [dead, d]
    grad_pre: torch.Tensor  # [batch, dead]


def _aux(pre: torch.Tensor, dead: torch.Tensor, err: torch.Tensor, w_dec: torch.Tensor, k_aux: int, coef: float) -> _Aux:
    """``coef ·`` the aux loss and its gradients, dense over the dead columns: their cost grows with how many are dead,
    not with the width (a row's ``k_aux`` largest dead pre-activations, raw, reconstruct the residual ``x − x̂``)."""
    columns = torch.nonzero(dead).squeeze(1)
    sub = pre[:, columns].float()
    if k_aux < len(columns):
        top = sub.topk(k_aux, dim=1)
        z = torch.zeros_like(sub).scatter(1, top.indices, top.values)
        chosen = torch.zeros_like(sub, dtype=torch.bool).scatter(1, top.indices, True)
    else:
        z, chosen = sub, None
    w = w_dec[columns]
    residual = -err
    diff = residual - z @ w
    norm = float((residual**2).sum(1).mean().clamp_min(1e-8))
    grad_recon = diff * (-2.0 * coef / (len(pre) * norm))
    grad_pre = grad_recon @ w.T
    if chosen is not None:
        grad_pre = grad_pre * chosen
    return _Aux(coef * float((diff**2).sum(1).mean()) / norm, columns, z.T @ grad_recon, grad_pre)
