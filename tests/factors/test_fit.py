"""Factor models recover a planted non-negative dictionary; FISTA is monotone; save/load round-trips."""

import numpy as np
import pytest
import torch

from shatterbox.errors import InputError
from shatterbox.factors import FactorModel, SparseAutoencoder, SparseDictionary, evaluate, fista_codes, variance_explained


def planted(n=6000, d=32, k=48, active=3, seed=0):
    """Vectors that are sums of ``active`` of ``k`` unit atoms with positive weights (the ground truth)."""
    rng = np.random.default_rng(seed)
    atoms = rng.normal(size=(k, d))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = np.zeros((n, k))
    for i in range(n):
        codes[i, rng.choice(k, active, replace=False)] = rng.uniform(0.5, 2.0, active)
    return (codes @ atoms).astype(np.float32), atoms


def recovered(atoms, components):
    unit = components / np.linalg.norm(components, axis=1, keepdims=True)
    return float(((atoms @ unit.T).max(1) >= 0.95).mean())


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    x, _ = data
    return {
        "fista": SparseDictionary(n_factors=64, alpha=0.2, n_epochs=6, batch_size=512, seed=0).fit(x[:5000]),
        "sae": SparseAutoencoder(n_factors=64, k=3, n_epochs=30, batch_size=256, lr=3e-3, seed=0).fit(x[:5000]),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["fista", "sae"])
def test_planted_atoms_are_recovered(fitted, data, kind):
    x, atoms = data
    model = fitted[kind]
    assert recovered(atoms, model.components_) >= 0.9
    np.testing.assert_allclose(np.linalg.norm(model.components_, axis=1), 1.0, atol=1e-4)
    report = evaluate(model, x[5000:], x[:5000])
    assert report.variance_explained >= 0.9
    assert report.variance_explained > report.pca_variance_explained + 0.3  # sparse structure PCA cannot see
    assert report.mean_l0 <= 4.5


def test_a_random_dictionary_recovers_nothing(data):
    """Control: the recovery score is not reachable by chance."""
    _, atoms = data
    random = np.random.default_rng(1).normal(size=(64, atoms.shape[1]))
    assert recovered(atoms, random) == 0.0


@pytest.mark.parametrize("kind", ["fista", "sae"])
def test_codes_are_non_negative_and_sparse(fitted, data, kind):
    codes = fitted[kind].transform(data[0][:200])
    assert codes.min() >= 0 and (codes > 0).sum(1).mean() < 8


def test_topk_keeps_at_most_k(fitted, data):
    assert (fitted["sae"].transform(data[0][:500]) > 0).sum(1).max() <= 3


def test_fista_objective_never_rises_and_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    d = torch.tensor(rng.normal(size=(20, 10)), dtype=torch.float32)
    d /= d.norm(dim=1, keepdim=True)
    x = torch.tensor(rng.normal(size=(50, 10)), dtype=torch.float32)
    history: list[float] = []
    a = fista_codes(x, d, 0.3, n_iter=80, history=history)
    assert all(b <= a_ + 1e-4 for a_, b in zip(history, history[1:]))
    direct = 0.5 * float(((x - a @ d) ** 2).sum()) + 0.3 * float(a.sum())
    assert direct == pytest.approx(history[-1], rel=1e-4)
    assert float(a.min()) >= 0
    # reference: scikit-learn's coordinate-descent Lasso with positive weights, row by row
    from sklearn.linear_model import Lasso

    lasso = Lasso(alpha=0.3 / 10, positive=True, fit_intercept=False, tol=1e-8, max_iter=100_000)
    ref = np.stack([lasso.fit(d.double().numpy().T, row).coef_ for row in x.double().numpy()])
    ref_objective = 0.5 * float(((x.numpy() - ref @ d.numpy()) ** 2).sum()) + 0.3 * float(ref.sum())
    assert history[-1] == pytest.approx(ref_objective, rel=1e-3)


def test_fista_matches_the_closed_form_for_an_orthonormal_dictionary():
    """With D = I the solution is max(0, x − α) (soft threshold, non-negative)."""
    x = torch.tensor([[2.0, -1.0, 0.25, 0.7]])
    a = fista_codes(x, torch.eye(4), 0.5, n_iter=50)
    np.testing.assert_allclose(a.numpy(), [[1.5, 0.0, 0.0, 0.2]], atol=1e-5)


