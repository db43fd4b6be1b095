"""Building blocks other analyses reuse — games, samplers, design and quadrature helpers, method dispatch.

Not the user-facing API (that is :mod:`shatterbox.attribution`): corpus attributions and generation attribution
build on these, and tests reach them to check each piece against its oracle.
"""

from shatterbox.attribution._explain import make_game, methods_for, planned_evaluations, resolve_method, resolve_target, run_method
from shatterbox.attribution._faithfulness import curve_masks
from shatterbox.attribution._games import evaluate_together
from shatterbox.attribution._gradients import gauss_legendre
from shatterbox.attribution._kernel import KernelDesign, kernel_coalitions, kernel_design, kernel_fit
from shatterbox.attribution._lime import lime_fit, lime_masks, lime_weights
from shatterbox.attribution._rollout import rollout_relevance
from shatterbox.attribution._shapley import coalitions, first_round_coalitions

__all__ = ["KernelDesign", "coalitions", "curve_masks", "evaluate_together", "first_round_coalitions", "gauss_legendre", "kernel_coalitions",
           "kernel_design", "kernel_fit", "lime_fit", "lime_masks", "lime_weights", "make_game", "methods_for", "planned_evaluations",
           "resolve_method", "resolve_target", "rollout_relevance", "run_method"]
