"""The command line: output formats, the demo, and one clear line on stderr for every bad input."""

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from tests.conftest import CHAPTER, PAIR
from shatterbox import capture

runner = CliRunner()


def run(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env=env)


def test_attention_json_has_the_contract_keys():
    r = run("attention", CHAPTER, "--layer", "6", "--head", "6", "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"model", "layer", "head", "tokens", "attention"} <= set(d)
    assert (d["layer"], d["head"]) == (6, 6)
    assert d["tokens"][:3] == ["[CLS]", "transformers", "possess"]
    assert all(abs(sum(row) - 1) < 1e-5 for row in d["attention"])


def test_attention_table_shows_every_token():
    r = run("attention", CHAPTER, "--layer", "1", "--head", "6")
    assert r.exit_code == 0
    for token in ("[CLS]", "transformers", "possess", "surprising", "emerging", "features", "[SEP]"):
        assert token in r.stdout
    assert "layer 1, head 6 (numbered from 1)" in r.stdout


def test_attention_csv_word_level_without_specials():
    r = run("attention", CHAPTER, "--level", "word", "--no-specials", "--format", "csv")
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0][1:] == ["Transformers", "possess", "surprising", "emerging", "features", "."]
    assert all(abs(sum(float(x) for x in row[1:]) - 1) < 1e-5 for row in rows[1:])


def test_word_ranking_and_steps():
    r = run("attention", CHAPTER, "-l", "6", "--head", "6", "--word", "transformers", "--format", "json")
    d = json.loads(r.stdout)
    assert d["word"] == "Transformers" and len(d["ranking"]) == 8
    r = run("attention", CHAPTER, "-l", "2", "--head", "3", "--word", "possess", "--steps", "--format", "json")
    d = json.loads(r.stdout)
    assert d["query_token"] == "possess" and d["max_abs_diff"] <= 1e-5 and d["d_k"] == 32
    r = run("attention", CHAPTER, "--steps")
    assert r.exit_code == 0 and "matches the model's attention" in r.stdout


def test_pair_and_saved_trace(tmp_path):
    path = str(tmp_path / "pair.safetensors")
    assert run("capture", PAIR[0], "--pair", PAIR[1], "--out", path).exit_code == 0
    d = json.loads(run("attention", "--trace", path, "--format", "json").stdout)
    assert "cats" in d["tokens"] and "dogs" in d["tokens"] and d["tokens"].count("[SEP]") == 2


def test_demo_shows_the_four_chapter_heads():
    r = run("demo", "--format", "json")
    assert r.exit_code == 0
    tables = json.loads(r.stdout)
    assert [(t["layer"], t["head"]) for t in tables[:4]] == [(1, 1), (1, 6), (6, 1), (6, 6)]
    assert tables[0]["tokens"] == ["Transformers", "possess", "surprising", "emerging", "features", "."]
    assert tables[4]["word"] == "Transformers"


def test_help_states_the_numbering():
    r = run("attention", "--help")
    assert "numbered from 1" in " ".join(r.stdout.split())


@pytest.mark.slow  # 1 s: every command's help
def test_flags_show_no_value_in_any_help():
    """A flag takes no value, so no help shows one (typer prints ``--flag <bool>`` unless told otherwise)."""
    import typer

    from shatterbox.cli import app

    top = typer.main.get_command(app).commands
    commands = [[n] for n, c in top.items() if not hasattr(c, "commands")]
    commands += [[n, sub] for n, c in top.items() if hasattr(c, "commands") for sub in c.commands]
    flags = 0
    for words in commands:
        text = run(*words, "--help").stdout
        assert "<bool>" not in text, words
        flags += text.count("--help")
    assert len(commands) >= 12 and flags >= len(commands)
    assert "<int>" in run("project", "--help").stdout  # options with values still show their type


