"""Attribution: which words drove a prediction (Shapley values first; LIME and gradients to come)."""

from shatterbox.attribution._shapley import ShapleyValues, coalitions, shapley_exact

__all__ = ["ShapleyValues", "coalitions", "shapley_exact"]
