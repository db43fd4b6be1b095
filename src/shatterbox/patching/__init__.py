"""Causal tests: ablate and patch heads, neurons, MLPs, the residual stream and directions, and measure what changes.

Interventions are forward hooks on the unmodified Hugging Face model, one per row of a batch, so a sweep of many
components costs a few forward passes. :func:`patch` patches every component between a clean and a corrupted text;
:func:`attribution_patch` estimates the same cells from one forward and backward pass.

Examples:
    >>> from shatterbox.patching import patch
    >>> r = patch("The film was not bad.", "The film was very bad.", component="hidden", layers=[6])
    >>> r.values.shape
    (1, 8)
"""

from shatterbox.patching._hooks import Intervention, Site, add, check_site, collecting, intervening, remove_direction, replace, widening, zero
from shatterbox.patching._ablate import ABLATIONS, AblationResult, CausalHeads, ablate, causal_heads, component_sites, site_means
from shatterbox.patching._patch import DIRECTIONS, MOVES, PATCH_COMPONENTS, Pair, PatchResult, attribution_patch, pair_texts, patch, patch_report, rank_agreement, sweep
from shatterbox.patching._units import (UNIT_TEXTS, CausalUnits, DirectionEffects, causal_units, embedding_effects, factor_atom,
                                        probe_direction_effects, sentence_effects)
from shatterbox.patching._targets import (CLASSIFIER_MEASURES, LM_MEASURES, ClassifierTarget, LanguageModelTarget, Scores, Target,
                                          make_target, word_positions)

__all__ = ["ABLATIONS", "AblationResult", "CLASSIFIER_MEASURES", "CausalHeads", "CausalUnits", "ClassifierTarget", "DirectionEffects", "DIRECTIONS", "Intervention",
           "LM_MEASURES", "LanguageModelTarget", "MOVES", "PATCH_COMPONENTS", "Pair", "PatchResult", "Scores", "Site", "Target", "UNIT_TEXTS", "ablate", "add",
           "attribution_patch", "causal_heads", "causal_units", "embedding_effects", "factor_atom", "check_site", "collecting", "component_sites", "intervening", "make_target", "pair_texts",
           "patch", "patch_report", "probe_direction_effects", "rank_agreement", "remove_direction", "replace", "sentence_effects", "site_means", "sweep", "widening", "word_positions", "zero"]
