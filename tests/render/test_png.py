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
    import matplotlib.image as mpimg

    table = sb.attention_table(chapter_trace, 6, 6)
    path = table_png(table, tmp_path / "t.png")
    w, h = _png_size(path)
    assert w > 300 and h > 200
    pixels = mpimg.imread(path)[..., :3].reshape(-1, 3)
    blue = pixels[(pixels[:, 2] - pixels[:, 0] > 0.25)]  # cells of the single-hue scale (text and axes are grey)
    n = len(table.rows)
    assert len(blue) > 0.05 * w * h  # the cells are drawn, not an empty frame
    assert len(np.unique(blue.round(2), axis=0)) >= min(n, 6)  # shades follow the weights: several levels, not one fill


def test_stat_png_and_unknown_stat(tmp_path, chapter_trace):
    stats = head_stats([chapter_trace])
    assert _png_size(stat_png(stats, "prev", tmp_path / "s.png"))[0] > 300
    with pytest.raises(InputError, match="unknown statistic 'focus': choose one of agreement, entropy"):
        stat_png(stats, "focus", tmp_path / "x.png")
