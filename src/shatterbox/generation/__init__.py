"""Generation attribution: which prompt words (and earlier generated tokens) drove each generated token.

``explain_generation`` generates greedily (or takes a continuation), then attributes each generated
token's log-probability with Shapley values over words (exact for short prompts, sampled with error
bars above; the same games, masking and samplers as :func:`shatterbox.explain`), integrated gradients
on the embeddings, or attention rollout; optionally against a contrast token (why this token rather
than another).

Examples:
    >>> from shatterbox.generation import METHODS
    >>> METHODS
    ('shapley', 'exact', 'sampled', 'ig', 'rollout')
"""

from shatterbox.generation._explain import (
    MAX_EXACT,
    METHODS,
    Generation,
    GenerationExplanation,
    explain_generation,
    generate,
    integrated_gradients,
)
from shatterbox.options import GENERATION, GenerationOptions
from shatterbox.generation._game import GenerationGame, Prompt, tokenize_prompt

__all__ = [
    "GENERATION",
    "MAX_EXACT",
    "METHODS",
    "Generation",
    "GenerationExplanation",
    "GenerationGame",
    "GenerationOptions",
    "Prompt",
    "explain_generation",
    "generate",
    "integrated_gradients",
    "tokenize_prompt",
]
