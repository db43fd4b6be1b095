"""One source for every default: each analysis declares its options once, as a frozen dataclass of :func:`option`
fields, and every front end reads them from there — the library's keyword defaults, the CLI's flags
(:func:`typer_option`), the web app's request models (:func:`request_fields`), the page's form fields (served as
JSON by ``/api/options``) and the docs.

Examples:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo:
    ...     steps: int = option(32, "Gauss-Legendre steps.", ge=2, le=256)
    >>> Demo().steps, spec(Demo, "steps").le
    (32, 256)
    >>> describe(Demo)
    {'steps': {'default': 32, 'help': 'Gauss-Legendre steps.', 'ge': 2, 'le': 256, 'choices': None}}
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

__all__ = ["SAE", "SaeOptions", "ABLATE", "ANALYSES", "AblateOptions", "LENS", "LensOptions", "TUNED_LENS", "TunedLensOptions", "STEER", "SteerOptions", "EXACT_UP_TO", "PATCH", "PatchOptions", "EXPLAIN", "EXPLAIN_METHODS", "GENERATION", "GENERATION_METHODS", "PROBE", "PROJECT", "RANKING", "ExplainOptions",
           "GenerationOptions", "ProbeOptions", "ProjectOptions", "RankingOptions", "Spec", "describe", "option", "request_fields", "spec", "specs", "typer_option"]


@dataclass(frozen=True)
class Spec:
    """One option: its default, a one-line help, its range (``ge``/``le``, inclusive) or its ``choices``."""

    default: Any
    help: str
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return {"default": self.default, "help": self.help, "ge": self.ge, "le": self.le,
                "choices": None if self.choices is None else list(self.choices)}


def option(default: Any, help: str, *, ge: float | None = None, le: float | None = None,
           choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field carrying its :class:`Spec` (use as the field's default)."""
    return field(default=default, metadata={"spec": Spec(default, help, ge, le, choices)})


def specs(options: type) -> dict[str, Spec]:
    """Every option of the options class ``options``, by parameter name."""
    return {f.name: f.metadata["spec"] for f in fields(options) if "spec" in f.metadata and f.default is not MISSING}


def spec(options: type, name: str) -> Spec:
    """The :class:`Spec` of option ``name``."""
    return specs(options)[name]


def describe(options: type) -> dict[str, dict[str, Any]]:
    """``options`` as JSON: name -> default, help, range and choices (what ``/api/options`` serves)."""
    return {name: s.to_dict() for name, s in specs(options).items()}


def typer_option(options: type, name: str, *flags: str, help: str | None = None) -> Any:
    """A ``typer.Option`` for option ``name`` with its default, help and range (``flags``: default ``--name``).

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Demo:
        ...     max_new_tokens: int = option(6, "Tokens to generate.", ge=1, le=32)
        >>> o = typer_option(Demo, "max_new_tokens", "-n")
        >>> o.default, o.param_decls, o.min, o.max
        (6, ('--max-new-tokens', '-n'), 1, 32)
    """
    import typer

    s = spec(options, name)
    decls = flags if any(f.startswith("--") for f in flags) else (f"--{name.replace('_', '-')}", *flags)
    return typer.Option(s.default, *decls, help=help or s.help, min=s.ge, max=s.le)


def request_fields(options: type, *names: str, unchecked: tuple[str, ...] = ()) -> dict[str, Any]:
    """Pydantic field definitions (``create_model`` style: name -> (type, Field)) of ``names`` (default: all);
    the choices of ``unchecked`` options are left for the library to check (its message names the fix).

    Examples:
        >>> from dataclasses import dataclass
        >>> from pydantic import create_model
        >>> @dataclass(frozen=True)
        ... class Demo:
        ...     steps: int = option(32, "Steps.", ge=2, le=256)
        >>> Request = create_model("Request", **request_fields(Demo))
        >>> Request().steps, Request.model_fields["steps"].description
        (32, 'Steps.')
    """
    from typing import Literal

    from pydantic import Field

    types = {f.name: f.type for f in fields(options)}
    found = {}
    for name, s in specs(options).items():
        if names and name not in names:
            continue
        kind = Literal[s.choices] if s.choices and name not in unchecked else _python_type(types[name])
        found[name] = (kind, Field(s.default, description=s.help, ge=s.ge, le=s.le))
    return found


def _python_type(annotation: Any) -> Any:
    """The type behind a dataclass annotation (a string under ``from __future__ import annotations``)."""
    if not isinstance(annotation, str):
        return annotation
    return {"int": int, "float": float, "str": str, "bool": bool, "int | None": int | None, "float | None": float | None,
            "str | None": str | None}[annotation]


# ---- the options of each analysis ----