BAD = [
    (["attention", ""], "empty"),
    (["attention", "   "], "empty"),
    (["attention", "\x01\x02"], "empty"),
    (["attention", CHAPTER, "--layer", "7"], "layer 7 is out of range: this model has layers 1-6"),
    (["attention", CHAPTER, "--layer", "0"], "layers 1-6"),
    (["attention", CHAPTER, "--head", "13"], "head 13 is out of range: this model has heads 1-12"),
    (["attention", CHAPTER, "--word", "cats"], "'cats' is not in the text; its words are: 'Transformers'"),
    (["attention", CHAPTER, "--model", "no-such-org/no-such-model"], "not available locally"),
    (["attention", CHAPTER, "--model", "/nonexistent/folder"], "not available locally"),
    (["attention", "--trace", "/nonexistent.safetensors"], "not a readable shatterbox trace"),
    (["attention"], "give a TEXT"),
    (["attention", CHAPTER, "--word", "possess", "--format", "csv"], "--format csv is for attention tables"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_gives_one_clear_line(args, message):
    r = run(*args, env={"HF_HUB_OFFLINE": "1"})
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr


@pytest.mark.parametrize("text", ["I ❤️ 🤗 transformers", "مرحبا بالعالم", "naïve\u200bcafé"])
def test_odd_unicode_works(text):
    r = run("attention", text, "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["tokens"][0] == "[CLS]"


def test_long_text_warns_and_truncates():
    r = run("attention", " ".join(["word"] * 600), "--format", "json")
    assert r.exit_code == 0
    assert r.stderr.strip().startswith("warning: text is longer than 'default' accepts (512 tokens)")
    assert len(json.loads(r.stdout)["tokens"]) == 512


@pytest.mark.slow
def test_console_script_has_no_traceback():
    exe = os.path.join(os.path.dirname(sys.executable), "shatterbox")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "shatterbox.cli"]
    p = subprocess.run([*cmd, "attention", CHAPTER, "--layer", "9"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip() == "error: layer 9 is out of range: this model has layers 1-6 (numbered from 1)"


def test_heads_over_a_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join([CHAPTER, *PAIR, "", "The cat sat on the mat."] * 10), encoding="utf-8")
    r = run("heads", "--corpus", str(corpus), "--top", "5", "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["texts"] == 40 and len(d["ranking"]) == 5 and sum(d["summary"].values()) == 72
    assert {"layer", "head", "kind", "score", "reason"} <= set(d["ranking"][0])
    r = run("heads", CHAPTER)
    assert r.exit_code == 0 and "heads worth inspecting" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["heads"], "give a TEXT or --corpus FILE"),
    (["heads", "--corpus", "/nonexistent.txt"], "cannot read the corpus"),
])
def test_heads_bad_input(args, message):
    r = run(*args)
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output


@pytest.mark.slow
def test_png_outputs(tmp_path):
    table, heat = tmp_path / "t.png", tmp_path / "h.png"
    assert run("attention", CHAPTER, "--layer", "6", "--head", "6", "--png", str(table)).exit_code == 0
    assert run("heads", CHAPTER, "--png", str(heat), "--stat", "prev").exit_code == 0
    assert table.read_bytes()[:4] == heat.read_bytes()[:4] == b"\x89PNG"
    r = run("heads", CHAPTER, "--png", str(heat), "--stat", "nope")
    assert r.exit_code == 2 and "unknown statistic" in r.stderr


# --- explain ----------------------------------------------------------------------------------------------

WARM_UP = "I love playing chess with my friends."


@pytest.mark.slow
def test_explain_prints_coloured_words_and_plan():
    from shatterbox.classifiers.sentiment import sentiment

    r = run("explain", WARM_UP)
    assert r.exit_code == 0, r.stderr
    positive = sentiment().predict([WARM_UP])[0, 1]
    assert "exact Shapley" in r.stdout and f"positive {positive:.3f}" in r.stdout and "love" in r.stdout
    assert "comprehensiveness" in r.stdout
    assert r.stderr.startswith("8 words; model evaluations planned (at most): exact 256")


@pytest.mark.slow
def test_explain_all_is_one_table():
    r = run("explain", WARM_UP, "--method", "all", "--samples", "200")
    assert r.exit_code == 0, r.stderr
    first_words = {line.split()[0] for line in r.stdout.splitlines() if line.strip()}
    assert {"exact", "kernel", "owen", "lime", "ig", "gradxinput", "rollout"} <= first_words


@pytest.mark.slow
def test_explain_json_and_html(tmp_path):
    r = run("explain", WARM_UP, "--format", "json", "--method", "sampled", "--label", "negative")
    data = json.loads(r.stdout)
    assert data["label_name"] == "negative" and data["label"] == 0 and data["method"] == "sampled" and len(data["error"]) == 8
    out = tmp_path / "a.html"
    r = run("explain", "I <script>x</script> love it", "--format", "html", "--out", str(out))
    assert r.exit_code == 0 and "<script>x" not in out.read_text() and "&lt;script&gt;" in out.read_text()


def test_explain_zero_shot():
    r = run("explain", "The striker scored twice", "--zero-shot", "sports,politics", "--format", "json")
    assert json.loads(r.stdout)["label_name"] == "sports"


EXPLAIN_BAD = [
    (["explain", "chess"], "single word"),
    (["explain", ""], "empty"),
    (["explain", WARM_UP, "--model", "default"], "has no classification head"),
    (["explain", WARM_UP, "--label", "neutral"], "'neutral' is not one of this classifier's labels: 'negative', 'positive'"),
    (["explain", WARM_UP, "--method", "magic"], "unknown method"),
    (["explain", " ".join(["good"] * 16), "--method", "exact"], "needs 65,536 model evaluations"),
    (["explain", WARM_UP, "--method", "sampled", "--budget", "5"], "--budget 30"),
    (["explain", "good " * 600], "shorten the text"),
    (["explain", WARM_UP, "--zero-shot", "sports"], "at least two distinct"),
    (["explain", WARM_UP, "--masking", "blur"], "masking 'blur'"),
    (["explain", WARM_UP, "--model", "no-such-org/no-such-model"], "not available locally"),
]


@pytest.mark.parametrize("args,message", EXPLAIN_BAD)
def test_explain_bad_input_gives_one_clear_line(args, message):
    test_bad_input_gives_one_clear_line(args, message)


def test_explain_warns_when_precision_is_not_reached():
    r = run("explain", "The whole experience was a pleasure from booking to check out", "--method", "sampled", "--precision", "0.0001", "--budget", "300")
    assert r.exit_code == 0 and "warning: precision 0.0001 not reached" in r.stderr


def test_serve_defaults_to_loopback_and_refuses_bad_setup(monkeypatch):
    import shatterbox.web as web

    bound = {}
    monkeypatch.setattr(web, "serve", lambda model, **kwargs: bound.update(kwargs))
    assert run("serve").exit_code == 0 and bound["host"] == "127.0.0.1" and bound["port"] == 8000  # what it binds by default
    assert run("serve", "--host", "0.0.0.0").stderr.startswith("warning: listening on 0.0.0.0")
    monkeypatch.undo()
    for args, message in ((["serve", "--model", "/nonexistent/folder"], "not available locally"), (["serve", "--port", "70000"], "port 70000 is out of range")):
        r = run(*args, env={"HF_HUB_OFFLINE": "1"})
        assert r.exit_code == 2 and r.stderr.strip().startswith("error: ") and message in r.stderr


def test_explain_quick_mode():
    r = run("explain", "The whole experience was a pleasure.", "--pairs", "2", "--format", "json")
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["method"] == "sampled" and data["evaluations"] == 2 + 2 * 2 * 6
    assert "sampled 26" in r.stderr


@pytest.mark.slow
def test_harvest_then_read_the_store(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("The bank raised rates.\nWe sat on the river bank.\n", encoding="utf-8")
    store = str(tmp_path / "store")
    r = run("harvest", str(corpus), "--out", store, "--layers", "1,6", "--what", "hidden,mlp")
    assert r.exit_code == 0, r.stderr
    assert "stored 16 tokens of 2 sentences" in r.stderr and "duckdb.sql" in r.stdout
    info = json.loads(run("store", "info", store, "--format", "json").stdout)
    assert info["complete"] and [c["name"] for c in info["columns"]] == ["hidden_1", "mlp_1", "hidden_6", "mlp_6"]
    q = run("store", "query", store, "select word, count(*) as n from tokens where word = 'bank' group by word", "--format", "json")
    assert json.loads(q.stdout) == [{"word": "bank", "n": 2}]
    top = json.loads(run("store", "top", store, "mlp_6", "5", "--k", "3", "--format", "json").stdout)
    assert [t["rank"] for t in top] == [1, 2, 3] and top[0]["value"] >= top[1]["value"] >= top[2]["value"]
    assert "2 shards whole" in run("store", "verify", store).stdout or "1 shards whole" in run("store", "verify", store).stdout
    again = run("harvest", str(corpus), "--out", store, "--layers", "1,6", "--what", "hidden,mlp")
    assert again.exit_code == 0 and "stored 16 tokens" in again.stderr  # a finished store is kept as it is


def test_corpus_shows_the_shipped_corpus():
    r = run("corpus", "wordnet", "--where", "supersense=noun.animal", "--where", "kind=example", "-n", "2", "--format", "json")
    d = json.loads(r.stdout)
    from shatterbox.corpus import wordnet_corpus

    assert d["name"] == "wordnet" and len(d["rows"]) == 2
    assert d["sentences"] == len(wordnet_corpus().where(supersense="noun.animal", kind="example"))
    assert {row["supersense"] for row in d["rows"]} == {"noun.animal"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["harvest", "missing.txt", "--out", "{tmp}/s"], "error: no corpus file 'missing.txt'"),
        (["harvest", "wordnet", "-n", "3", "--out", "{tmp}/s", "--what", "logits"], "error: cannot harvest 'logits'"),
        (["harvest", "wordnet", "-n", "3", "--out", "{tmp}/s", "--where", "kind"], "error: cannot read --where 'kind'"),
        (["store", "info", "{tmp}"], "error: '{tmp}' is not a shatterbox store"),
        (["store", "query", "{store}", "select nope from tokens"], "error: the query failed"),
        (["store", "top", "{store}", "mlp_9", "0"], "error: the store has no column 'mlp_9'"),
        (["harvest", "wordnet", "-n", "4", "--out", "{store}", "--layers", "1"], "error: the store '{store}' holds corpus"),
    ],
)
def test_corpus_and_store_bad_input_is_one_line(tmp_path, args, message):
    store = tmp_path / "made"
    assert run("harvest", "wordnet", "-n", "3", "--out", str(store), "--layers", "1").exit_code == 0
    fill = lambda s: s.format(tmp=tmp_path, store=store)  # noqa: E731
    r = run(*[fill(a) for a in args])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(fill(message)), r.stderr


