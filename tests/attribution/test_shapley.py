from itertools import permutations

import numpy as np
import pytest

from shatterbox.attribution import shapley_exact
from shatterbox.attribution.parts import coalitions
from shatterbox.errors import InputError


def _random_game(n: int, outputs: int, seed: int = 0):
    table = np.random.default_rng(seed).normal(size=(2**n, outputs))
    bits = 1 << np.arange(n)
    return lambda masks: table[masks.astype(int) @ bits]


def _by_permutations(game, n: int) -> np.ndarray:
    """The textbook definition: average marginal contribution over all n! orders."""
    phi = 0.0
    for order in permutations(range(n)):
        mask = np.zeros((1, n), dtype=bool)
        prev = game(mask)[0]
        contrib = np.zeros((n,) + prev.shape)
        for player in order:
            mask[0, player] = True
            now = game(mask)[0]
            contrib[player] = now - prev
            prev = now
        phi = phi + contrib
    return phi / len(list(permutations(range(n))))


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_matches_the_permutation_definition(n):
    game = _random_game(n, outputs=2, seed=n)
    exact = shapley_exact(game, n, batch_size=7)
    np.testing.assert_allclose(exact.values, _by_permutations(game, n), atol=1e-12)
    assert exact.evaluations == 2**n


def test_efficiency():
    n = 10
    game = _random_game(n, outputs=3)
    result = shapley_exact(game, n)
    np.testing.assert_allclose(result.values.sum(axis=0), result.full - result.base, atol=1e-9)


def test_symmetric_and_null_players():
    # v(S) = [a in S and b in S] : a and b share equally, c is a null player
    game = lambda m: (m[:, 0] & m[:, 1]).astype(float)  # noqa: E731
    values = shapley_exact(game, 3).values[:, 0]
    np.testing.assert_allclose(values, [0.5, 0.5, 0.0])


def test_coalition_layout_and_limits():
    assert coalitions(3).shape == (8, 3) and coalitions(3)[5].tolist() == [True, False, True]
    with pytest.raises(InputError, match="1-20 players"):
        shapley_exact(lambda m: m.sum(1), 21)


# --- chapter game, shap's Exact explainer, the real model --------------------------------------------

from shatterbox.attribution import (  # noqa: E402
    TokenGame,
    chapter_game,
    explain,
    owen_values,
    shapley_sampled,
    word_game,
)
from shatterbox.attribution._shapley import balanced_tree  # noqa: E402
from shatterbox.errors import BudgetTooSmall  # noqa: E402

CHAPTER_VALUES = {"I": 0.35, "love": 0.875, "playing": 0.85, "chess": 0.625, "with": 0.2167, "my": 0.4167, "friends": 0.5167}


def _shap_exact(game, n: int, output: int = 0) -> np.ndarray:
    """shap's Exact explainer on the indicator-vector game, masked to a zero background."""
    import shap
    f = lambda x: game(x.astype(bool))[:, output]  # noqa: E731
    explainer = shap.explainers.Exact(f, shap.maskers.Independent(np.zeros((1, n))))
    return explainer(np.ones((1, n))).values[0]


@pytest.mark.slow
def test_chapter_warm_up_game():
    a = explain(chapter_game(), method="exact")
    assert dict(zip(a.words, np.round(a.values[:, 0], 4))) == CHAPTER_VALUES
    assert np.allclose(a.values[:, 0], _shap_exact(chapter_game(), 7), atol=1e-4)
    # the chapter prints sums over the 7! permutations: 1764 for "I"
    assert round(a.values[0, 0] * 5040, 6) == 1764.0


@pytest.mark.slow
def test_exact_equals_shap_exact_explainer_on_random_games():
    for seed in range(3):
        game = _random_game(6, 1, seed)
        ours = shapley_exact(game, 6).values[:, 0]
        assert np.abs(ours - _shap_exact(game, 6)).max() <= 1e-4