def test_fits_are_deterministic_for_a_seed(data):
    x = data[0][:1000]
    a = SparseDictionary(n_factors=16, alpha=0.2, n_epochs=1, batch_size=256, seed=3).fit(x).components_
    b = SparseDictionary(n_factors=16, alpha=0.2, n_epochs=1, batch_size=256, seed=3).fit(x).components_
    c = SparseDictionary(n_factors=16, alpha=0.2, n_epochs=1, batch_size=256, seed=4).fit(x).components_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("kind", ["fista", "sae"])
def test_save_and_load_round_trip(fitted, data, kind, tmp_path):
    model = fitted[kind]
    path = model.save(tmp_path / f"{kind}.safetensors", extra={"layer": 3})
    back = FactorModel.load(path)
    assert type(back) is type(model) and repr(back) == repr(model) and back.extra_ == {"layer": 3}
    np.testing.assert_array_equal(back.transform(data[0][:50]), model.transform(data[0][:50]))


def test_bad_input_names_the_fix(fitted, tmp_path):
    with pytest.raises(InputError, match="fitted on 32"):
        fitted["fista"].transform(np.zeros((3, 7), np.float32))
    with pytest.raises(InputError, match="2-D array"):
        SparseDictionary(n_factors=4).fit(np.zeros(5))
    with pytest.raises(InputError, match="NaN"):
        SparseAutoencoder(n_factors=4, k=2).fit(np.full((4, 3), np.nan))
    with pytest.raises(InputError, match="not fitted"):
        SparseDictionary(n_factors=4).transform(np.zeros((2, 3)))
    with pytest.raises(InputError, match="k must be"):
        SparseAutoencoder(n_factors=4, k=9)
    with pytest.raises(InputError, match="no factors file"):
        FactorModel.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(InputError, match="not a shatterbox factors file"):
        FactorModel.load(tmp_path / "junk.safetensors")


def test_variance_explained_by_hand():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert variance_explained(x, x) == 1.0
    assert variance_explained(x, np.tile(x.mean(0), (2, 1))) == 0.0


@pytest.mark.parametrize("activation", ["batchtopk", "matryoshka"])
def test_batchtopk_and_matryoshka_recover_the_planted_atoms(data, activation):
    x, atoms = data
    sae = SparseAutoencoder(n_factors=64, k=3, activation=activation, n_epochs=20, batch_size=256, lr=3e-3, seed=0).fit(x[:5000])
    # flat planted atoms have no hierarchy: Matryoshka's first latents must mix some of them to reconstruct alone
    assert recovered(atoms, sae.components_) >= (0.8 if activation == "batchtopk" else 0.75)
    codes = sae.transform(x[:5000])
    if activation == "batchtopk":
        # the inference threshold keeps k latents per training vector on average, as training did per batch
        assert sae.threshold_ is not None and abs((codes > 0).sum(1).mean() - 3) < 0.01  # exact: all 5,000 rows set it
        assert (codes > 0).sum(1).max() > 3  # a vector may use more than k
    else:
        assert (codes > 0).sum(1).max() <= 3 and sae.group_sizes == [4, 16, 64]


def test_matryoshka_prefixes_reconstruct_alone_better_than_topk_prefixes(data):
    x, _ = data
    fits = {a: SparseAutoencoder(n_factors=64, k=3, activation=a, n_epochs=10, batch_size=256, lr=3e-3, seed=0).fit(x[:5000])
            for a in ("topk", "matryoshka")}

    def prefix_ve(sae, size):
        codes = sae.transform(x[5000:])
        codes[:, size:] = 0
        return variance_explained(x[5000:], sae.inverse_transform(codes))

    assert prefix_ve(fits["matryoshka"], 16) > prefix_ve(fits["topk"], 16) + 0.05


def test_bfloat16_training_matches_float32_and_codes_stay_float32(data):
    x, _ = data
    fits = {dt: SparseAutoencoder(n_factors=64, k=3, n_epochs=2, batch_size=256, lr=3e-3, seed=0, train_dtype=dt).fit(x[:5000])
            for dt in ("bfloat16", "float32")}
    ve = {dt: evaluate(m, x[5000:], x[:5000]).variance_explained for dt, m in fits.items()}
    assert abs(ve["bfloat16"] - ve["float32"]) < 0.02 and fits["bfloat16"].transform(x[:10]).dtype == np.float32
    assert fits["bfloat16"]._bf16(torch.zeros(1024, 640)) and not SparseAutoencoder(n_factors=64)._bf16(torch.zeros(256, 32))  # auto
    with pytest.raises(InputError, match="train_dtype must be one of auto, bfloat16, float32"):
        SparseAutoencoder(train_dtype="float16")