@pytest.mark.slow
def test_factors_fit_then_show_reads_contexts_from_the_store(tmp_path):
    store, out = str(tmp_path / "s"), str(tmp_path / "f.safetensors")
    assert run("harvest", "wordnet", "--out", store, "--limit", "80", "--layers", "1,2").exit_code == 0
    r = run("factors", "fit", store, "--out", out, "--factors", "24", "--epochs", "1", "--max-tokens", "400", "--alpha", "1.5",
            "--seeds", "2", "--format", "json")
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert set(info["reports"]) == {"1", "2"} and sum(info["levels"].values()) == 24
    assert info["spread"]["1"]["variance_explained_sd"] > 0 and set(info["spread"]) == {"1", "2"}
    r = run("factors", "show", out, "3", "--k", "4", "--format", "json")
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)
    assert len(rows) == 4 and all(row["token"] not in ("[CLS]", "[SEP]") for row in rows)
    assert [row["value"] for row in rows] == sorted((row["value"] for row in rows), reverse=True)
    bad = run("factors", "show", out, "99")
    assert bad.exit_code == 2 and "out of range" in bad.stderr and "Traceback" not in bad.stderr
    missing = run("factors", "show", str(tmp_path / "none.safetensors"), "1")
    assert missing.exit_code == 2 and "factors fit" in missing.stderr
    page = tmp_path / "factors.html"
    r = run("factors", "report", out, "--out", str(page), "--per-level", "1", "--k", "2")
    assert r.exit_code == 0, r.stderr
    text = page.read_text(encoding="utf-8")
    assert "Held-out quality per layer" in text and "<mark>" in text and "No polysemy table" in text  # 80 random sentences: no ambiguous word qualifies
    assert "Sentence embedding recovered" in text
    unwritable = run("factors", "report", out, "--out", str(tmp_path / "missing" / "r.html"), "--per-level", "1", "--k", "2")
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.stderr and "Traceback" not in unwritable.output


