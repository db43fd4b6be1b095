"""The manual's examples: every documented command parses, the README's and Getting started's run, every Python
example runs, and the README stays a short front page."""

import os
import re
import shlex
from pathlib import Path

import pytest
import transformers as tf
import typer
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = [ROOT / "README.md", ROOT / "docs" / "getting-started.md"]  # their shell examples run, in order


def blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def commands(page: Path) -> list[list[str]]:
    """The ``shatterbox`` command lines of ``page``'s bash blocks, as argument lists (comments and ``&&`` split off)."""
    found = []
    for block in blocks(page, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("  #")[0].split("&&"):
                words = shlex.split(part)
                if words[:1] == ["shatterbox"]:
                    found.append(words[1:])
    return found


def parse(args: list[str]) -> None:
    """Parse ``args`` as the CLI would, without running the command: unknown commands or flags raise."""
    from shatterbox.cli import app

    command, rest = typer.main.get_command(app), list(args)
    while hasattr(command, "commands"):
        name = rest.pop(0)
        command = command.commands[name]
    command.make_context(name, rest)


@pytest.mark.slow  # 2 s: every command of the manual parsed
def test_every_documented_command_parses():
    lines = [(page.name, args) for page in PAGES for args in commands(page)]
    assert len(lines) > 60
    bad = []
    for name, args in lines:
        try:
            parse(args)
        except Exception as exc:  # noqa: BLE001 - collect them all
            bad.append(f"{name}: shatterbox {' '.join(args)}: {exc}")
    assert bad == []


def test_the_parse_check_sees_a_wrong_flag():
    with pytest.raises(Exception, match="No such option"):
        parse(["attention", "hello", "--layr", "2"])


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN, ids=lambda p: p.name)
def test_the_front_page_commands_run(page, tmp_path, monkeypatch, default_model):
    from shatterbox.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in commands(page):
        if args[:1] in (["serve"], ["demo"]):  # serve runs until stopped; demo: tests/test_cli.py
            continue
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"shatterbox {' '.join(args)}: {result.stderr}"
        assert "Traceback" not in result.output


MANUAL = [ROOT / "docs" / name for name in ("cli.md", "store.md", "factors.md", "generation.md", "patching.md")]
PLACES = {"path/to/local/model": "bert", "gemma-3-270m": "llama-gqa"}  # -> tiny models
SMALLER = {"--limit": "120", "--factors": "32", "--k": "4", "--sample": "2", "--units": "0-3", "--layer": "2"}  # sizes for a test
FOCUS = {"wordnet-senses": ["--where", "word=heavy"]}  # the sentences of the word factors.md looks at, not a sample
NOT_RUN = (["serve"], ["demo"])  # serve runs until stopped; demo: tests/test_cli.py


def for_a_test(args: list[str], models: dict[str, str], text: str = "") -> list[str]:
    """A documented command with its placeholders filled ("..." is the page's last text, tiny models stand in for paths
    and the decoder) and its sizes made small, so the manual's commands run in seconds; the flags stay the page's."""
    out = [text if a == "..." else models.get(PLACES.get(a, a), PLACES.get(a, a)) for a in args]
    out = [_smaller(out[i - 1], a) if i else a for i, a in enumerate(out)]
    if out[0] == "harvest" and "--limit" not in out:
        out += FOCUS.get(out[1], ["--limit", SMALLER["--limit"]])
    if out[0] == "generate" and "--model" not in out:
        out += ["--model", models["llama-gqa"]]
    return out


def _smaller(flag: str, value: str) -> str:
    """The test's size for ``flag``, or the page's when that is smaller already."""
    small = SMALLER.get(flag)
    if small is None:
        return value
    return value if value.isdigit() and small.isdigit() and int(value) < int(small) else small


def test_the_manual_commands_are_made_small_but_keep_their_flags():
    got = for_a_test(["factors", "fit", "s", "--factors", "1024", "--k", "32"], {})
    assert got == ["factors", "fit", "s", "--factors", "32", "--k", "4"]
    assert for_a_test(["attention", "...", "--model", "path/to/local/model"], {"bert": "/m"}, "Hi there.") == ["attention", "Hi there.", "--model", "/m"]


@pytest.mark.slow
@pytest.mark.parametrize("page", MANUAL, ids=lambda p: p.name)
def test_the_manual_commands_run(page, tmp_path, monkeypatch, default_model, tiny_dir):
    from shatterbox.cli import app

    tf.BertForSequenceClassification(tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                                                   id2label={0: "NEGATIVE", 1: "POSITIVE"})).save_pretrained(tmp_path / "path/to/classifier")
    default_model.tokenizer.save_pretrained(tmp_path / "path/to/classifier")
    (tmp_path / "sentences.txt").write_text("The cat sat on the mat.\nA bank by the river.\nHe scored twice.\n", encoding="utf-8")
    (tmp_path / "reviews.txt").write_text("A boring film.\nA wonderful, moving story.\nBoring and too long.\nI loved it.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runner, ran, text = CliRunner(), 0, ""
    for args in commands(page):
        if args[:1] in NOT_RUN:
            continue
        text = next((a for a in args[1:2] if " " in a and a != "..."), text)
        result = runner.invoke(app, for_a_test(args, tiny_dir, text))
        assert result.exit_code == 0, f"shatterbox {' '.join(args)}: {result.stderr}"
        assert "Traceback" not in result.output
        ran += 1
    assert ran >= {"cli.md": 22, "store.md": 6, "factors.md": 8, "generation.md": 7, "patching.md": 6}[page.name]


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=lambda p: p.name)
def test_the_python_examples_run(page, tmp_path, monkeypatch, default_model):
    monkeypatch.chdir(tmp_path)
    for block in blocks(page, "python"):
        exec(compile(block, f"{page.name} example", "exec"), {"__name__": "__docs__"})


def test_the_readme_is_a_short_front_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count("\n") <= 250
    for link in re.findall(r"\]\((docs/[^)#]+)\)", text):
        assert (ROOT / link).is_file(), link
    assert os.path.isfile(ROOT / "mkdocs.yml")