EXPLAIN_METHODS = ("shapley", "exact", "sampled", "kernel", "owen", "lime", "ig", "gradxinput", "rollout")


@dataclass(frozen=True)
class ExplainOptions:
    """Defaults and ranges of :func:`shatterbox.explain` (the CLI's ``explain`` flags and the Explain tab read them)."""

    method: str = option("shapley", "shapley (exact up to 8 words, sampled above), exact, sampled, kernel, owen, lime, ig, "
                                    "gradxinput, rollout, or all (one comparison).", choices=(*EXPLAIN_METHODS, "all"))
    masking: str = option("auto", "How a word is removed: mask (its tokens become the mask token), delete, or auto "
                                  "(mask when the tokenizer has one).", choices=("auto", "mask", "delete"))
    precision: float = option(0.02, "Sampled Shapley stops when every 95% error bar of the label is at most this.", ge=0.0001, le=1.0)
    budget: int | None = option(None, "Most model evaluations (default 4,000 for sampled, 20,000 otherwise).", ge=1, le=20_000)
    pairs: int | None = option(None, "Quick mode: sampled Shapley with exactly this many antithetic permutation pairs.", ge=1, le=200)
    samples: int = option(500, "kernel: model evaluations; lime: perturbed texts.", ge=10, le=5_000)
    steps: int = option(32, "Integrated gradients: quadrature steps.", ge=2, le=256)
    seed: int = option(0, "Seed of the sampled methods (same seed, same numbers).")


EXPLAIN = ExplainOptions()


GENERATION_METHODS = ("shapley", "exact", "sampled", "ig", "rollout")
EXACT_UP_TO = 8  # "shapley" is exact up to this many words (classifiers) or sources (generation): 2^8 = 256 coalitions


@dataclass(frozen=True)
class GenerationOptions:
    """Defaults and ranges of :func:`explain_generation` (the CLI's ``generate`` flags and the Generate tab read them)."""

    max_new_tokens: int = option(4, "Tokens to generate greedily (stops at the end-of-text token).", ge=1, le=32)
    method: str = option("shapley", f"shapley (exact up to {EXACT_UP_TO} sources, sampled above), exact, sampled, ig (integrated gradients), "
                                    "rollout.", choices=GENERATION_METHODS)
    budget: int = option(2000, "Sampled Shapley: most forward passes.", ge=10, le=20_000)
    precision: float = option(0.2, "Sampled Shapley stops when every 95% error bar is at most this (nats).", ge=0.01, le=5.0)
    steps: int = option(64, "Integrated gradients: Gauss-Legendre steps.", ge=2, le=256)
    seed: int = option(0, "Seed of sampled Shapley (same seed, same numbers).")


GENERATION = GenerationOptions()


@dataclass(frozen=True)
class ProjectOptions:
    """Defaults and ranges of :func:`shatterbox.projector.map_store` (``shatterbox project`` and the Projector tab)."""

    method: str = option("pca", "pca or umap (seeded: the same map every run).", choices=("pca", "umap"))
    level: str = option("sentence", "sentence (mean of its tokens) or token.", choices=("sentence", "token"))
    pool: str = option("mean", "Sentence vectors: mean (of all its tokens) or first (the [CLS] token).", choices=("mean", "first"))
    limit: int = option(5000, "Points: a seeded sample of sentences or tokens.", ge=5, le=20_000)
    seed: int = option(0, "Seed of the sample and of UMAP.")


PROJECT = ProjectOptions()


@dataclass(frozen=True)
class ProbeOptions:
    """Defaults and ranges of :func:`shatterbox.probes.probe` (``shatterbox probe`` and the Probes tab)."""

    level: str = option("token", "token (the headword) or sentence (mean over its tokens).", choices=("token", "sentence"))
    kind: str = option("linear", "linear (logistic regression) or mlp (one hidden layer of 256).", choices=("linear", "mlp"))
    folds: int = option(5, "Cross-validation folds (stratified, seeded).", ge=2, le=20)
    seed: int = option(0, "Seed of the folds and of the sample.")


PROBE = ProbeOptions()


@dataclass(frozen=True)
class RankingOptions:
    """How a corpus explanation ranks words (``explain --corpus`` and the Explain tab's Dataset section)."""

    by: str = option("lemma", "Group words by lemma or by lower-cased word.", choices=("lemma", "word"))
    min_count: int = option(5, "Words in fewer texts are left out of the rankings.", ge=1, le=10_000)
    top: int = option(15, "Words per ranking.", ge=1, le=100)


RANKING = RankingOptions()

