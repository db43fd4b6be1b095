"""The manual's examples: every documented command parses, the README's and Getting started's run, every Python
example runs, and the README stays a short front page."""

import os
import re
import shlex
from pathlib import Path

import pytest
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
