"""Neurons and factors explained in words and scored by simulation (OpenAI 2023; EleutherAI's delphi), offline.

A unit is one column of activations in the store: an MLP neuron, or a factor of a fitted factors file.
From the store alone (the model is not run again) each unit gets its top-activating excerpts, random
excerpts and quantiles; an explainer writes an explanation from half of the top excerpts (and as many random
ones); a simulator predicts every token's 0–10 activation from the explanation alone, and the scores are
measured on the held-out half and on held-out random excerpts:

- **correlation** of simulated with true activations, pooled over tokens (OpenAI's all-at-once score);
- **detection**: can a judge told the explanation tell top excerpts from random ones (balanced accuracy, chance 0.5);
- **fuzzing**: can it tell the truly activating tokens of an excerpt from as many wrongly highlighted ones.

Each has a bootstrap 95 % interval over excerpts, and each is also measured for three baselines through
the same simulator and judge: a random explanation, a shuffled one (another unit's) and a token lookup (the
tokens where the explainer's excerpts peak). An explanation is *flagged* unless its correlation beats the
shuffled and the token-lookup baselines by at least 0.05 with the paired bootstrap interval above 0.

Examples:
    >>> import tempfile
    >>> from shatterbox.corpus import load_corpus
    >>> from shatterbox.store import harvest
    >>> s = harvest(load_corpus("wordnet", limit=80), tempfile.mkdtemp(), layers="2", what="mlp")
    >>> t = explain_units(lambda l: Units.neurons(s, l), {2: [0, 1]}, settings=NeuronSettings(n_explain=5, n_top=5, n_random=5))
    >>> sorted(t.column("unit").to_pylist())
    [0, 1]
"""

from shatterbox.errors import moved_names
from shatterbox.neurons._llm import ChatClient, LLMExplainer, LLMJudge, Usage, detect_prompt, estimate, explain_prompt, fuzz_prompt, text_of
from shatterbox.neurons._local import LMSimulator
from shatterbox.neurons._offline import Explainer, Simulator, TokenExplainer, TokenSimulator, parse, random_explanation, token_lookup
from shatterbox.neurons._run import Explained, NeuronSettings, explain_records, explain_unit, explain_units, is_dead, read_run, unit_payload, vocabulary
from shatterbox.neurons._score_unit import BASELINES, MARGIN, Judge, SimulationJudge, fuzz_items, score, verdict
from shatterbox.neurons._scoring import Score, balanced_accuracy, correlation_score, discretise, paired_difference
from shatterbox.neurons._units import Excerpt, Records, Units, parse_units, records, sample_units, sentence_maxima

__all__ = ["BASELINES", "MARGIN", "ChatClient", "LLMExplainer", "LLMJudge", "LMSimulator", "Usage", "detect_prompt", "estimate", "explain_prompt", "fuzz_prompt", "text_of", "Excerpt", "Explained", "Explainer", "Judge", "Records", "Score", "NeuronSettings", "SimulationJudge", "Simulator",
           "TokenExplainer", "TokenSimulator", "Units", "balanced_accuracy", "correlation_score", "discretise", "explain_records", "explain_unit", "explain_units", "is_dead", "unit_payload",
           "fuzz_items", "parse_units", "sample_units", "paired_difference", "parse", "random_explanation", "read_run", "records", "vocabulary", "score", "sentence_maxima", "token_lookup", "verdict"]

__getattr__ = moved_names(__name__, {"Settings": "shatterbox.neurons:NeuronSettings"})
