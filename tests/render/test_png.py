import numpy as np
import pytest

import shatterbox as sb
from shatterbox.errors import InputError
from shatterbox.heads import head_stats
from shatterbox.render.png import stat_png, table_png


def _png_size(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_table_png(tmp_path, chapter_trace):
    w, h = _png_size(table_png(sb.attention_table(chapter_trace, 6, 6), tmp_path / "t.png"))
    assert w > 300 and h > 200


def test_stat_png_and_unknown_stat(tmp_path, chapter_trace):
    stats = head_stats([chapter_trace])
    assert _png_size(stat_png(stats, "prev", tmp_path / "s.png"))[0] > 300
    with pytest.raises(InputError, match="unknown statistic 'focus': choose one of agreement, entropy"):
        stat_png(stats, "focus", tmp_path / "x.png")
