"""Attribution: which words drove a prediction, by Shapley values, Owen values, LIME, gradients or rollout.

Examples:
    >>> from shatterbox.attribution import explain
    >>> a = explain(text="The staff were rude and the room was filthy.")
    >>> a.label_name, sorted(w for w, _ in a.top(2))
    ('negative', ['filthy', 'rude'])
"""

from shatterbox.attribution._explain import ALL_METHODS, DEFAULT_SAMPLES, METHODS, Attribution, Comparison, compare, explain, plan
from shatterbox.attribution._faithfulness import MASKING_BIAS, Faithfulness, faithfulness
from shatterbox.attribution._games import Game, TextGame, TokenGame, ValueGame
from shatterbox.attribution._gradients import grad_times_input, integrated_gradients
from shatterbox.attribution._kernel import kernel_shap
from shatterbox.attribution._rollout import attention_rollout
from shatterbox.attribution._shapley import SampledShapley, ShapleyValues, owen_values, shapley_exact, shapley_sampled
from shatterbox.attribution._teaching import chapter_game, word_game
from shatterbox.attribution.parts import make_game
from shatterbox.errors import moved_names
from shatterbox.options import EXPLAIN, ExplainOptions

__all__ = [
    "ALL_METHODS", "DEFAULT_SAMPLES", "EXPLAIN", "MASKING_BIAS", "METHODS",
    "Attribution", "Comparison", "ExplainOptions", "Faithfulness", "Game", "SampledShapley", "ShapleyValues", "TextGame", "TokenGame", "ValueGame",
    "attention_rollout", "chapter_game", "compare", "explain", "faithfulness", "grad_times_input", "integrated_gradients", "kernel_shap",
    "make_game", "owen_values", "plan", "shapley_exact", "shapley_sampled", "word_game",
]

# building blocks that moved to shatterbox.attribution.parts (served here with a deprecation warning for one release)
__getattr__ = moved_names(__name__, {name: f"shatterbox.attribution.parts:{name}" for name in (
    "KernelDesign", "coalitions", "curve_masks", "evaluate_together", "first_round_coalitions", "gauss_legendre", "kernel_coalitions",
    "kernel_design", "kernel_fit", "lime_fit", "lime_masks", "lime_weights", "methods_for", "planned_evaluations", "resolve_method",
    "resolve_target", "rollout_relevance", "run_method")})
