"""shatterbox: open the black box of transformer models, offline.

Capture one forward pass into a :class:`Trace`, then analyse it.

Example:
    >>> import shatterbox as sb
    >>> trace = sb.load().capture("Transformers possess surprising emerging features.")
    >>> table = sb.attention_table(trace, layer=6, head=6, level="word")
    >>> round(float(table.values.sum(axis=1)[0]), 6)
    1.0
"""

from shatterbox.models import DEFAULT_MODEL, LoadedModel, load, wrap
from shatterbox.capture import Trace, TruncationWarning, capture, capture_batch
from shatterbox.attention import AttentionSteps, AttentionTable, attention_steps, attention_table, attends_to
from shatterbox.errors import ShatterboxError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "AttentionSteps",
    "AttentionTable",
    "LoadedModel",
    "ShatterboxError",
    "Trace",
    "TruncationWarning",
    "attends_to",
    "attention_steps",
    "attention_table",
    "capture",
    "capture_batch",
    "load",
    "wrap",
]