@pytest.mark.slow
def test_factors_fit_per_layer_numbers_factors_by_layer(tmp_path):
    store, out = str(tmp_path / "s"), str(tmp_path / "f.safetensors")
    assert run("harvest", "wordnet", "--out", store, "--limit", "60", "--layers", "1,2").exit_code == 0
    r = run("factors", "fit", store, "--out", out, "--factors", "12", "--epochs", "1", "--max-tokens", "300", "--per-layer")
    assert r.exit_code == 0, r.stderr
    assert "24 factors (12 per layer)" in r.stdout + r.stderr
    r = run("factors", "show", out, "15", "--k", "2")
    assert r.exit_code == 0 and "of the layer 2 dictionary" in r.stdout + r.stderr
    assert run("factors", "show", out, "24").exit_code == 2


@pytest.mark.slow
def test_help_starts_without_torch_or_transformers():
    import subprocess
    import sys

    probe = ("import sys; from typer.testing import CliRunner; from shatterbox.cli import app; "
             "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0 and 'explain' in r.stdout; "
             "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    lazy = subprocess.run([sys.executable, "-c", "import shatterbox as sb, sys; assert 'torch' not in sys.modules; "
                           "print(sb.load.__module__, 'torch' in sys.modules); import shatterbox.trace; "
                           "print(type(sb.capture).__name__, sb.capture.__module__)"], capture_output=True, text=True, timeout=120)
    # sb.capture stays the function even once the subpackage of the same name is imported
    assert lazy.stdout.split() == ["shatterbox.models", "True", "function", "shatterbox.trace"], lazy.stderr


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    store, factors = str(root / "s"), str(root / "f.safetensors")
    assert run("harvest", "wordnet", "--out", store, "--limit", "40", "--layers", "1").exit_code == 0
    assert run("factors", "fit", store, "--out", factors, "--factors", "8", "--epochs", "1", "--max-tokens", "200").exit_code == 0
    return store, factors


