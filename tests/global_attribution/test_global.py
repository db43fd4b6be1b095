"""Corpus attributions: planted words recovered with their signs and intervals covering the exact values, a SIGKILLed
run resumes to the same table, bad lines reported and skipped."""

import os
import sys
import textwrap

import pytest

from shatterbox.errors import InputError
from shatterbox.global_attribution import (CorpusRun, CorpusSettings, drill_down, explain_corpus, flips, least_faithful, screen, top_words,
                                           word_table)
from tests.conftest import kill_mid_run
from tests.global_attribution import planted


@pytest.fixture(scope="module")
def texts():
    return planted.corpus(120)


@pytest.fixture(scope="module")
def sampled(texts):
    return explain_corpus(texts, planted.classify, settings=CorpusSettings(method="sampled", pairs=2))


@pytest.fixture(scope="module")
def exact(texts):
    return explain_corpus(texts, planted.classify, settings=CorpusSettings(method="exact", pairs=None))


def test_planted_words_come_first_with_their_signs(sampled):
    table = word_table(sampled, by="word")
    up = top_words(table, "LABEL_1", k=2, min_count=5).column("word").to_pylist()
    down = top_words(table, "LABEL_1", k=2, direction="down", min_count=5).column("word").to_pylist()
    assert up == ["good", "great"] and down == ["awful", "bad"]
    rows = {r["word"]: r for r in table.to_pylist() if r["label"] == "LABEL_1"}
    for word, weight in planted.WEIGHTS.items():  # a planted word pushes its way in every text, and its interval says so
        assert rows[word]["share_up"] == (1.0 if weight > 0 else 0.0)
        assert (rows[word]["low"] > 0) if weight > 0 else (rows[word]["high"] < 0)
    fillers = [rows[w]["mean"] for w in planted.FILLERS if w not in planted.TRIPLE]
    assert max(map(abs, fillers)) < 0.01 < min(abs(rows[w]["mean"]) for w in planted.WEIGHTS)
    mirror = {r["word"]: r["mean"] for r in table.to_pylist() if r["label"] == "LABEL_0"}
    assert mirror["good"] == pytest.approx(-rows["good"]["mean"])


def test_intervals_cover_the_exact_values(sampled, exact):
    noisy = {r["word"]: r for r in word_table(sampled, by="word").to_pylist() if r["label"] == "LABEL_1"}
    truth = {r["word"]: r["mean"] for r in word_table(exact, by="word").to_pylist() if r["label"] == "LABEL_1"}
    assert all(noisy[w]["high"] - noisy[w]["low"] > 0.005 for w in planted.WEIGHTS)  # the logistic makes sampled values noisy
    assert all(noisy[w]["low"] <= truth[w] <= noisy[w]["high"] for w in planted.WEIGHTS)
    assert max(abs(noisy[w]["mean"] - truth[w]) for w in planted.WEIGHTS) > 1e-6  # sampled, not exact
    covered = [noisy[w]["low"] <= truth[w] <= noisy[w]["high"] for w in truth if noisy[w]["texts"] >= 5]
    assert len(covered) >= 14 and sum(covered) >= 0.85 * len(covered)


def test_drill_down_flips_and_least_faithful(sampled):
    found = drill_down(sampled, "plot", "LABEL_1", by="word", k=3)
    effects = [abs(d["effect"]) for d in found]
    assert effects == sorted(effects, reverse=True) and all(d["words"][p] == "plot" for d in found for p in d["positions"])
    table = word_table(sampled, by="word")
    flipping = flips(table, "LABEL_1", k=3, min_count=5).column("word").to_pylist()
    assert flipping[0] == planted.FLIP and not set(flipping) & set(planted.FILLERS)  # words that never move are not "flips"
    worst = least_faithful(sampled, 3).column("comprehensiveness").to_pylist()
    assert worst == sorted(worst)


