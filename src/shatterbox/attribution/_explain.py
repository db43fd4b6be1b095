"""One verb, :func:`explain`: which words drove a prediction, by any method, scored for faithfulness."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from shatterbox.attribution._faithfulness import faithfulness
from shatterbox.attribution._results import TITLES, Attribution, Comparison
from shatterbox.attribution._games import Game, TextGame, TokenGame, ValueGame
from shatterbox.attribution._gradients import grad_times_input, integrated_gradients
from shatterbox.attribution._kernel import check_kernel_budget, kernel_shap
from shatterbox.attribution._lime import lime_fit, lime_masks
from shatterbox.attribution._rollout import rollout_relevance
from shatterbox.attribution._shapley import (
    check_sampling_budget,
    owen_plan,
    owen_values,
    pair_cost,
    shapley_exact,
    shapley_sampled,
)
from shatterbox.classifiers import Classifier, from_model, resolve_label
from shatterbox.options import EXACT_UP_TO, EXPLAIN, EXPLAIN_METHODS as METHODS

DEFAULT_SAMPLES = EXPLAIN.samples  # LIME's perturbed texts and Kernel SHAP's model evaluations, unless given
from shatterbox.errors import BudgetTooSmall, InputError, Note, deprecated

ALL_METHODS = ("shapley", "kernel", "owen", "lime", "ig", "gradxinput", "rollout")
INSIDE = ("ig", "gradxinput", "rollout")  # methods that look inside a model: not for functions and value games
EXACT_AUTO_MAX = EXACT_UP_TO  # "shapley" is exact up to this many words, sampled above (shatterbox.options)
DEFAULT_BUDGET = 20_000
SAMPLED_BUDGET = 4_000


def make_game(
    target: Any = None,
    text: str | None = None,
    *,
    masking: str = EXPLAIN.masking,
    batch_size: int | None = None,
    output_names: Sequence[str] | None = None,
    dtype: str = "float32",
) -> Game:
    """The game behind an explanation of ``text`` for ``target``.

    ``target`` may be ``None`` or ``"sentiment"`` (the shipped classifier), a model name or folder, a
    :class:`~shatterbox.models.LoadedModel`, a :class:`~shatterbox.classifiers.Classifier`, a
    ``transformers`` text-classification pipeline, any callable ``f(list[str]) -> probabilities``,
    or a ready :class:`Game` (``text`` is then ignored). ``output_names`` names the outputs of a
    callable target (default ``label 0``, ``label 1``, ...).

    Examples:
        >>> make_game(None, "I love chess").words
        ['I', 'love', 'chess']
    """
    if isinstance(target, Game):
        return target
    if not isinstance(text, str) or not text.strip():
        from shatterbox.errors import EmptyText

        raise EmptyText()
    classifier = _classifier(target)
    if classifier is not None:
        return _two_words(TokenGame(classifier, text, masking=masking, batch_size=batch_size, dtype=dtype))
    if callable(target):
        return _two_words(TextGame(target, text, labels=output_names, masking="delete" if masking == "auto" else masking, batch_size=batch_size or 64))
    raise InputError(
        f"cannot explain a {type(target).__name__}: give a model name or folder, a classifier, a text-classification "
        "pipeline, a function f(list[str]) -> probabilities, or a ValueGame"
    )


def _two_words(game: Game) -> Game:
    if game.n < 2:
        raise InputError(
            f"the text has a single word ({game.words[0]!r}): there is nothing to compare it with; "
            "give a text of at least two words"
        )
    return game


def resolve_target(target: Any) -> Any:
    """``target`` made ready to explain many texts: a model name, folder, pipeline or ``None`` (the shipped
    sentiment classifier) loaded once as a :class:`~shatterbox.classifiers.Classifier`; a classifier or a
    callable as it is.

    Examples:
        >>> type(resolve_target(None)).__name__
        'Classifier'
    """
    classifier = _classifier(target)
    if classifier is not None:
        return classifier
    if callable(target) or isinstance(target, Game):
        return target
    raise InputError(
        f"cannot explain a {type(target).__name__}: give a model name or folder, a classifier, a text-classification "
        "pipeline, a function f(list[str]) -> probabilities, or a ValueGame"
    )


def _classifier(target: Any) -> Classifier | None:
    from shatterbox.models import LoadedModel, wrap

    if target is None or (isinstance(target, str) and target.strip().lower() == "sentiment"):
        from shatterbox.classifiers.sentiment import sentiment

        return sentiment()
    if isinstance(target, Classifier):
        return target
    if isinstance(target, (str, LoadedModel)):
        return from_model(target)
    try:
        from transformers import Pipeline
    except ImportError:  # pragma: no cover
        return None
    if isinstance(target, Pipeline):
        return from_model(wrap(target.model, target.tokenizer, name=getattr(target.model, "name_or_path", "pipeline") or "pipeline"))
    return None


def resolve_method(method: str, n_words: int) -> str:
    """The concrete method: ``"shapley"`` is exact up to 8 words and sampled above.

    Examples:
        >>> resolve_method("shapley", 8), resolve_method("shapley", 30)
        ('exact', 'sampled')
    """
    method = (method or "shapley").strip().lower().replace("-", "").replace("_", "")
    aliases = {"gradientxinput": "gradxinput", "gxi": "gradxinput", "integratedgradients": "ig", "partition": "owen", "kernelshap": "kernel"}
    method = aliases.get(method, method)
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}: choose one of {', '.join(METHODS)} or all")
    if method == "shapley":
        return "exact" if n_words <= EXACT_AUTO_MAX else "sampled"
    return method


def planned_evaluations(method: str, n_words: int, *, budget: int | None = None, samples: int = DEFAULT_SAMPLES, steps: int = EXPLAIN.steps) -> int:
    """Model evaluations ``method`` will make on ``n_words`` words (an upper bound for sampled Shapley).

    Examples:
        >>> planned_evaluations("exact", 8), planned_evaluations("lime", 8)
        (256, 501)
    """
    method = resolve_method(method, n_words)
    return {
        "exact": lambda: 2**n_words,
        "sampled": lambda: budget or SAMPLED_BUDGET,
        "kernel": lambda: min(samples, 2**n_words),
        "owen": lambda: owen_plan(n_words) + 2,
        "lime": lambda: samples + 1,
        "ig": lambda: steps + 2,
        "gradxinput": lambda: 2,
        "rollout": lambda: 1,
    }[method]()


def explain(
    target: Any = None,
    text: str | None = None,
    *,
    method: str = EXPLAIN.method,
    label: str | int | None = None,
    masking: str = EXPLAIN.masking,
    precision: float = EXPLAIN.precision,
    budget: int | None = None,
    samples: int = DEFAULT_SAMPLES,
    steps: int = EXPLAIN.steps,
    seed: int = EXPLAIN.seed,
    batch_size: int | None = None,
    score: bool = True,
    output_names: Sequence[str] | None = None,
    dtype: str = "float32",
    pairs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Attribution:
    """Explain ``target``'s prediction on ``text`` word by word (:func:`compare` runs every method).

    Methods: ``shapley`` (exact up to 8 words, sampled above), ``exact``, ``sampled`` (stops at
    ``precision`` or ``budget``), ``kernel`` (Kernel SHAP from ``samples`` model evaluations; exact when they cover
    every coalition), ``owen``, ``lime`` (``samples``), ``ig`` (``steps``), ``gradxinput``,
    ``rollout``. ``pairs=N`` asks for sampled Shapley with exactly N antithetic permutation pairs (the quick
    mode: 2 + 2N(n-1) model evaluations; error bars from 2 pairs on). ``label`` is the output to explain, by name or number
    (default: the predicted one); ``output_names`` names a callable target's outputs. Results are
    deterministic for a given ``seed``. ``score`` adds faithfulness scores. ``dtype="bfloat16"`` scores the
    masked texts with CPU autocast (1.6x faster in ``bench/attribution.py`` on a 2-core AVX512-BF16 CPU; probabilities move by up to ~0.008).
    ``progress(done, total)`` gets the model evaluations made and planned after every batch (an exception it raises
    stops the run).

    Examples:
        >>> a = explain(text="I love playing chess with my friends.")
        >>> a.label_name, a.method, [w for w, _ in a.top(2)]
        ('positive', 'exact', ['love', 'I'])
        >>> bool(abs(a.values[:, a.label].sum() - (a.prediction - a.base)[a.label]) < 1e-5)
        True
    """
    options = dict(label=label, masking=masking, precision=precision, budget=budget, samples=samples, steps=steps, seed=seed,
                   batch_size=batch_size, score=score, output_names=output_names, dtype=dtype, pairs=pairs)
    if (method or "").strip().lower() == "all":
        deprecated('explain(method="all")', "shatterbox.compare(target, text)")
        return compare(target, text, **options)
    game = make_game(target, text, masking=masking, batch_size=batch_size, output_names=output_names, dtype=dtype)
    chosen = methods_for(game, method)[0]
    follow(game, progress, [chosen], score=score, budget=budget, samples=samples, steps=steps, pairs=pairs)
    return run_method(game, chosen, label=label, precision=precision, budget=budget, samples=samples,
                      steps=steps, seed=seed, score=score, pairs=pairs)


def compare(target: Any = None, text: str | None = None, *, label: str | int | None = None, masking: str = EXPLAIN.masking,
            precision: float = EXPLAIN.precision, budget: int | None = None, samples: int = DEFAULT_SAMPLES,
            steps: int = EXPLAIN.steps, seed: int = EXPLAIN.seed, batch_size: int | None = None, score: bool = True,
            output_names: Sequence[str] | None = None, dtype: str = "float32", pairs: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> Comparison:
    """Every method that applies, on the same text and model (one game, so every method sees the same masked texts),
    comparable row by row: top words, faithfulness, model evaluations, seconds. Options as for :func:`explain`.

    Examples:
        >>> c = compare(ValueGame(["a", "b", "c"], lambda m: m @ np.array([1.0, 2.0, 0.0])), samples=20)
        >>> c.rows()[0]["method"], c.rows()[0]["top"]
        ('exact', ['b', 'a', 'c'])
    """
    game = make_game(target, text, masking=masking, batch_size=batch_size, output_names=output_names, dtype=dtype)
    options = dict(label=label, precision=precision, budget=budget, samples=samples, steps=steps, seed=seed, score=score, pairs=pairs)
    methods = methods_for(game, "all")
    follow(game, progress, methods, score=score, budget=budget, samples=samples, steps=steps, pairs=pairs)
    return Comparison([run_method(game, m, **options) for m in methods])


def follow(game: Game, progress: Callable[[int, int], None] | None, methods: Sequence[str], *, score: bool, **plan_options: Any) -> None:
    """Report ``game``'s model evaluations to ``progress(done, total)``, the total planned for ``methods`` (each with
    its faithfulness scores when ``score``); sampled Shapley may stop early, below the total.

    Examples:
        >>> g, seen = ValueGame(["a", "b"], lambda m: m.sum(axis=1) * 1.0), []
        >>> follow(g, lambda done, total: seen.append((done, total)), ["exact"], score=False)
        >>> _ = explain(g, method="exact", score=False); seen
        [(2, 4), (4, 4)]
    """
    if progress is None:
        return
    pairs = plan_options.pop("pairs", None)
    total = sum(planned_evaluations("sampled" if pairs else m, game.n, **_pair_budget(plan_options, pairs, game.n)) for m in methods)
    total += (2 * game.n + 2) * len(methods) if score else 0
    game.progress = lambda done: progress(min(done, total), total)


def _pair_budget(options: dict, pairs: int | None, n: int) -> dict:
    """The budget of the quick mode (``pairs`` antithetic pairs) as :func:`planned_evaluations` takes it."""
    return options if not pairs else {**options, "budget": 2 + 2 * pairs * max(n - 1, 1)}


def methods_for(game: Game, method: str) -> list[str]:
    """The methods ``explain(method=...)`` runs on ``game``: every one that applies for ``"all"``.

    Examples:
        >>> methods_for(ValueGame(list("ab"), lambda m: m.sum(axis=1)), "all")
        ['shapley', 'kernel', 'owen', 'lime']
    """
    if (method or "").strip().lower() != "all":
        return [method]
    return [m for m in ALL_METHODS if isinstance(game, TokenGame) or m not in INSIDE]


def plan(game: Game, method: str = "shapley", *, label: str | int | None = None, budget: int | None = None, precision: float = EXPLAIN.precision,
         samples: int = DEFAULT_SAMPLES, steps: int = EXPLAIN.steps, pairs: int | None = None) -> list[tuple[str, int]]:
    """(method, model evaluations at most) of every method :func:`explain` will run with these options;
    refuses what cannot run (unknown label or method, budget too small) before any model call.

    Examples:
        >>> plan(ValueGame(list("abcd"), lambda m: m.sum(axis=1)), "shapley", pairs=2)
        [('sampled', 14)]
    """
    if label is not None:
        resolve_label(label, game.labels)
    planned = []
    for m in methods_for(game, method):
        m, b, _, _ = with_pairs(game, m, budget, precision, pairs)
        planned.append(check_method(game, m, budget=b, samples=samples, steps=steps))
    return planned


def with_pairs(game: Game, method: str, budget: int | None, precision: float, pairs: int | None) -> tuple[str, int | None, float, int]:
    """(method, budget, precision, first-round pairs) once ``pairs`` (a fixed number of antithetic pairs) is applied.

    Examples:
        >>> with_pairs(ValueGame(list("abcd"), lambda m: m.sum(axis=1)), "shapley", None, 0.02, 2)
        ('sampled', 14, inf, 2)
    """
    if pairs is None:
        return method, budget, precision, 8
    if pairs < 1:
        raise InputError(f"pairs must be at least 1, not {pairs}")
    if resolve_method(method, game.n) not in ("exact", "sampled"):
        raise InputError(f"pairs sets the sample of sampled Shapley; it does not apply to method={method!r}", parameter="pairs")
    return "sampled", 2 + pairs * pair_cost(game.n), float("inf"), pairs


def _limit(method: str, budget: int | None) -> int:
    return budget or (SAMPLED_BUDGET if method == "sampled" else DEFAULT_BUDGET)


def check_method(game: Game, method: str, *, budget: int | None = None, samples: int = DEFAULT_SAMPLES, steps: int = EXPLAIN.steps) -> tuple[str, int]:
    """The concrete method and its planned model evaluations; refuses what cannot run (before any model call).

    Examples:
        >>> check_method(ValueGame(list("abc"), lambda m: m.sum(axis=1)), "shapley")
        ('exact', 8)
    """
    if not isinstance(game, ValueGame):
        _two_words(game)
    concrete = resolve_method(method, game.n)
    plan = planned_evaluations(concrete, game.n, budget=budget, samples=samples, steps=steps)
    limit = _limit(concrete, budget)
    if plan > limit:
        raise BudgetTooSmall(
            f"{TITLES[concrete]} on {game.n} words needs {plan:,} model evaluations, more than the budget of "
            f"{limit:,}: raise budget={plan} or use method='sampled'", parameter="budget"
        )
    if concrete == "sampled":
        check_sampling_budget(game.n, limit)
    if concrete == "kernel":
        check_kernel_budget(game.n, samples)
    if concrete in INSIDE and not isinstance(game, TokenGame):
        raise InputError(f"{TITLES[concrete]} needs a model to look inside: explain a classifier, not a function or game")
    return concrete, plan


def run_method(
    game: Game,
    method: str,
    *,
    label: str | int | None = None,
    precision: float = EXPLAIN.precision,
    budget: int | None = None,
    samples: int = DEFAULT_SAMPLES,
    steps: int = EXPLAIN.steps,
    seed: int = EXPLAIN.seed,
    score: bool = True,
    pairs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Attribution:
    """Run one method on a ready game; model evaluations are counted from an empty cache.

    Examples:
        >>> g = ValueGame(["x", "y"], lambda m: m.sum(axis=1) * 1.0)
        >>> run_method(g, "exact").values[:, 0].tolist()
        [1.0, 1.0]
    """
    method, budget, precision, min_pairs = with_pairs(game, method, budget, precision, pairs)
    concrete, _ = check_method(game, method, budget=budget, samples=samples, steps=steps)
    limit = _limit(concrete, budget)
    game.reset()
    start = time.perf_counter()
    if concrete == "sampled":  # the sampler scores the whole and the empty text in its first model call
        result = _sampled(game, label=label, precision=precision, budget=limit, seed=seed, min_pairs=min_pairs)
        full, base, target = result["full"], result["base"], result["target"]
    else:
        full, base = game.ends()
        target = resolve_label(label, game.labels, full)
        result = _METHOD_RUNNERS[concrete](game, target=target, samples=samples, steps=steps, seed=seed)
    seconds = time.perf_counter() - start
    values = result["values"]
    attribution = Attribution(
        words=list(game.words),
        labels=list(game.labels),
        values=values,
        base=result.get("base", base),
        prediction=result.get("full", full),
        label=target,
        method=concrete,
        evaluations=game.evaluations + result.get("extra_evaluations", 0),
        seconds=seconds,
        masking=game.masking,
        model=getattr(getattr(game, "classifier", None), "name", "") or type(game).__name__,
        text=getattr(game, "text", None),
        error=result.get("error"),
        units=result.get("units", "probability" if not isinstance(game, ValueGame) else "value"),
        notes=result.get("notes", []),
    )
    if score:
        attribution.faithfulness = faithfulness(game, values[:, target], target)
    return attribution


def _exact(game: Game, **_: Any) -> dict:
    r = shapley_exact(game, game.n, batch_size=4096)
    return {"values": r.values}


def _sampled(game: Game, *, label: str | int | None, precision: float, budget: int, seed: int, min_pairs: int = 8) -> dict:
    r = shapley_sampled(
        game, game.n, precision=precision, budget=budget, seed=seed, min_pairs=min_pairs,
        outputs=lambda full: [resolve_label(label, game.labels, full)],
    )
    if r.error is None:
        notes = ["1 antithetic permutation pair: no error bars (two pairs give them)"]
    else:
        notes = [f"{r.pairs} antithetic permutation pairs; largest 95% error bar {r.largest_error:.4f}"]
        if not r.converged:
            notes.append(Note(
                f"precision {precision:g} not reached within the budget of {budget:,} evaluations "
                f"(reached {r.largest_error:.4f}); raise it to about budget={int(budget * (r.largest_error / precision) ** 2)}",
                kind="warning", parameter="budget"))
    target = resolve_label(label, game.labels, r.full)
    return {"values": r.values, "error": r.error, "notes": notes, "full": r.full, "base": r.base, "target": target}


def _kernel(game: Game, *, samples: int, seed: int, **_: Any) -> dict:
    r = kernel_shap(game, game.n, evaluations=samples, seed=seed)
    exact = r.evaluations >= 2**game.n
    return {"values": r.values, "notes": ["every coalition: the exact Shapley values" if exact else
                                          f"{r.evaluations} coalitions (sizes from the outside in, paired samples), kernel-weighted least squares; no error bars"]}


def _owen(game: Game, **_: Any) -> dict:
    return {"values": owen_values(game, game.n).values, "notes": ["hierarchy: balanced binary tree of contiguous words"]}


def _lime(game: Game, *, samples: int, seed: int, **_: Any) -> dict:
    masks = lime_masks(game.n, samples + 1, seed)
    fit = lime_fit(masks, game(masks))
    return {
        "values": fit.coef,
        "units": "surrogate coefficient",
        "notes": [f"{samples} perturbed texts, weighted ridge (alpha 1, kernel width 25); R^2 of the surrogate {float(fit.score.mean()):.3f}"],
    }


def _ig(game: TokenGame, *, steps: int, **_: Any) -> dict:
    r = integrated_gradients(game, steps=steps)
    gap = float(np.max(np.abs(r.delta)) / max(float(np.max(np.abs(r.full - r.base))), 1e-12))
    notes = [f"{steps} Gauss-Legendre steps from the all-masked text; completeness gap {gap:.2%}"]
    if gap > 0.01:
        notes.append(Note(f"completeness gap above 1%: raise steps (now steps={steps})", kind="warning", parameter="steps"))
    return {"values": r.values, "base": r.base, "full": r.full, "extra_evaluations": r.evaluations, "notes": notes}


def _gradxinput(game: TokenGame, **_: Any) -> dict:
    r = grad_times_input(game)
    return {"values": r.values, "extra_evaluations": r.evaluations, "units": "gradient x input", "notes": ["gradient at the text times the word embedding, summed over dimensions"]}


def _rollout(game: TokenGame, **_: Any) -> dict:
    from shatterbox.trace import capture

    trace = capture(game.classifier.model, game.text, truncate=False)
    relevance = rollout_relevance(trace.attentions, game.classifier.pooling)
    words = game.to_words(relevance)
    share = words / max(words.sum(), 1e-12)
    return {
        "values": np.repeat(share[:, None], len(game.labels), axis=1),
        "extra_evaluations": 1,
        "units": "share of attention flow",
        "notes": [f"class-agnostic: attention flow into the {game.classifier.pooling} position, shares of the words"],
    }


_METHOD_RUNNERS: dict[str, Callable[..., dict]] = {
    "exact": _exact,
    "kernel": _kernel,
    "owen": _owen,
    "lime": _lime,
    "ig": _ig,
    "gradxinput": _gradxinput,
    "rollout": _rollout,
}
