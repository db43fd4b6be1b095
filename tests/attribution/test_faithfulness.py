"""Faithfulness scores against hand computation."""

import numpy as np

from shatterbox.attribution import ValueGame, explain, faithfulness
from shatterbox.attribution._faithfulness import curve_masks


def test_scores_by_hand():
    weights = np.array([0.1, 0.5, -0.2, 0.3, 0.0])
    f = faithfulness(lambda m: (m @ weights)[:, None], weights, 0)
    full = weights.sum()
    order = [1, 3, 0, 4, 2]
    deletion = [full - weights[order[:k]].sum() for k in range(6)]
    insertion = [weights[order[:k]].sum() for k in range(6)]
    assert np.allclose(f.deletion, deletion) and np.allclose(f.insertion, insertion)
    # ERASER's bins of five words: 1 %, 5 %, 10 %, 20 % -> one word each, 50 % -> three (rounded up)
    assert np.isclose(f.comprehensiveness, (4 * (full - deletion[1]) + (full - deletion[3])) / 5)
    assert np.isclose(f.sufficiency, (4 * (full - insertion[1]) + (full - insertion[3])) / 5)
    # twenty words: 1 %, 5 % -> 1, 10 % -> 2, 20 % -> 4, 50 % -> 10
    w20 = np.linspace(1.0, 0.05, 20)
    f20 = faithfulness(lambda m: (m @ w20)[:, None], w20, 0)
    assert np.isclose(f20.comprehensiveness, (2 * w20[:1].sum() + w20[:2].sum() + w20[:4].sum() + w20[:10].sum()) / 5)
    assert np.isclose(f.aopc_deletion, np.mean([full - d for d in deletion[1:]]))
    assert np.isclose(f.aopc_insertion, np.mean(insertion[1:]))


def test_curves_are_nested():
    d, i = curve_masks(np.array([0.3, -1.0, 2.0, 0.0]))
    assert (d[:-1] >= d[1:]).all() and (i[:-1] <= i[1:]).all() and (d ^ i).all()


def test_better_attribution_scores_better():
    weights = np.array([3.0, -1.0, 0.5, 2.0, -2.0, 1.0])
    game = ValueGame(list("abcdef"), lambda m: m @ weights)
    good = explain(game, method="exact").faithfulness
    reversed_scores = faithfulness(game, -weights, 0)
    assert good.comprehensiveness > reversed_scores.comprehensiveness
    assert good.sufficiency < reversed_scores.sufficiency
    assert good.aopc_deletion > reversed_scores.aopc_deletion
