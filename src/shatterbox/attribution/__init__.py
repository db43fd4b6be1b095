"""Attribution: which words drove a prediction, by Shapley values, Owen values, LIME, gradients or rollout.

Examples:
    >>> from shatterbox.attribution import explain
    >>> a = explain(text="The staff were rude and the room was filthy.")
    >>> a.label_name, sorted(w for w, _ in a.top(2))
    ('negative', ['filthy', 'rude'])
"""

from shatterbox.options import EXPLAIN, ExplainOptions
from shatterbox.attribution._explain import (
    ALL_METHODS,
    DEFAULT_SAMPLES,
    METHODS,
    Attribution,
    Comparison,
    explain,
    make_game,
    methods_for,
    plan,
    planned_evaluations,
    resolve_method,
    resolve_target,
    run_method,
)
from shatterbox.attribution._faithfulness import MASKING_BIAS, Faithfulness, curve_masks, faithfulness
from shatterbox.attribution._games import Game, TextGame, TokenGame, ValueGame, evaluate_together
from shatterbox.attribution._gradients import gauss_legendre, grad_times_input, integrated_gradients
from shatterbox.attribution._kernel import KernelDesign, kernel_coalitions, kernel_design, kernel_fit, kernel_shap
from shatterbox.attribution._lime import lime_fit, lime_masks, lime_weights
from shatterbox.attribution._teaching import chapter_game, word_game
from shatterbox.attribution._rollout import attention_rollout, rollout_relevance
from shatterbox.attribution._shapley import (
    SampledShapley,
    ShapleyValues,
    coalitions,
    first_round_coalitions,
    owen_values,
    shapley_exact,
    shapley_sampled,
)

__all__ = [
    "ALL_METHODS",
    "DEFAULT_SAMPLES",
    "EXPLAIN",
    "ExplainOptions",
    "curve_masks",
    "evaluate_together",
    "first_round_coalitions",
    "METHODS",
    "Attribution",
    "Comparison",
    "Faithfulness",
    "Game",
    "SampledShapley",
    "ShapleyValues",
    "TextGame",
    "TokenGame",
    "ValueGame",
    "attention_rollout",
    "chapter_game",
    "coalitions",
    "explain",
    "faithfulness",
    "gauss_legendre",
    "MASKING_BIAS",
    "grad_times_input",
    "integrated_gradients",
    "KernelDesign",
    "kernel_coalitions",
    "kernel_design",
    "kernel_fit",
    "kernel_shap",
    "lime_fit",
    "lime_masks",
    "lime_weights",
    "make_game",
    "methods_for",
    "plan",
    "owen_values",
    "planned_evaluations",
    "resolve_method",
    "resolve_target",
    "rollout_relevance",
    "run_method",
    "shapley_exact",
    "shapley_sampled",
    "word_game",
]
