"""Games: words from the tokenizer's alignment, masking on token ids, one evaluation per distinct coalition."""

import numpy as np
import pytest

from shatterbox.attribution import TextGame, TokenGame, ValueGame
from shatterbox.classifiers import from_model
from shatterbox.errors import InputError, TextTooLong

TEXT = "Transformers possess surprising emerging features."


def test_words_come_from_the_tokenizer(sentiment):
    assert TokenGame(sentiment, TEXT).words == ["Transformers", "possess", "surprising", "emerging", "features", "."]
    assert TokenGame(sentiment, "我爱下棋。").words == ["我", "爱", "下", "棋", "。"]  # no spaces to split on
    assert TokenGame(sentiment, "Great!!! (really)").words == ["Great", "!", "!", "!", "(", "really", ")"]


def test_mask_replaces_exactly_the_absent_words_tokens(sentiment):
    game = TokenGame(sentiment, TEXT)
    ids = game.input_ids.numpy()
    mask = np.array([[True, False, True, False, True, True]])
    out = game.masked_inputs(mask)["input_ids"][0].numpy()
    absent = np.isin(game.token_word, [1, 3])
    assert absent.sum() >= 2 and (out[absent] == sentiment.tokenizer.mask_token_id).all()
    assert (out[~absent] == ids[~absent]).all() and len(out) == len(ids)


def test_deletion_equals_scoring_the_shortened_text(sentiment):
    """Deleting tokens gives the same probabilities as re-tokenising the text without those words."""
    tokens = TokenGame(sentiment, TEXT, masking="delete")
    text = TextGame(sentiment.predict, TEXT)
    masks = np.random.default_rng(0).random((40, tokens.n)) < 0.5
    assert np.abs(tokens(masks) - text(masks)).max() <= 1e-5
    assert text.masked_texts(masks[:1])[0] != TEXT


def test_each_distinct_coalition_is_evaluated_once(sentiment):
    game = TokenGame(sentiment, TEXT)
    masks = np.random.default_rng(1).random((30, game.n)) < 0.5
    first = game(masks)
    count = game.evaluations
    assert count == len(np.unique(masks, axis=0))
    assert np.array_equal(game(masks[::-1]), first[::-1]) and game.evaluations == count


def test_batches_do_not_change_values(sentiment):
    masks = np.random.default_rng(2).random((50, 6)) < 0.5
    a = TokenGame(sentiment, TEXT, batch_size=7)(masks)
    b = TokenGame(sentiment, TEXT, batch_size=64)(masks)
    assert np.abs(a - b).max() <= 1e-6


def test_a_tokenizer_without_mask_token_deletes(classifier_dirs):
    clf = from_model(classifier_dirs["gpt2"])
    game = TokenGame(clf, "the cat sat")
    assert game.masking == "delete"
    empty = game.masked_inputs(np.zeros((1, game.n), dtype=bool))
    assert empty["input_ids"].shape == (1, 1) and int(empty["attention_mask"].sum()) == 1
    with pytest.raises(InputError, match="masking='delete'"):
        TokenGame(clf, "the cat sat", masking="mask")


def test_unknown_masking_is_refused(sentiment):
    with pytest.raises(InputError, match="auto, mask, delete"):
        TokenGame(sentiment, TEXT, masking="blur")


def test_too_long_text_is_refused_not_truncated(sentiment):
    with pytest.raises(TextTooLong, match="shorten the text"):
        TokenGame(sentiment, "word " * 600)


def test_value_game_needs_players():
    with pytest.raises(InputError):
        ValueGame([], lambda m: m.sum(axis=1))


def test_a_full_cache_forgets_the_oldest_coalitions_and_still_answers_every_call():
    from shatterbox.attribution._games import _entry_bytes

    calls = []

    def value(masks):
        calls.append(len(masks))
        return masks @ np.arange(1.0, 7.0)

    game = ValueGame(list("abcdef"), value)
    per_entry = _entry_bytes(bytes(1), np.zeros(1))
    game.cache_bytes = 10 * per_entry  # ten coalitions
    masks = np.array([[(c >> i) & 1 for i in range(6)] for c in range(64)], dtype=bool)
    np.testing.assert_allclose(game(masks[:8]), (masks[:8] @ np.arange(1.0, 7.0))[:, None])
    # 4 cached rows and 12 new ones in one call: the old code cleared the cache, then looked the 4 up (KeyError)
    mixed = masks[4:20]
    np.testing.assert_allclose(game(mixed), (mixed @ np.arange(1.0, 7.0))[:, None])
    assert len(game._cache) == 10 and game._cached_bytes == 10 * per_entry
    assert list(game._cache)[-1] == np.packbits(masks[19]).tobytes()  # the newest stay
    game(masks[:2])  # forgotten: evaluated again, and counted
    assert game.evaluations == sum(calls) == 8 + 12 + 2
