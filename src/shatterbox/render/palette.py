"""The colours of every drawing, defined once: Python draws with them, and pages get them as data (``palette.js``
receives :func:`palette_json`; CSS reads the variables :func:`css_variables` sets), so the terminal, the HTML pages,
the notebook and the web app colour a value the same way.

================  ==============================================================================
``diverging``     signed values (attributions, heat maps): red pushes up, blue down; opacity = |value|
``ramp``          weights in [0, 1] (attention, activations): white to dark blue, square-root scale
================  ==============================================================================

Examples:
    >>> diverging(0.5), ramp(1.0)
    ((255, 0, 81, 0.5), (8, 69, 148, 1.0))
"""

from __future__ import annotations

import json
import math

UP = (255, 0, 81)  # a value that raises the output
DOWN = (0, 139, 251)  # a value that lowers it
LOW = (255, 255, 255)  # weight 0
HIGH = (8, 69, 148)  # weight 1
MISSING = "#eee"  # a cell with no value (a source after the token)

__all__ = ["DOWN", "HIGH", "LOW", "MISSING", "UP", "css_variables", "diverging", "palette_json", "ramp"]


def diverging(value: float) -> tuple[int, int, int, float]:
    """RGB and opacity for a value scaled to [-1, 1]: red for positive, blue for negative.

    Examples:
        >>> diverging(1.0), diverging(-0.5)[:3], diverging(-2.0)[3]
        ((255, 0, 81, 1.0), (0, 139, 251), 1.0)
    """
    v = min(max(float(value), -1.0), 1.0)
    r, g, b = UP if v >= 0 else DOWN
    return r, g, b, _half_up(abs(v) * 1000) / 1000


def ramp(weight: float) -> tuple[int, int, int, float]:
    """RGB for a weight in [0, 1] on the single-hue scale (square root, so small weights stay visible), and the
    scale position (text turns white past 0.55).

    Examples:
        >>> ramp(0.0), ramp(0.25)
        ((255, 255, 255, 0.0), (132, 162, 202, 0.5))
    """
    s = min(max(float(weight), 0.0), 1.0) ** 0.5
    r, g, b = (_half_up(lo + (hi - lo) * s) for lo, hi in zip(LOW, HIGH))
    return r, g, b, s


def palette_json() -> str:
    """The palette as the JSON object ``palette.js`` reads (``window.shatterboxPalette``).

    Examples:
        >>> json.loads(palette_json())["up"]
        [255, 0, 81]
    """
    return json.dumps({"up": UP, "down": DOWN, "low": LOW, "high": HIGH, "missing": MISSING})


def css_variables() -> str:
    """CSS custom properties of the palette, for pages whose style sheets colour with them.

    Examples:
        >>> css_variables()[:40]
        ':root{--sb-up:rgb(255,0,81);--sb-down:rg'
    """
    rgb = lambda c: f"rgb({c[0]},{c[1]},{c[2]})"  # noqa: E731
    return f":root{{--sb-up:{rgb(UP)};--sb-down:{rgb(DOWN)};--sb-high:{rgb(HIGH)};--sb-missing:{MISSING}}}"


def _half_up(x: float) -> int:
    """Round half up, as JavaScript's ``Math.round`` does (Python's ``round`` goes to even)."""
    return math.floor(x + 0.5)