@pytest.mark.slow  # 7 s: the real classifier's 2^n coalitions, in shap and here
def test_exact_on_the_real_classifier_matches_shap_and_is_efficient(sentiment):
    game = TokenGame(sentiment, "I love playing chess with my friends.")
    r = shapley_exact(game, game.n)
    assert np.abs(r.values.sum(axis=0) - (r.full - r.base)).max() <= 1e-5
    assert np.abs(r.values[:, 1] - _shap_exact(game, game.n, output=1)).max() <= 1e-4


def test_word_game_rejects_unknown_bonus_word():
    with pytest.raises(InputError, match="bonus words"):
        word_game({"a": 1.0}, {("a", "b"): 1.0})


# --- sampled estimator ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_sampled_error_bars_cover_exact_values(sentiment):
    """95% error bars: at least 90% of the words' exact values lie within them (24 shipped sentences of 6-8 words)."""
    from shatterbox.classifiers.sentiment import dataset

    games = [g for g in (TokenGame(sentiment, t) for t in dataset()[0][::3]) if 6 <= g.n <= 8][:24]
    covered = total = 0
    for game in games:
        exact = shapley_exact(game, game.n).values[:, 1]
        est = shapley_sampled(game, game.n, precision=0.03, budget=4000, outputs=[1], seed=0)
        assert np.abs(est.values.sum(axis=0) - (est.full - est.base)).max() <= 1e-5  # efficiency at any size
        covered += int((np.abs(est.values[:, 1] - exact) <= est.error[:, 1]).sum())
        total += game.n
    assert total > 150 and covered / total >= 0.9, (covered, total)


def test_sampled_stops_at_precision_or_budget():
    game = _random_game(8, 1, 3)
    tight = shapley_sampled(game, 8, precision=1e-6, budget=200)
    assert not tight.converged and tight.evaluations <= 200
    loose = shapley_sampled(game, 8, precision=10.0, budget=10_000)
    assert loose.converged and loose.pairs == 8


def test_sampled_is_deterministic_for_a_seed():
    game = _random_game(7, 2, 4)
    a, b = shapley_sampled(game, 7, seed=5), shapley_sampled(game, 7, seed=5)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.error, b.error)


def test_budget_too_small_names_the_minimum():
    with pytest.raises(BudgetTooSmall, match="budget=30"):
        shapley_sampled(_random_game(8, 1), 8, budget=10)


# --- Owen values ----------------------------------------------------------------------------------------


def _owen_by_permutations(game, n: int) -> np.ndarray:
    """Owen's definition: average marginal contribution over the orders that keep every group contiguous."""
    groups = {(0, n)} | {span for path in balanced_tree(n) for span in path}
    total, count = 0.0, 0
    for order in permutations(range(n)):
        pos = np.argsort(order)
        if any(pos[a:b].max() - pos[a:b].min() != b - a - 1 for a, b in groups):
            continue
        mask = np.zeros((1, n), dtype=bool)
        prev, contrib = game(mask)[0], np.zeros((n, 1))
        for player in order:
            mask[0, player] = True
            now = game(mask)[0]
            contrib[player], prev = now - prev, now
        total, count = total + contrib, count + 1
    return total / count


@pytest.mark.parametrize("n", [2, 3, 5, 6])
def test_owen_values_match_the_definition(n):
    game = _random_game(n, 1, n)
    r = owen_values(game, n)
    assert np.allclose(r.values, _owen_by_permutations(game, n), atol=1e-12)
    assert np.isclose(r.values.sum(), (r.full - r.base)[0])


def test_owen_equals_shapley_for_an_additive_game():
    weights = np.arange(1.0, 8.0)
    assert np.allclose(owen_values(lambda m: m @ weights, 7).values[:, 0], weights)


def test_one_pair_budget_gives_values_without_error_bars():
    game = _random_game(6, 1, 9)
    r = shapley_sampled(game, 6, budget=2 + 10)
    assert r.pairs == 1 and r.error is None and not r.converged and r.evaluations == 12
    assert np.isclose(r.values.sum(), (r.full - r.base)[0])
