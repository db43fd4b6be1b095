"""Scores on hand-computed examples: discretisation, pooled correlation, balanced accuracy, paired differences."""

import numpy as np
import pytest

from shatterbox.errors import InputError
from shatterbox.neurons import balanced_accuracy, correlation_score, discretise, paired_difference


def test_discretise_is_floor_of_ten_relu_over_max():
    a = np.array([-3.0, 0.0, 0.149, 0.15, 0.5, 0.999, 2.0, 4.0])
    assert discretise(a, 2.0).tolist() == [0, 0, 0, 0, 2, 4, 10, 10]  # 10·0.15/2 = 0.75 -> 0; 10·0.999/2 = 4.995 -> 4
    assert discretise(a, 0.0).tolist() == [0] * 8


def test_correlation_pools_tokens_of_all_excerpts():
    true = [np.array([0.0, 2.0, 1.0]), np.array([0.5, 0.0]), np.array([3.0])]
    sim = [np.array([1.0, 8.0, 2.0]), np.array([0.0, 0.0]), np.array([10.0])]
    expected = np.corrcoef(np.concatenate(true), np.concatenate(sim))[0, 1]
    s = correlation_score(true, sim)
    assert s.value == pytest.approx(expected, abs=1e-12)
    assert s.low <= s.value <= s.high and s.high - s.low > 0.01


def test_correlation_by_hand():
    # x = (0, 1, 2, 3), y = (0, 0, 1, 1): centred sums Σxy = 2, Σxx = 5, Σyy = 1, so r = 2 / sqrt(5)
    x, y = np.array([0.0, 1, 2, 3]), np.array([0.0, 0, 1, 1])
    r = ((x - x.mean()) * (y - y.mean())).sum() / np.sqrt(((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum())
    assert r == pytest.approx(2 / np.sqrt(5))
    assert correlation_score([x[:2], x[2:]], [y[:2], y[2:]]).value == pytest.approx(2 / np.sqrt(5))


def test_constant_simulation_scores_zero():
    assert correlation_score([np.array([0.0, 1.0])], [np.array([3.0, 3.0])]).value == 0.0


def test_mismatched_lengths_are_one_error():
    with pytest.raises(InputError, match="one array per excerpt"):
        correlation_score([np.zeros(3)], [np.zeros(2)])


def test_balanced_accuracy_by_hand_and_chance():
    s = balanced_accuracy(np.array([1, 1, 1, 0, 0]), np.array([1, 0, 1, 0, 1]))
    assert s.value == pytest.approx(0.5 * (2 / 3 + 1 / 2))
    always = balanced_accuracy(np.array([1, 1, 0, 0, 0]), np.ones(5))
    assert always.value == 0.5
    with pytest.raises(InputError, match="both classes"):
        balanced_accuracy(np.ones(3), np.ones(3))


def test_paired_difference_sees_a_better_simulation():
    rng = np.random.default_rng(0)
    true = [rng.normal(size=6) for _ in range(20)]
    good = [t + rng.normal(scale=0.3, size=6) for t in true]
    noise = [rng.normal(size=6) for _ in true]
    d = paired_difference(true, good, noise)
    assert d.low > 0.5
    same = paired_difference(true, good, good)
    assert same.value == 0 and same.low == 0 and same.high == 0
