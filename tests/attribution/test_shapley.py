from itertools import permutations

import numpy as np
import pytest

from shatterbox.attribution import coalitions, shapley_exact
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