@dataclass(frozen=True)
class PatchOptions:
    """Defaults and ranges of :func:`shatterbox.patching.patch` (``shatterbox patch`` and the Patching tab)."""

    component: str = option("hidden", "What is patched: hidden (the residual stream, 0 = embeddings), head (each head's output), "
                                      "attn (a layer's attention output) or mlp (a layer's MLP output).", choices=("hidden", "head", "attn", "mlp"))
    direction: str = option("denoise", "denoise: clean activations into the corrupted run (what restores the behaviour); noise: "
                                       "corrupted into the clean run (what destroys it).", choices=("denoise", "noise"))
    positions: str = option("auto", "each (one patch per position), all (every position at once), or auto (all for heads, each "
                                    "otherwise).", choices=("auto", "each", "all"))
    method: str = option("both", "exact (one patched run per cell, batched), attribution (gradient estimate: one forward and "
                                 "backward pass) or both (with their rank agreement).", choices=("exact", "attribution", "both"))


PATCH = PatchOptions()


@dataclass(frozen=True)
class AblateOptions:
    """Defaults and ranges of :func:`shatterbox.patching.ablate` (``shatterbox ablate`` and ``heads --causal``)."""

    component: str = option("head", "What is ablated, one site at a time: head, attn, mlp or hidden.", choices=("head", "attn", "mlp", "hidden"))
    how: str = option("mean", "mean (the site's mean over the texts' tokens, or over a store's), zero, or resample (another text's "
                              "activations, position by position).", choices=("mean", "zero", "resample"))


ABLATE = AblateOptions()

@dataclass(frozen=True)
class LensOptions:
    """Defaults and ranges of :func:`shatterbox.lens.lens_of` (``shatterbox lens show`` and the Lens tab)."""

    lens: str = option("logit", "logit (each layer through the final norm and unembedding), tuned (a fitted tuned lens translates each "
                                "layer first) or classifier (an encoder's pooled sentiment head at each layer).", choices=("logit", "tuned", "classifier"))
    k: int = option(5, "Top tokens shown per layer and position.", ge=1, le=100)


@dataclass(frozen=True)
class TunedLensOptions:
    """Defaults and ranges of :class:`shatterbox.lens.TunedLens` (``shatterbox lens fit``)."""

    epochs: int = option(1, "Passes over the training tokens.", ge=1, le=100)
    learning_rate: float = option(3e-3, "Adam learning rate.", ge=1e-6, le=1.0)
    batch_tokens: int = option(256, "Tokens per optimisation step.", ge=8, le=8192)
    held_out: float = option(0.1, "Share of the store's sentences kept out of training and scored.", ge=0.01, le=0.5)
    max_tokens: int = option(20_000, "The most training tokens read from the store (memory: tokens x layers x width x 4 bytes).",
                             ge=100, le=10_000_000)
    seed: int = option(0, "Seed of the held-out split, the token sample and the training order.", ge=0)


TUNED_LENS = TunedLensOptions()
LENS = LensOptions()


@dataclass(frozen=True)
class SteerOptions:
    """Defaults and ranges of :func:`shatterbox.steering.steer` (``shatterbox steer`` and the Steering tab)."""

    layer: int | None = option(None, "Hidden state the direction is added to (0 = embeddings .. n = last block's output); default: the "
                                     "directions' own layer, or the middle layer where a direction is built for the run.", ge=0)
    alphas: str = option("0,0.025,0.05,0.1,0.2", "Strengths, comma-separated: the added vector's length as a multiple of the layer's median "
                                           "residual-stream norm over the prompt (0 = unsteered).")
    positions: str = option("all", "all (every prompt token and every generated one) or generated (from the last prompt token on).",
                            choices=("all", "generated"))
    max_new_tokens: int = option(16, "Tokens generated per prompt and strength.", ge=1, le=128)
    seed: int = option(0, "Seed of the random-direction baseline.", ge=0)


STEER = SteerOptions()


@dataclass(frozen=True)
class SaeOptions:
    """Defaults and ranges of :mod:`shatterbox.sae`'s scores (``shatterbox sae score|probe|absorption``)."""

    texts: int = option(200, "Held-out sentences of the store on which each layer is spliced with its reconstruction (LM loss, or "
                             "sentence embedding for an encoder).", ge=1, le=100_000)
    ks: str = option("1,2,5,10,20", "Sparse probing: how many latents each probe reads, comma-separated.")
    seeds: int = option(3, "Seeds (balanced samples and splits) whose mean and sd are reported.", ge=1, le=20)
    words: int = option(3000, "Single-token WordNet words of the first-letter absorption task.", ge=50, le=50_000)


SAE = SaeOptions()

ANALYSES = {"explain": ExplainOptions, "generate": GenerationOptions, "project": ProjectOptions, "probe": ProbeOptions,
            "ranking": RankingOptions, "patch": PatchOptions, "lens": LensOptions, "steer": SteerOptions,
            "sae": SaeOptions}  # what /api/options serves, by the page's group names