def _csv_rows(text: str) -> list[dict]:
    """Rows of a CSV print; fails on a rich table (box drawing) or ragged rows."""
    assert not set("┃━─│┏┡└") & set(text), text[:200]
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 2 and len({len(r) for r in rows}) == 1, rows[:3]
    return [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.mark.parametrize("verb", [
    ["attention", CHAPTER, "--layer", "2", "--head", "3"], ["demo"], ["heads", CHAPTER, "--top", "4"], ["corpus", "-n", "3"],
    ["store", "info", "{store}"], ["store", "query", "{store}", "select word, count(*) as n from tokens group by word"],
    ["store", "top", "{store}", "hidden_1", "0", "--k", "2"], ["factors", "fit", "{store}", "--out", "{tmp}/g.safetensors",
    "--factors", "8", "--epochs", "1", "--max-tokens", "200"], ["factors", "show", "{factors}", "1", "--k", "2"],
])
def test_every_table_verb_prints_csv(verb, small_store, tmp_path):
    store, factors = small_store
    args = [a.format(store=store, factors=factors, tmp=tmp_path) for a in verb]
    r = run(*args, "--format", "csv")
    assert r.exit_code == 0, r.stderr
    _csv_rows(r.stdout)


@pytest.mark.slow
def test_csv_numbers_equal_the_json(small_store, tmp_path):
    store, _ = small_store
    heads = _csv_rows(run("heads", CHAPTER, "--top", "4", "--format", "csv").stdout)
    ranking = json.loads(run("heads", CHAPTER, "--top", "4", "--format", "json").stdout)["ranking"]
    assert [(int(h["layer"]), int(h["head"]), h["kind"]) for h in heads] == [(r["layer"], r["head"], r["kind"]) for r in ranking]
    assert [float(h["score"]) for h in heads] == pytest.approx([r["score"] for r in ranking], abs=1e-6)
    info = json.loads(run("store", "info", store, "--format", "json").stdout)
    assert [c["name"] for c in _csv_rows(run("store", "info", store, "--format", "csv").stdout)] == [c["name"] for c in info["columns"]]
    out = str(tmp_path / "h.safetensors")
    fit = _csv_rows(run("factors", "fit", store, "--out", out, "--factors", "8", "--epochs", "1", "--max-tokens", "200", "--format", "csv").stdout)
    from shatterbox.factors import Factors

    assert float(fit[0]["variance explained"]) == pytest.approx(Factors.load(out).reports[1].variance_explained, abs=1e-9)


def test_a_repeated_word_says_which_occurrence_and_takes_word_hash_n():
    import shatterbox as sb
    from shatterbox.attention import attends_to

    text = "The bank of the river, not the bank downtown."
    first = run("attention", text, "--layer", "3", "--head", "2", "--word", "bank", "--format", "json")
    assert first.exit_code == 0 and "'bank' occurs 2 times: using the first (bank#1" in first.stderr
    second = run("attention", text, "--layer", "3", "--head", "2", "--word", "bank#2", "--format", "json")
    assert second.exit_code == 0 and "occurs" not in second.stderr
    trace = capture(sb.load(), text)
    want = attends_to(trace, 3, 2, trace.occurrences("bank")[1], level="token")
    got = json.loads(second.stdout)
    assert got != json.loads(first.stdout) and got == json.loads(json.dumps(want.to_dict()))
    bad = run("attention", text, "--layer", "3", "--head", "2", "--word", "bank#3")
    assert bad.exit_code == 2 and "use bank#1 to bank#2" in bad.stderr


def test_piped_tables_follow_columns_and_cut_no_number():
    r = run("demo", env={"COLUMNS": "80"})
    assert r.exit_code == 0 and "…" not in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    wide = run("demo", env={"COLUMNS": "200"})
    assert max(len(line) for line in wide.stdout.splitlines()) > 80


def test_arrow_tables_at_80_columns_keep_every_value_whole():
    table = run("corpus", "-n", "3", env={"COLUMNS": "80"})
    rows = json.loads(run("corpus", "-n", "3", "--format", "json").stdout)["rows"]
    assert table.exit_code == 0 and "…" not in table.stdout and max(len(line) for line in table.stdout.splitlines()) <= 80
    for row in rows:
        assert str(row["id"]) in table.stdout and str(row["offset"]) in table.stdout  # numbers whole; text may wrap


@pytest.mark.slow
def test_probe_command_prints_layers_and_writes_the_page(tmp_path):
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest

    store = harvest(load_corpus("wordnet", limit=300, seed=5), tmp_path / "s", layers="0,2")
    runner = CliRunner()
    page = tmp_path / "probe.html"
    r = runner.invoke(app, ["probe", str(store.root), "--property", "pos", "--folds", "3", "--out", str(page)])
    assert r.exit_code == 0, r.output
    assert "selectivity" in r.stdout and "best at layer" in r.stderr and page.read_text().count("<polyline") == 3
    data = json.loads(runner.invoke(app, ["probe", str(store.root), "--folds", "3", "--layers", "2", "--format", "json"]).stdout)
    assert [s["layer"] for s in data["result"]["layers"]] == [2] and data["random_weights"] is None
    bad = runner.invoke(app, ["probe", str(store.root), "--property", "colour"])
    assert bad.exit_code == 2 and "unknown token property 'colour'" in bad.stderr and "Traceback" not in bad.output
    bad = runner.invoke(app, ["probe", str(store.root), "--layers", "5"])
    assert bad.exit_code == 2 and "layer" in bad.stderr


@pytest.mark.slow
def test_project_command_writes_the_map_and_prints_its_faithfulness(tmp_path):
    from shatterbox.corpus import load_corpus
    from shatterbox.store import harvest

    store = harvest(load_corpus("wordnet", limit=60, seed=6), tmp_path / "s", layers="1,6")
    out = tmp_path / "map.html"
    r = runner.invoke(app, ["project", str(store.root), "--out", str(out), "--predict", "--colour", "prediction", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["layer"] for row in rows] == [1, 6] and all(0.4 < row["trustworthiness"] <= 1 for row in rows)
    assert '"defaultColour":"prediction"' in out.read_text(encoding="utf-8")
    bad = runner.invoke(app, ["project", str(store.root), "--out", str(out), "--method", "tsne"])
    assert bad.exit_code == 2 and "unknown projection 'tsne'" in bad.stderr and "Traceback" not in bad.output
    bad = runner.invoke(app, ["project", str(store.root), "--out", str(out), "--layers", "3"])
    assert bad.exit_code == 2 and "layer 3" in bad.stderr


@pytest.mark.slow
def test_project_colours_tokens_by_a_factor_code(tmp_path):
    from shatterbox.corpus import load_corpus
    from shatterbox.factors import Factors
    from shatterbox.projector import point_vectors, token_points
    from shatterbox.store import Store, harvest

    store = harvest(load_corpus("wordnet", limit=80, seed=7), tmp_path / "s", layers="1,2")
    fitted = tmp_path / "f.safetensors"
    r = runner.invoke(app, ["factors", "fit", str(store.root), "--out", str(fitted), "--factors", "16", "--epochs", "1", "--max-tokens", "500"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "map.html"
    r = runner.invoke(app, ["project", str(store.root), "--out", str(out), "--level", "token", "--limit", "60",
                            "--factors", str(fitted), "--factor", "3", "--colour", "factor 3"])
    assert r.exit_code == 0, r.output
    page = out.read_text(encoding="utf-8")
    data = json.loads(page.split('id="sbp-data">', 1)[1].split("</script>", 1)[0])
    name = next(k for k in data["colourings"] if k.startswith("factor 3 (layer "))
    layer = int(name.split("layer ")[1].rstrip(")"))
    factors = Factors.load(fitted)
    points = token_points(Store.open(store.root), limit=60)
    want = factors.codes(point_vectors(Store.open(store.root), points, [layer])[layer], layer, units=[3])[:, 3]
    np.testing.assert_allclose(data["colourings"][name]["values"], want, atol=1e-4)  # the page's colours are the factor's codes
    bad = runner.invoke(app, ["project", str(store.root), "--out", str(out), "--factor", "3"])
    assert bad.exit_code == 2 and "--factors and --factor go together" in bad.stderr


def test_generate_prints_the_heat_map_and_writes_what_the_api_returns(tiny_dir, tiny_models, tmp_path):
    from shatterbox.generation import explain_generation

    folder = tiny_dir["llama-gqa"]
    r = run("generate", "the model reads every word", "--model", folder, "-n", "2", "--method", "exact", "--format", "json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    e = explain_generation(tiny_models["llama-gqa"], "the model reads every word", max_new_tokens=2, method="exact")
    assert d["targets"] == e.targets and d["values"][0][:5] == pytest.approx(e.values[0, :5].tolist(), abs=1e-9)
    r = run("generate", "the model reads every word", "--model", folder, "-n", "2", "--method", "exact")
    assert r.exit_code == 0 and "why each generated token" in r.stdout and f"{e.values[0, 0]:+.2f}" in r.stdout
    planned = 2 ** len(e.sources) + (2 * len(e.sources) + 2) * len(e.targets)  # the plan comes first, before the work
    assert r.stderr.startswith(f"plan: exact attributions, at most {planned:,} forward passes")
    page = tmp_path / "g.html"
    r = run("generate", "a <script>alert(1)</script>", "--model", folder, "-n", "1", "--format", "html", "--out", str(page))
    text = page.read_text()  # the prompt travels as escaped JSON; the page's own two scripts are the only ones
    assert r.exit_code == 0 and "alert(1)" in text and "<script>alert" not in text and "\\u003cscript\\u003ealert" in text
    assert text.count("<script") == 2 and 'data-sb-plot="generation"' in text


@pytest.mark.parametrize("args,message", [
    (["generate", "hello", "--model", "default"], "no language-model head: generation needs a decoder such as --model gemma-3-270m"),
    (["generate", "hello", "--model", "missing.gguf"], "no GGUF file at 'missing.gguf'"),
    (["generate", " ", "--model", "TINY"], "the prompt is empty"),
    (["generate", "hello", "--model", "TINY", "--method", "lime"], "method 'lime' is not one of"),
])
def test_generate_bad_input_is_one_line(args, message, tiny_dir):
    r = run(*[tiny_dir["llama-gqa"] if a == "TINY" else a for a in args])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_cache_lists_and_clears_the_dequantised_models(tmp_path):
    env = {"SHATTERBOX_CACHE": str(tmp_path)}
    folder = tmp_path / "models" / "toy-123"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x" * 5_000_000)
    r = run("cache", env=env)
    assert r.exit_code == 0 and str(tmp_path / "models") in r.stdout and "toy-123  0.01 GB" in r.stdout
    r = run("cache", "--clear", env=env)
    assert r.exit_code == 0 and "0.01 GB" in r.stdout and not (tmp_path / "models").exists()
    assert "(empty)" in run("cache", env=env).stdout


def test_every_library_warning_is_shown_once_in_one_line_and_parameters_become_flags(capsys):
    import warnings

    import typer as _typer

    from shatterbox.cli._common import _friendly_errors, in_flags
    from shatterbox.errors import BudgetTooSmall, Note

    with _friendly_errors():
        for _ in range(3):
            warnings.warn("lbfgs failed to converge\n (status=1)", UserWarning)
        warnings.warn("an old numpy name", DeprecationWarning)
    assert capsys.readouterr().err.splitlines() == ["warning: lbfgs failed to converge (status=1)"]
    with pytest.raises(_typer.Exit):
        with _friendly_errors():
            raise BudgetTooSmall("too small: raise the budget (budget=30)", parameter="budget")
    assert capsys.readouterr().err.strip() == "error: too small: raise the budget (--budget 30)"
    note = Note("precision 0.01 not reached: raise it to about budget=1200", kind="warning", parameter="budget")
    assert in_flags(note) == "precision 0.01 not reached: raise it to about --budget 1200"
    assert in_flags("harvest with what=mlp layers=3, or overwrite=True") == "harvest with --what mlp --layers 3, or --overwrite"
    assert in_flags("kind=example stays: no such flag is meant", {"what"}) == "kind=example stays: no such flag is meant"
    assert in_flags("a linear probe cannot: use kind='mlp'") == "a linear probe cannot: use --kind mlp"  # probe's flag, not --engine
