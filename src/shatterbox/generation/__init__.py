"""Generation attribution: which prompt words (and earlier generated tokens) drove each generated token.

``explain_generation`` generates greedily (or takes a continuation), then attributes each generated
token's log-probability with Shapley values over words (exact for short prompts, sampled with error
bars above; the same games, masking and samplers as :func:`shatterbox.explain`), integrated gradients
on the embeddings, or attention rollout; optionally against a contrast token (why this token rather
than another).

Examples:
    >>> from shatterbox.generation import GENERATION_METHODS
    >>> GENERATION_METHODS
    ('shapley', 'exact', 'sampled', 'ig', 'rollout')
"""

from shatterbox.generation._explain import (
    MAX_EXACT,
    Generation,
    GenerationExplanation,
    end_ids,
    explain_generation,
    generate,
    token_integrated_gradients,
)
from shatterbox.errors import moved_names
from shatterbox.options import GENERATION, GENERATION_METHODS, GenerationOptions
from shatterbox.generation._game import GenerationGame, Prompt, tokenize_prompt

__all__ = [
    "GENERATION",
    "GENERATION_METHODS",
    "MAX_EXACT",
    "Generation",
    "GenerationExplanation",
    "GenerationGame",
    "GenerationOptions",
    "Prompt",
    "end_ids",
    "explain_generation",
    "generate",
    "token_integrated_gradients",
    "tokenize_prompt",
]

__getattr__ = moved_names(__name__, {"METHODS": "shatterbox.generation:GENERATION_METHODS",
                                     "integrated_gradients": "shatterbox.generation:token_integrated_gradients"})
