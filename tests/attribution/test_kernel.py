import warnings

import numpy as np
import pytest

from shatterbox.attribution import explain, kernel_shap, make_game, shapley_exact
from shatterbox.attribution.parts import kernel_coalitions, kernel_design, kernel_fit
from shatterbox.errors import BudgetTooSmall


def _table_game(table: np.ndarray, n: int):
    bits = 1 << np.arange(n)
    return lambda masks: table[np.asarray(masks).astype(np.int64) @ bits]


def _interacting_game(n: int, seed: int = 0):
    """A sigmoid of word effects plus neighbour interactions: a classifier's probability as a function of its words."""
    rng = np.random.default_rng(seed)
    w, pair = rng.normal(0, 1.0, n), rng.normal(0, 1.0, n - 1)

    def game(masks):
        m = np.asarray(masks, dtype=float)
        return (1 / (1 + np.exp(-(m @ w + (m[:, :-1] * m[:, 1:]) @ pair - 0.5))))[:, None]

    return game


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_every_coalition_gives_the_exact_shapley_values(n):
    game = _table_game(np.random.default_rng(n).normal(size=(2**n, 2)), n)
    design = kernel_design(n, 2**n)
    r = kernel_shap(game, n, evaluations=2**n)
    assert design.complete and len(design.masks) == 2**n - 2 and r.evaluations == 2**n
    np.testing.assert_allclose(r.values, shapley_exact(game, n).values, atol=1e-8)


def test_an_additive_game_is_exact_at_the_smallest_budget():
    w = np.random.default_rng(0).normal(size=(12, 3))
    r = kernel_shap(lambda m: m @ w, 12, evaluations=2 + 2 * 12)
    assert r.evaluations == 26
    np.testing.assert_allclose(r.values, w, atol=1e-7)


@pytest.mark.parametrize("budget", [22, 40, 90])
def test_efficiency_holds_at_any_budget(budget):
    game = _table_game(np.random.default_rng(1).normal(size=(2**10, 2)), 10)
    r = kernel_shap(game, 10, evaluations=budget, seed=3)
    np.testing.assert_allclose(r.values.sum(axis=0), r.full - r.base, atol=1e-9)
    assert r.evaluations <= budget


def test_the_fit_equals_least_squares_with_the_constraint_eliminated():
    """Oracle: scikit-learn's weighted least squares after substituting the last value (shap's route), against our
    Lagrangian solution, on a sampled design."""
    from sklearn.linear_model import LinearRegression

    n = 9
    game = _interacting_game(n, seed=2)
    design = kernel_design(n, 40, seed=1)
    assert not design.complete
    z = design.masks.astype(float)
    base, full = game(np.zeros((1, n)))[0], game(np.ones((1, n)))[0]
    y = game(design.masks)[:, 0] - base[0]
    total = full[0] - base[0]
    reg = LinearRegression(fit_intercept=False).fit(z[:, :-1] - z[:, -1:], y - z[:, -1] * total, sample_weight=design.weights)
    expected = np.append(reg.coef_, total - reg.coef_.sum())
    ours = kernel_fit(design.masks, design.weights, game(design.masks), base, full)[:, 0]
    np.testing.assert_allclose(ours, expected, atol=1e-8)


def test_sizes_are_enumerated_from_the_outside_in_and_samples_come_in_complementary_pairs():
    n = 10
    design = kernel_design(n, 60, seed=0)
    sizes = design.masks.sum(axis=1)
    assert sorted(sizes[:2 * n].tolist()) == [1] * n + [n - 1] * n  # every word alone, every word left out
    sampled = {m.tobytes() for m in design.masks[2 * n:]}
    assert all((~np.frombuffer(key, dtype=bool)).tobytes() in sampled for key in sampled)
    assert len(sampled) == len(design.masks) - 2 * n == 60 - 2 - 2 * n  # distinct, and the budget used
    np.testing.assert_allclose(design.weights.sum(), 1.0)


@pytest.mark.slow
def test_error_falls_with_the_budget_and_is_on_a_par_with_shaps_kernel_explainer():
    shap = pytest.importorskip("shap")
    n, seeds = 10, 8
    errors, theirs = {}, []
    for seed in range(seeds):
        game = _interacting_game(n, seed)
        exact = shapley_exact(game, n).values[:, 0]
        for budget in (4 * n, 16 * n):
            errors.setdefault(budget, []).append(np.abs(kernel_shap(game, n, evaluations=budget, seed=seed).values[:, 0] - exact).mean())
        np.random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer = shap.KernelExplainer(lambda z: game(np.rint(z))[:, 0], np.zeros((1, n)))
            sv = explainer.shap_values(np.ones((1, n)), nsamples=16 * n - 2, l1_reg=False, silent=True)
        theirs.append(np.abs(np.asarray(sv).ravel() - exact).mean())
    assert np.mean(errors[16 * n]) < 0.5 * np.mean(errors[4 * n])
    assert np.mean(errors[16 * n]) < 1.25 * np.mean(theirs)


def test_too_small_a_budget_names_the_fix():
    with pytest.raises(BudgetTooSmall, match="samples=22"):
        kernel_design(10, 15)
    assert kernel_design(3, 8).complete  # 2^n below 2 + 2n: every coalition is affordable


@pytest.mark.slow
def test_explain_with_kernel_is_kernel_shap_on_the_text_game(sentiment):
    text = "The staff were rude and the room was filthy."
    a = explain(sentiment, text, method="kernel", samples=40, seed=2, score=False)
    game = make_game(sentiment, text)
    r = kernel_shap(game, game.n, evaluations=40, seed=2)
    np.testing.assert_allclose(a.values, r.values, atol=1e-12)
    assert a.method == "kernel" and a.evaluations == 40 == len(kernel_coalitions(game.n, 40, 2))
    assert {"rude", "filthy"} == {w for w, _ in a.top(2)}
    full = explain(sentiment, text, method="kernel", samples=2000, score=False)
    np.testing.assert_allclose(full.values, explain(sentiment, text, method="exact", score=False).values, atol=1e-6)
    assert full.evaluations == 2**game.n and "exact" in full.notes[0]
