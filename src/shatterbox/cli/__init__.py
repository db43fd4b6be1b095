"""The ``shatterbox`` command.

Layers and heads are numbered from 1, as in the book: on the 6-layer x 12-head default model,
``--layer`` is 1-6 and ``--head`` is 1-12.
"""

from __future__ import annotations

from shatterbox.cli._common import app

# each module registers its commands on ``app``; this order is the order of ``shatterbox --help``
from shatterbox.cli import attention  # noqa: E402,F401 - sentence level: attention, demo, heads, view, capture
from shatterbox.cli import explain  # noqa: E402,F401
from shatterbox.cli import generate  # noqa: E402,F401 - generate, cache
from shatterbox.cli import corpus  # noqa: E402,F401 - corpus, harvest, store
from shatterbox.cli import factors  # noqa: E402,F401
from shatterbox.cli import probes  # noqa: E402,F401 - probe, project
from shatterbox.cli import neurons  # noqa: E402,F401
from shatterbox.cli import patching  # noqa: E402,F401 - patch, ablate
from shatterbox.cli import lens  # noqa: E402,F401 - lens show|fit, steer
from shatterbox.cli import sae  # noqa: E402,F401 - sae import|export|score|probe|absorption|neuronpedia
from shatterbox.cli import serve  # noqa: E402,F401

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``shatterbox`` console script."""
    app()
