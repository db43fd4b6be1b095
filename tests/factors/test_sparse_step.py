"""The sparse training step's hand-written gradients equal autograd's on the dense loss they replace."""

import numpy as np
import pytest
import torch

from shatterbox.factors import SparseAutoencoder
from shatterbox.factors._sparse_step import Code, batch_topk_code, topk_code


def setup(activation, apply_b_dec=True, seed=0, n=96, d=12, width=40, k=4):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, d)).astype(np.float32))
    sae = SparseAutoencoder(n_factors=width, k=k, activation=activation, groups=(0.25, 0.5, 1.0), apply_b_dec_to_input=apply_b_dec,
                            train_dtype="float32", seed=seed)
    params = sae._init_params(x, torch.Generator().manual_seed(seed))
    with torch.no_grad():  # away from the symmetric start, so every term has a gradient
        for p in params.values():
            p += 0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(seed + 1))
    return sae, params, x


def autograd_grads(sae, params, x, dead):
    for p in params.values():
        p.grad = None
    loss, z = sae._loss(params, x, dead)
    loss.backward()
    return float(loss.detach()), (z > 0).any(0), {k: p.grad.clone() for k, p in params.items()}


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "matryoshka"])
@pytest.mark.parametrize("apply_b_dec", [True, False])
@pytest.mark.parametrize("n_dead", [0, 6, 40])  # none, some (the aux loss), all (dead latents also among the active ones)
@pytest.mark.parametrize("k", [4, 24])  # 24 of 40: some chosen pre-activations are negative, ReLU'd to zero (no gradient)
def test_the_sparse_gradients_equal_autograds(activation, apply_b_dec, n_dead, k):
    sae, params, x = setup(activation, apply_b_dec, k=k)
    dead = torch.zeros(sae.n_factors, dtype=torch.bool)
    dead[torch.randperm(sae.n_factors, generator=torch.Generator().manual_seed(3))[:n_dead]] = True
    loss, fired, expected = autograd_grads(sae, params, x, dead)
    for p in params.values():
        p.grad = None
    got_loss, got_fired = sae._sparse_grads(params, x, dead)
    assert got_loss == pytest.approx(loss, rel=1e-5)
    assert torch.equal(got_fired, fired)
    for name, grad in expected.items():
        assert grad.abs().max() > 1e-4, f"{name}: the oracle has no gradient to compare"
        torch.testing.assert_close(params[name].grad, grad, rtol=1e-4, atol=1e-6, msg=name)


def test_codes_decode_like_the_dense_code():
    pre = torch.tensor([[3.0, -1.0, 2.0, 0.5], [-2.0, -1.0, -3.0, 1.0]])
    dense_top = torch.tensor([[3.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.0]])  # row 2's second pick is -1: ReLU'd to 0
    assert torch.equal(topk_code(pre, 2).decode(torch.eye(4)), dense_top)
    assert torch.equal(batch_topk_code(pre, 2).decode(torch.eye(4)), torch.tensor([[3.0, 0, 2.0, 0.5], [0, 0, 0, 1.0]]))
    assert topk_code(pre, 2).fired().tolist() == [True, False, True, True]


def test_duplicate_entries_add_up():
    code = Code(torch.tensor([0, 0]), torch.tensor([1, 1]), torch.tensor([1.0, 2.0]), batch=1, width=2)
    assert code.decode(torch.eye(2)).tolist() == [[0.0, 3.0]]
    assert code.transpose_times(code.values, torch.ones(1, 1)).tolist() == [[0.0], [3.0]]


@pytest.mark.parametrize("skew", [0.0, 10.0])  # 10: one row holds far more than its spare · k candidates of the batch's top
def test_batch_topk_takes_the_batchs_largest_entries_exactly(skew):
    pre = torch.randn(64, 50, generator=torch.Generator().manual_seed(0))
    pre[3] += skew
    code = batch_topk_code(pre, 2, spare=2)
    expected = torch.relu(pre).reshape(-1).topk(128)
    dense = torch.zeros(64 * 50).scatter(0, expected.indices, expected.values).reshape(64, 50)
    assert torch.equal(code.decode(torch.eye(50)), dense)
    assert (code.rows == 3).sum() == (50 if skew else (dense[3] > 0).sum())


def test_adam_is_fused_only_where_torchs_fused_kernel_steps_right():
    from shatterbox.factors._sae import adam

    contiguous = torch.zeros(4, 3, requires_grad=True)
    strided = torch.zeros(3, 4).t().clone().requires_grad_(True)  # a transposed layout: fused CPU Adam mis-steps it
    assert not strided.is_contiguous()
    assert adam([contiguous], 1e-3).defaults["fused"] is True and not adam([contiguous, strided], 1e-3).defaults["fused"]
    fused, plain = contiguous.detach().clone().requires_grad_(True), contiguous.detach().clone().requires_grad_(True)
    steps = [adam([fused], 1e-2), torch.optim.Adam([plain], lr=1e-2)]
    for _ in range(3):
        grad = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
        fused.grad, plain.grad = grad.clone(), grad.clone()
        for opt in steps:
            opt.step()
    torch.testing.assert_close(fused, plain)
