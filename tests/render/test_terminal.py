"""Terminal tables at 80 columns: every number printed whole, nothing wider than the terminal."""

import pytest
import io
import re

import numpy as np
from rich.console import Console

from shatterbox.attention import attention_table
from shatterbox.attribution import ValueGame, explain
from shatterbox.render.terminal import ColumnBlocks, comparison_renderable, table_renderable
from tests.conftest import CHAPTER
from shatterbox import capture


def _print(renderable, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+\.\d+", text)


def test_a_wide_attention_table_is_split_into_blocks_with_every_value_whole(default_model):
    trace = capture(default_model, CHAPTER + " Attention heads read every other word in the sentence.")
    table = attention_table(trace, 3, 4, level="word")
    text = _print(table_renderable(table))
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    expected = sorted(f"{v:.3f}" for v in table.values.ravel())
    assert sorted(_numbers(text)) == expected  # every value once, none cut
    assert text.count("attending \\ attended") >= 3  # blocks, each with the row labels


def test_the_comparison_table_keeps_method_names_and_numbers_at_80_columns():
    weights = np.array([0.4, -0.25, 0.1, 0.3, -0.05, 0.2])
    comparison = explain(ValueGame(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"], lambda m: m @ weights), method="all")
    text = _print(comparison_renderable(comparison))
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for row in comparison.rows():
        assert row["method"] in text and f"{row['comprehensiveness']:.3f}" in text and f"{row['seconds']:.3f}" in text


def test_blocks_fit_the_width_they_are_given():
    blocks = ColumnBlocks(["row", *(f"c{i}" for i in range(20))], [["r", *("0.123456" for _ in range(20))]])
    for width in (40, 80, 120):
        text = _print(blocks, width)
        assert max(len(line) for line in text.splitlines()) <= width and text.count("0.123456") == 20


@pytest.mark.slow
def test_sixteen_colour_terminals_get_readable_cells(default_model):
    """TERM=xterm: no light text on a light background and no dark text on a dark one (rich rounded the
    shades to the nearest grey before, printing white on light grey)."""
    from shatterbox.render.terminal import attribution_renderable, use_palette

    light_bg, dark_bg = {"47", "100", "107", "103", "106"}, {"40", "44", "41", "45"}
    light_fg, dark_fg = {"37", "97"}, {"30"}
    table = attention_table(capture(default_model, CHAPTER), 3, 1)
    a = explain(text="I love playing chess with my friends.")
    for system, expect_pairs in (("standard", True), ("truecolor", False)):
        use_palette(system)
        try:
            console = Console(file=io.StringIO(), color_system=system, force_terminal=True, width=200)
            console.print(table_renderable(table))
            console.print(attribution_renderable(a))
            out = console.file.getvalue()
        finally:
            use_palette("truecolor")
        pairs = re.findall(r"\x1b\[((?:\d+;)*\d+)m", out)
        codes = [set(p.split(";")) for p in pairs]
        if expect_pairs:
            assert codes and not any((c & light_fg and c & light_bg) or (c & dark_fg and c & dark_bg) for c in codes)
            assert any("44" in c for c in codes)  # the strongest cells are still marked
        else:
            assert any("48" in c for c in codes)  # full colour keeps its shades (24-bit backgrounds)