def test_bad_lines_are_reported_and_skipped(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("good film\n\n   \ngood film\n" + " ".join(["long"] * 80) + "\nbad film\nalone\n")
    run = explain_corpus(path, planted.classify)
    assert sorted((r["id"], r["reason"]) for r in run.skipped.to_pylist()) == [(2, "empty"), (3, "empty"), (4, "duplicate"), (5, "too long")]
    problems = {r["text_id"]: r["problem"] for r in run.texts.to_pylist() if r["problem"]}
    assert list(problems) == [7] and "single word" in problems[7]  # one word: reported with the texts, never fatal
    assert set(run.texts.column("text_id").to_pylist()) == {1, 6, 7}
    with pytest.raises(InputError, match="no text left to explain: 2 empty"):
        explain_corpus(["", " "], planted.classify)


def test_screen_counts():
    assert screen(["a", "a", "", "b c d"], max_words=2).counts() == {"duplicate": 1, "empty": 1, "too long": 1}


@pytest.mark.slow
@pytest.mark.parametrize("method, pairs", [("sampled", 2), ("kernel", None)])
def test_a_killed_run_resumes_to_the_same_table(tmp_path, texts, method, pairs):
    settings = CorpusSettings(method=method, pairs=pairs)
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts[:96]) + "\n")
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        from tests.global_attribution import planted
        from shatterbox.global_attribution import CorpusSettings, explain_corpus
        planted.DELAY = 0.004
        explain_corpus({str(source)!r}, planted.classify, sys.argv[1], settings=CorpusSettings(method={method!r}, pairs={pairs!r}), part_texts=8)
    """)
    killed = tmp_path / "killed"
    done = kill_mid_run([sys.executable, "-c", script, str(killed)], killed, "texts-*.parquet")
    assert 2 <= done < 12, "the kill must land mid-run"
    resumed = explain_corpus(source, planted.classify, killed, settings=settings, part_texts=8)
    clean = explain_corpus(source, planted.classify, tmp_path / "clean", settings=settings, part_texts=8)
    assert word_table(resumed).to_pandas().equals(word_table(clean).to_pandas())  # NaN where a word is in one text, on both sides
    again = CorpusRun.read(killed)
    assert again.texts.num_rows == 96 and again.rows.num_rows == clean.rows.num_rows
    assert set(again.texts.column("method").to_pylist()) == {method}
    with pytest.raises(InputError, match="a corpus explanation made with other arguments"):
        explain_corpus(source, planted.classify, killed, settings=CorpusSettings(pairs=3), part_texts=8)


@pytest.mark.slow
def test_batched_texts_give_the_numbers_of_one_text_at_a_time():
    from shatterbox.attribution import explain

    texts = ["I loved this film.", "A dull and boring film.", "The acting was wonderful and moving.", "One"]
    run = explain_corpus(texts, None, settings=CorpusSettings(pairs=2))
    for i, text in enumerate(texts[:3]):
        alone = explain(None, text, method="sampled", pairs=2)
        together = [r["value"] for r in run.rows.to_pylist() if r["text_id"] == i and r["label"] == alone.label_name]
        assert together == pytest.approx(alone.values[:, alone.label].tolist(), abs=1e-5)
        summary = [r for r in run.texts.to_pylist() if r["text_id"] == i][0]
        assert summary["comprehensiveness"] == pytest.approx(alone.faithfulness.comprehensiveness, abs=1e-5)
        assert summary["evaluations"] == alone.evaluations and summary["seconds"] > 0
    assert "single word" in [r for r in run.texts.to_pylist() if r["text_id"] == 3][0]["problem"]


@pytest.mark.slow
def test_kernel_shap_over_a_corpus_gives_each_texts_own_numbers():
    from shatterbox.attribution import explain, make_game
    from shatterbox.global_attribution import KERNEL_PER_WORD

    texts = ["I loved this film.", "A dull and boring film that nobody in the room enjoyed at all.", "Wonderful", "The acting was moving."]
    run = explain_corpus(texts, None, settings=CorpusSettings(method="kernel", pairs=None, score=False))
    summaries = {r["text_id"]: r for r in run.texts.to_pylist()}
    for i in (0, 1, 3):
        n = make_game(None, texts[i]).n
        alone = explain(None, texts[i], method="kernel", samples=KERNEL_PER_WORD * n, score=False)  # the default: 8 evaluations per word
        together = [r["value"] for r in run.rows.to_pylist() if r["text_id"] == i and r["label"] == alone.label_name]
        assert together == pytest.approx(alone.values[:, alone.label].tolist(), abs=1e-5)
        assert summaries[i]["evaluations"] == alone.evaluations == min(KERNEL_PER_WORD * n, 2**n)
        assert summaries[i]["method"] == "kernel"
    assert summaries[1]["evaluations"] < 2 ** 13  # sampled, not enumerated
    assert "single word" in summaries[2]["problem"]
    fixed = explain_corpus(["Wonderful film.", texts[1]], None, settings=CorpusSettings(method="kernel", pairs=None, samples=30, score=False))
    assert fixed.texts.column("evaluations").to_pylist() == [8, 30]  # 3 words (with the full stop): all 8 coalitions; 13 words: 30
    with pytest.raises(InputError, match="samples must be at least 2"):
        explain_corpus(texts, None, settings=CorpusSettings(method="kernel", pairs=None, samples=1))


def test_each_list_holds_only_the_words_on_its_side(sampled):
    table = word_table(sampled, by="word")
    up = top_words(table, "LABEL_1", k=50, min_count=5).to_pylist()
    down = top_words(table, "LABEL_1", k=50, direction="down", min_count=5).to_pylist()
    assert all(r["mean"] > 0 and r["low"] > 0 and r["side"] == "up" for r in up)
    assert all(r["mean"] < 0 and r["high"] < 0 and r["side"] == "down" for r in down)
    assert not {r["word"] for r in up} & {r["word"] for r in down}
    assert {"good", "great"} <= {r["word"] for r in up} and {"bad", "awful"} <= {r["word"] for r in down}
    crossing = [r for r in table.to_pylist() if r["label"] == "LABEL_1" and r["texts"] >= 5 and r["low"] < 0 < r["high"]]
    assert crossing and all(r["side"] == "" for r in crossing)  # fillers whose interval crosses zero push neither way
