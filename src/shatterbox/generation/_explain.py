"""Generate, then attribute each generated token's log-probability to the prompt's words and earlier tokens."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.attribution import Faithfulness, attention_rollout, faithfulness, shapley_exact, shapley_sampled
from shatterbox.attribution.parts import gauss_legendre
from shatterbox.errors import DrawnAndShownByRender, InputError, Note
from shatterbox.options import EXACT_UP_TO, GENERATION, GENERATION_METHODS as METHODS
from shatterbox.generation._game import GenerationGame, Prompt, tokenize_prompt
from shatterbox.models import language_model_parts

IG_BATCH_TOKENS = 2048  # path points x tokens per forward pass kept for the backward passes (~0.75 MB a token on Gemma 270M)
MAX_EXACT = EXACT_UP_TO  # sources up to which "shapley" is exact (2^8 = 256 coalitions), as for classifiers; sampled above


UNITS = {"exact": "log-probability (nats)", "sampled": "log-probability (nats)", "ig": "log-probability (nats)",
         "rollout": "share of attention flow"}


@dataclass
class Generation:
    """A prompt and its continuation as token ids (the prompt's with its start token).

    Examples:
        >>> g = Generation("m", "Hi", [2, 9], [5, 6], ["▁a", "▁b"], " a b")
        >>> g.n_new
        2
    """

    model: str
    prompt: str
    prompt_ids: list[int]
    new_ids: list[int]
    tokens: list[str]
    continuation: str
    seconds: float = 0.0

    @property
    def n_new(self) -> int:
        """Number of generated (or given) continuation tokens."""
        return len(self.new_ids)


def generate(model, prompt: str | Prompt, *, max_new_tokens: int = GENERATION.max_new_tokens, continuation: str | None = None) -> Generation:
    """Continue ``prompt`` greedily (``max_new_tokens``, stopping at the end-of-text token), or take ``continuation``
    as given (teacher forcing: it is tokenised without special tokens, so include its leading space).

    Examples:
        >>> from shatterbox import load
        >>> generate(load("gemma-3-270m"), "The capital of France is", max_new_tokens=2).continuation  # doctest: +SKIP
        ' Paris.'
    """
    language_model_parts(model)
    p = prompt if isinstance(prompt, Prompt) else tokenize_prompt(model, prompt)
    start = time.perf_counter()
    if continuation is not None:
        if not continuation:
            raise InputError("the continuation is empty: give the text that follows the prompt, or leave it out to generate")
        new_ids = model.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    else:
        if not 1 <= max_new_tokens <= 256:
            raise InputError(f"max_new_tokens={max_new_tokens} is out of range: give 1 to 256", parameter="max_new_tokens")
        ids = torch.tensor([p.ids])
        tok = model.tokenizer
        with torch.inference_mode():
            out = model.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                       do_sample=False, pad_token_id=tok.pad_token_id, top_p=None, top_k=None)
        new_ids = out[0, len(p.ids):].tolist()
        ends = end_ids(model)
        cut = next((i for i, t in enumerate(new_ids) if t in ends), len(new_ids))
        new_ids = new_ids[:cut]
    if not new_ids:
        raise InputError("the model ended the text at once: nothing was generated to explain; give a continuation", parameter="continuation")
    return Generation(
        model=model.name, prompt=p.text, prompt_ids=list(p.ids), new_ids=[int(i) for i in new_ids],
        tokens=model.tokenizer.convert_ids_to_tokens(new_ids), continuation=model.tokenizer.decode(new_ids),
        seconds=time.perf_counter() - start,
    )


def end_ids(model) -> set[int]:
    """The token ids that end a generation: the tokenizer's end and padding tokens and the generation config's.

    Examples:
        >>> from shatterbox import load
        >>> 1 in end_ids(load("gemma-3-270m"))  # doctest: +SKIP
        True
    """
    tok = model.tokenizer
    eos = getattr(getattr(model.model, "generation_config", None), "eos_token_id", None)
    listed = list(eos) if isinstance(eos, (list, tuple)) else [eos]
    return {int(i) for i in (tok.eos_token_id, tok.pad_token_id, *listed) if i is not None}


@dataclass
class GenerationExplanation(DrawnAndShownByRender):
    """Values [generated tokens, sources]: how much each source (prompt word or earlier generated token) raised
    each generated token's log-probability. Sources after a token are never read by it: NaN there.

    Shapley values add up per token: ``values[t].sum() == full[t] - base[t]`` (the log-probability with the whole
    prompt minus with none of it); integrated gradients add up to ``full - base`` up to ``delta``.
    """

    model: str
    prompt: str
    continuation: str
    sources: list[str]
    targets: list[str]
    values: np.ndarray
    full: np.ndarray
    base: np.ndarray
    method: str
    evaluations: int
    seconds: float
    n_prompt_words: int
    error: np.ndarray | None = None
    contrast: list[str] | None = None
    delta: np.ndarray | None = None
    faithfulness: list[Faithfulness] | None = None
    notes: list[str] = field(default_factory=list)
    token_values: np.ndarray | None = None  # ig: per input token [T, tokens], start token included

    @property
    def units(self) -> str:
        """What the values measure."""
        unit = UNITS[self.method]
        return unit.replace("log-probability", "log-probability difference") if self.contrast and self.method != "rollout" else unit

    def top(self, target: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` sources that raised generated token ``target`` (0-based) most.

        Examples:
            >>> e = GenerationExplanation("m", "a b", " c", ["a", "b"], ["c"], np.array([[0.1, 0.5]]), np.zeros(1),
            ...                           np.zeros(1), "exact", 4, 0.0, 2)
            >>> e.top(0, 1)
            [('b', 0.5)]
        """
        row = self.values[target]
        order = [i for i in np.argsort(-np.nan_to_num(row, nan=-np.inf), kind="stable") if np.isfinite(row[i])]
        return [(self.sources[i], float(row[i])) for i in order[:k]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes null (a source after the token; the base of ``rollout``, which has none)."""
        def grid(a):
            return None if a is None else [[None if not np.isfinite(x) else float(x) for x in row] for row in a]

        return {
            "model": self.model, "prompt": self.prompt, "continuation": self.continuation, "method": self.method,
            "units": self.units, "sources": self.sources, "targets": self.targets, "contrast": self.contrast,
            "n_prompt_words": self.n_prompt_words, "values": grid(self.values), "error": grid(self.error),
            "full": self.full.tolist(), "base": [None if not np.isfinite(x) else float(x) for x in self.base],
            "delta": None if self.delta is None else self.delta.tolist(),
            "faithfulness": None if self.faithfulness is None else [f.to_dict() for f in self.faithfulness],
            "evaluations": self.evaluations, "seconds": self.seconds, "notes": self.notes,
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), **kwargs)


def explain_generation(
    model,
    prompt: str,
    *,
    continuation: str | None = None,
    max_new_tokens: int = GENERATION.max_new_tokens,
    method: str = GENERATION.method,
    contrast: str | None = None,
    budget: int = GENERATION.budget,
    precision: float = GENERATION.precision,
    steps: int = GENERATION.steps,
    seed: int = GENERATION.seed,
    score: bool = True,
    dtype: str = "float32",
    keep_special: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationExplanation:
    """Generate (greedily, or take ``continuation``), then attribute each generated token's log-probability.

    ``method``: ``shapley`` (exact up to 8 sources, sampled above), ``exact``, ``sampled`` (antithetic
    permutations until the 95 % error bars are within ``precision`` nats or ``budget`` forward passes),
    ``ig`` (integrated gradients on the input embeddings, ``steps`` Gauss-Legendre points, from the unknown
    token's embedding; the start token stays unless ``keep_special=False``), ``rollout`` (attention flow).
    ``contrast``: an alternative continuation of as many tokens; each value then explains
    log p(token) - log p(alternative token). ``progress(done, total)`` gets the forward passes made and planned
    (the coalitions, then the faithfulness curves) after every batch; an exception it raises stops the run.

    Examples:
        >>> from shatterbox import load
        >>> e = explain_generation(load("gemma-3-270m"), "The capital of France is", continuation=" Paris")  # doctest: +SKIP
        >>> e.top(0, 1)[0][0]  # doctest: +SKIP
        'France'
    """
    if method not in METHODS:
        raise InputError(f"method {method!r} is not one of: {', '.join(METHODS)}")
    p = tokenize_prompt(model, prompt)
    gen = generate(model, p, max_new_tokens=max_new_tokens, continuation=continuation)
    contrast_ids = None
    if contrast is not None:
        contrast_ids = model.tokenizer(contrast, add_special_tokens=False)["input_ids"]
    game = GenerationGame(model, p, gen.new_ids, contrast_ids=contrast_ids, dtype=dtype)
    concrete = method if method != "shapley" else ("exact" if game.n <= MAX_EXACT else "sampled")
    if progress is not None and concrete in ("exact", "sampled"):
        total = (2**game.n if concrete == "exact" else budget) + ((2 * game.n + 2) * len(game.labels) if score else 0)
        game.progress = lambda done: progress(min(done, total), total)
    start = time.perf_counter()
    result = _RUNNERS[concrete](game, budget=budget, precision=precision, steps=steps, seed=seed, keep_special=keep_special)
    seconds = time.perf_counter() - start
    values = result["values"]  # [T, n]
    causal = np.stack([game.sources_of(t) for t in range(len(game.labels))])
    values = np.where(causal, values, np.nan)
    error = result.get("error")
    explanation = GenerationExplanation(
        model=model.name, prompt=p.text, continuation=gen.continuation, sources=list(game.words), targets=list(game.labels),
        values=values, full=result["full"], base=result["base"], method=concrete,
        evaluations=game.evaluations + result.get("extra", 0), seconds=seconds, n_prompt_words=game.n_prompt_words,
        error=None if error is None else np.where(causal, error, np.nan),
        contrast=None if contrast_ids is None else model.tokenizer.convert_ids_to_tokens(contrast_ids),
        delta=result.get("delta"), notes=result.get("notes", []), token_values=result.get("token_values"),
    )
    if score:
        explanation.faithfulness = [_faithfulness(game, values[t], t) for t in range(len(game.labels))]
    return explanation


def _faithfulness(game: GenerationGame, row: np.ndarray, target: int) -> Faithfulness:
    """Deletion and insertion curves for one generated token over the sources it can read."""
    sources = np.flatnonzero(game.sources_of(target))

    def value_fn(masks: np.ndarray) -> np.ndarray:
        full = np.zeros((len(masks), game.n), dtype=bool)
        full[:, sources] = masks
        return game(full)

    return faithfulness(value_fn, row[sources], target)


def _exact(game: GenerationGame, **_: Any) -> dict:
    r = shapley_exact(game, game.n, batch_size=game.batch_size)
    return {"values": r.values.T, "full": r.full, "base": r.base,
            "notes": [f"exact: all {2 ** game.n:,} coalitions of {game.n} sources, absent ones deleted"]}


def _sampled(game: GenerationGame, *, budget: int, precision: float, seed: int, **_: Any) -> dict:
    if game.n < 2:
        return _exact(game)
    r = shapley_sampled(game, game.n, precision=precision, budget=budget, seed=seed)
    notes = [f"{r.pairs} antithetic permutation pairs; largest 95% error bar {r.largest_error:.3f} nats"]
    if not r.converged:
        notes.append(Note(f"precision {precision:g} not reached within budget={budget:,} forward passes: raise it", kind="warning", parameter="budget"))
    return {"values": r.values.T, "full": r.full, "base": r.base, "error": None if r.error is None else r.error.T, "notes": notes}


def _embeddings(game: GenerationGame, keep_special: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The input embeddings [tokens, D] and the baseline's: the unknown token (pad where there is none) at every
    token, the start token kept unless ``keep_special`` is False (inseq's baseline replaces it too)."""
    layer = game.model.model.get_input_embeddings()
    tok = game.model.tokenizer
    filler = tok.unk_token_id if tok.unk_token_id is not None else (tok.pad_token_id or 0)
    ids = game.input_ids
    replace = torch.from_numpy(game.token_word >= 0) if keep_special else torch.ones(len(ids), dtype=torch.bool)
    with torch.no_grad():
        return layer(ids[None])[0], layer(torch.where(replace, torch.tensor(filler), ids)[None])[0]


def _logprobs_of(game: GenerationGame, embeds: torch.Tensor) -> torch.Tensor:
    """Target log-probabilities [s, T] of embedded sequences [s, tokens, D] (every token present)."""
    hidden = game.body(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long)).last_hidden_state
    where = torch.from_numpy(game.predicting).expand(len(embeds), -1)
    return game.logprobs_at(hidden, where)


def token_integrated_gradients(game: GenerationGame, *, steps: int = 64, batch_size: int | None = None, keep_special: bool = True) -> dict:
    """Integrated gradients of every generated token's log-probability: one forward pass per batch of path points
    serves every generated token (a causal model's earlier outputs do not read later inputs), then one backward
    pass per token.

    Examples:
        >>> from shatterbox import load
        >>> g = GenerationGame(load("gemma-3-270m"), "The capital of France is", [9079])  # doctest: +SKIP
        >>> r = token_integrated_gradients(g, steps=16)  # doctest: +SKIP
        >>> bool(abs(r["delta"]).max() < 0.05)  # doctest: +SKIP
        True
    """
    x, x0 = _embeddings(game, keep_special)
    batch_size = batch_size or max(1, min(steps, IG_BATCH_TOKENS // len(x)))
    alphas, weights = gauss_legendre(steps)
    n_targets = len(game.labels)
    total = torch.zeros((n_targets, *x.shape), dtype=torch.float64)
    for rows in chunks(steps, batch_size):
        a = torch.tensor(alphas[rows], dtype=x.dtype).view(-1, 1, 1)
        embeds = (x0 + a * (x - x0)).detach().requires_grad_(True)
        with torch.enable_grad():
            lp = _logprobs_of(game, embeds)
            w = torch.tensor(weights[rows])
            for t in range(n_targets):  # one backward pass per generated token (vmap over them measured 1.4x slower)
                grad = torch.autograd.grad(lp[:, t].sum(), embeds, retain_graph=t < n_targets - 1)[0]
                total[t] += (w.view(-1, 1, 1) * grad.double()).sum(dim=0)
    token_values = (total * (x - x0).double()).sum(dim=-1).numpy()  # [T, tokens]
    with torch.no_grad():
        ends = _logprobs_of(game, torch.stack([x0, x])).double().numpy()
    values = np.zeros((n_targets, game.n))
    cols = np.flatnonzero(game.token_word >= 0)
    np.add.at(values.T, game.token_word[cols], token_values[:, cols].T)
    delta = token_values.sum(axis=1) - (ends[1] - ends[0])
    gap = float(np.max(np.abs(delta)))
    notes = [f"{steps} Gauss-Legendre steps from the unknown token's embedding; largest completeness gap {gap:.3f} nats"]
    if gap > 0.01 * max(float(np.max(np.abs(ends[1] - ends[0]))), 1e-12):
        notes.append(Note(f"completeness gap above 1% of the change: raise steps (now steps={steps})", kind="warning", parameter="steps"))
    return {"values": values, "full": ends[1], "base": ends[0], "delta": delta, "token_values": token_values,
            "extra": steps + 2, "notes": notes}


def _ig(game: GenerationGame, *, steps: int, keep_special: bool = True, **_: Any) -> dict:
    return token_integrated_gradients(game, steps=steps, keep_special=keep_special)


def _rollout(game: GenerationGame, **_: Any) -> dict:
    ids = game.input_ids[None]
    with torch.inference_mode():  # the model's own attention probabilities (no MLP activations recorded)
        out = game.model.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
    flow = attention_rollout(torch.stack(out.attentions)[:, 0].float().numpy())[game.predicting]  # [T, tokens]
    cols = np.flatnonzero(game.token_word >= 0)
    values = np.zeros((len(game.labels), game.n))
    np.add.at(values.T, game.token_word[cols], flow[:, cols].T)
    values = values / np.maximum(values.sum(axis=1, keepdims=True), 1e-12)
    full = game(np.ones((1, game.n), dtype=bool))[0]
    return {"values": values, "full": full, "base": np.full(len(full), np.nan),
            "notes": ["class-agnostic: attention flow into each predicting position, shares of the sources "
                      "(the start token's share left out); no base: nothing is masked"]}


_RUNNERS = {"exact": _exact, "sampled": _sampled, "ig": _ig, "rollout": _rollout}
