"""Chapter-3 attention analysis: probability tables, ranked words, and the computation step by step.

Layers and heads are numbered from 1 (layer 1 head 1 is ``trace.attentions[0, 0]``).
Rows are the attending token (query), columns the attended token (key); every row sums to 1.

Examples:
    >>> from shatterbox import capture, load
    >>> trace = capture(load(), "Transformers possess surprising emerging features.")
    >>> t = attention_table(trace, layer=1, head=1)
    >>> t.rows == t.columns == trace.labels
    True
"""

from shatterbox.attention._recompute import recompute_attention, sliding_window
from shatterbox.attention._steps import AttentionSteps, attention_steps
from shatterbox.attention._table import NUMBERING, AttentionTable, Ranking, attends_to, attention_table, merge_words

__all__ = ["NUMBERING", "AttentionSteps", "AttentionTable", "Ranking", "attends_to", "attention_steps", "attention_table", "merge_words", "recompute_attention", "sliding_window"]
