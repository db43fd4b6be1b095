"""Steering: add a strength times a direction to one hidden layer's residual stream while the model generates greedily, and
score each continuation for the concept and for fluency, beside a random direction of the same length (the control),
the unsteered model and prompting (the same model asked in words)."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from shatterbox.errors import DrawnAndShownByRender, InputError
from shatterbox.generation import end_ids, tokenize_prompt
from shatterbox.models import LoadedModel, language_model_parts
from shatterbox.options import STEER
from shatterbox.patching import Intervention, Site, add, collecting, intervening
from shatterbox.steering._directions import Direction, random_direction

FLUENCY_LOSS = 1.0  # nats per token: a steering result that costs more fluency than this does not count as steering well
MOVES = 0.3  # concept-score change a direction must reach to count as steering (on the 0-1 sentiment scale)
INSTRUCTIONS = {"sentiment": "Write something very {target}.\n"}


def parse_alphas(alphas: str | Sequence[float]) -> list[float]:
    """Strengths from ``"0,0.5,1"`` or a list: finite numbers, 0 (the unsteered run) always first.

    Examples:
        >>> parse_alphas("1, 0.5"), parse_alphas([2])
        ([0.0, 0.5, 1.0], [0.0, 2.0])
        >>> parse_alphas("1,nan")
        Traceback (most recent call last):
        ...
        shatterbox.errors.InputError: strength 'nan' is not a finite number: give strengths such as 0,0.5,1,2
    """
    items = [a.strip() for a in alphas.split(",") if a.strip()] if isinstance(alphas, str) else list(alphas)
    out = []
    for item in items:
        try:
            value = float(item)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise InputError(f"strength {item!r} is not a finite number: give strengths such as 0,0.5,1,2", parameter="alphas")
        out.append(value)
    if not out:
        raise InputError("no strengths given: give strengths such as 0,0.5,1,2", parameter="alphas")
    return [0.0] + sorted({a for a in out if a != 0.0})


@dataclass
class SteeringResult(DrawnAndShownByRender):
    """Every continuation: one row per prompt, direction and strength (``alpha`` 0: unsteered; the ``prompting`` rows
    are the model asked in words, with ``alpha`` None), with its ``concept`` score and ``fluency`` (the unsteered model's
    mean log-probability per token of the continuation after the prompt, nats).

    Examples:
        >>> rows = [{"prompt": 0, "direction": "unsteered", "kind": "none", "alpha": 0.0, "concept": 0.2, "fluency": -2.0},
        ...         {"prompt": 0, "direction": "d", "kind": "diffmean", "alpha": 1.0, "concept": 0.9, "fluency": -2.5},
        ...         {"prompt": 0, "direction": "random (seed 0)", "kind": "random", "alpha": 1.0, "concept": 0.3, "fluency": -2.4}]
        >>> r = SteeringResult("m", 3, "all", "sentiment", "positive", [0.0, 1.0], [], ["p"], rows)
        >>> r.best()["direction"], r.summary()[1]["concept_change"]
        ('d', 0.7)
    """

    model: str
    layer: int
    positions: str
    concept: str
    target: str
    alphas: list[float]
    directions: list[dict]
    prompts: list[str]
    rows: list[dict]
    instruction: str = ""
    scale: list[float] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[dict]:
        """Per direction and strength, over prompts: mean concept score, its change from the unsteered run, mean fluency,
        the fluency lost, and whether it beats the random direction at the same strength (``flag`` when it does not)."""
        base = {r["prompt"]: r for r in self.rows if r["kind"] == "none"}
        groups: dict[tuple, list[dict]] = {}
        for r in self.rows:
            groups.setdefault((r["direction"], r["kind"], r["alpha"]), []).append(r)
        out = []
        for (name, kind, alpha), rows in groups.items():
            concept = float(np.mean([r["concept"] for r in rows]))
            change = float(np.mean([r["concept"] - base[r["prompt"]]["concept"] for r in rows]))
            flu = [r["fluency"] for r in rows if r["fluency"] is not None]
            lost = [base[r["prompt"]]["fluency"] - r["fluency"] for r in rows if r["fluency"] is not None and base[r["prompt"]]["fluency"] is not None]
            out.append({"direction": name, "kind": kind, "alpha": alpha, "concept": round(concept, 6), "concept_change": round(change, 6),
                        "fluency": round(float(np.mean(flu)), 6) if flu else None, "fluency_loss": round(float(np.mean(lost)), 6) if lost else None,
                        "prompts": len(rows)})
        control = {row["alpha"]: row["concept_change"] for row in out if row["kind"] == "random"}
        for row in out:
            row["flag"] = ""
            if row["kind"] in ("none", "random", "prompting"):
                continue
            if row["alpha"] in control and row["concept_change"] <= control[row["alpha"]]:
                row["flag"] = "moves the concept no more than a random direction of the same length"
        return out

    def best(self, *, max_fluency_loss: float = FLUENCY_LOSS) -> dict | None:
        """The steered row (not random, not prompting) with the largest concept change whose fluency loss is at most
        ``max_fluency_loss`` nats per token and that beats the random direction; ``None`` if there is none."""
        ok = [r for r in self.summary() if r["kind"] not in ("none", "random", "prompting") and not r["flag"]
              and r["fluency_loss"] is not None and r["fluency_loss"] <= max_fluency_loss]
        return max(ok, key=lambda r: r["concept_change"]) if ok else None

    def verdict(self) -> str:
        """One sentence: which direction steers best within the fluency budget, and against prompting."""
        best = self.best()
        prompting = next((r for r in self.summary() if r["kind"] == "prompting"), None)
        said = (f"prompting moves the concept by {prompting['concept_change']:+.2f} at a fluency loss of {prompting['fluency_loss']:.2f} nats/token"
                if prompting and prompting["fluency_loss"] is not None else "")
        if best is None:
            return "no direction moves the concept more than a random one within a fluency loss of 1 nat per token" + (f"; {said}" if said else "")
        reached = "" if best["concept_change"] >= MOVES else f" (below the {MOVES} a steering direction should reach)"
        return (f"best: {best['direction']} at strength {best['alpha']:g}: concept {best['concept_change']:+.2f}{reached}, fluency loss "
                f"{best['fluency_loss']:.2f} nats/token" + (f"; {said}" if said else ""))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict: no NaN)."""
        return {"model": self.model, "layer": self.layer, "positions": self.positions, "concept": self.concept, "target": self.target,
                "alphas": self.alphas, "directions": self.directions, "prompts": self.prompts, "instruction": self.instruction,
                "scale": [round(s, 6) for s in self.scale], "rows": self.rows, "summary": self.summary(), "best": self.best(),
                "verdict": self.verdict(), "seconds": round(self.seconds, 4), "notes": list(self.notes)}

    def to_json(self, **kwargs: Any) -> str:
        """Strict JSON."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_csv(self) -> str:
        """One row per continuation."""
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["prompt", "direction", "kind", "alpha", "concept", "fluency", "tokens", "text"])
        for r in self.rows:
            w.writerow([self.prompts[r["prompt"]], r["direction"], r["kind"], "" if r["alpha"] is None else r["alpha"], f"{r['concept']:.6g}",
                        "" if r["fluency"] is None else f"{r['fluency']:.6g}", r["tokens"], r["text"]])
        return out.getvalue()


def greedy(model: LoadedModel, ids: Sequence[int], plans: Sequence[Sequence[Intervention]], *, max_new_tokens: int,
           start: int | None = None, watch: Sequence[int] = ()) -> tuple[list[list[int]], np.ndarray]:
    """Greedy continuations of the prompt ``ids`` (one batch row per plan, the KV cache shared by the batch): row ``i``
    runs with ``plans[i]`` applied at every position (``start``: from that prompt position on, and every generated token).
    Also the mean over each row's steps of log Σ p(``watch`` tokens) (NaN without ``watch``).

    Examples:
        >>> from shatterbox import load
        >>> m = load("gemma-3-270m")  # doctest: +SKIP
        >>> greedy(m, tokenize_prompt(m, "Hello").ids, [[]], max_new_tokens=3)[0]  # doctest: +SKIP
        [[236764, 564, 1006]]
    """
    rows = len(plans)
    ends = end_ids(model)
    prompt = torch.tensor([list(ids)] * rows)
    width = prompt.shape[1]
    first = [[Intervention(i.site, i.op, i.value, range(start, width)) for i in plan] for plan in plans] if start is not None else plans
    new: list[list[int]] = [[] for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool)
    watched = torch.zeros(rows, dtype=torch.float64)
    steps = torch.zeros(rows, dtype=torch.float64)
    watch_ids = torch.tensor(list(watch), dtype=torch.long)
    with torch.inference_mode():
        with intervening(model, first, width):
            out = model.model(input_ids=prompt, attention_mask=torch.ones_like(prompt), use_cache=True, **model.keep_logits(1))
        mask = torch.ones_like(prompt)
        for step in range(max_new_tokens):
            logits = out.logits[:, -1].float()
            if len(watch_ids):
                logp = torch.log_softmax(logits, dim=-1)
                watched += torch.where(done, 0.0, torch.logsumexp(logp[:, watch_ids], dim=-1).double())
                steps += (~done).double()
            token = logits.argmax(dim=-1)
            for r in np.flatnonzero(~done.numpy()):
                t = int(token[r])
                if t in ends:
                    done[r] = True
                else:
                    new[r].append(t)
            if bool(done.all()) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype)], dim=1)
            with intervening(model, plans, 1):
                out = model.model(input_ids=token[:, None], attention_mask=mask, use_cache=True, **_cache(model, out), **model.keep_logits(1))
    mean = (watched / steps.clamp(min=1)).numpy() if len(watch_ids) else np.full(rows, np.nan)
    return new, mean


def _cache(model: LoadedModel, out: Any) -> dict[str, Any]:
    """The KV cache of ``out``, under the name this version of transformers takes (``cache``, earlier ``past_key_values``)."""
    cache = getattr(out, "cache", None)
    if cache is None:
        cache = out.past_key_values
    return {"cache": cache} if "cache" in model.forward_keys else {"past_key_values": cache}


def fluency(model: LoadedModel, ids: Sequence[int], continuations: Sequence[Sequence[int]], *, batch: int = 32) -> list[float | None]:
    """The unsteered model's mean log-probability per token of each continuation after the prompt ``ids`` (nats; ``None``
    for an empty continuation).

    Examples:
        >>> from shatterbox import load
        >>> m = load("gemma-3-270m")  # doctest: +SKIP
        >>> p = tokenize_prompt(m, "The capital of France is").ids  # doctest: +SKIP
        >>> fluency(m, p, [[]])  # doctest: +SKIP
        [None]
    """
    out: list[float | None] = [None] * len(continuations)
    todo = [i for i, c in enumerate(continuations) if len(c)]
    n = len(ids)
    for k in range(0, len(todo), batch):
        part = todo[k:k + batch]
        longest = max(len(continuations[i]) for i in part)
        x = torch.zeros(len(part), n + longest, dtype=torch.long)
        mask = torch.zeros_like(x)
        for row, i in enumerate(part):
            seq = list(ids) + list(continuations[i])
            x[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        with torch.inference_mode():
            logits = model.model(input_ids=x, attention_mask=mask, **model.keep_logits(longest + 1)).logits
            logp = torch.log_softmax(logits[:, -(longest + 1):-1].float(), dim=-1)
        got = logp.gather(-1, x[:, n:, None])[..., 0]
        for row, i in enumerate(part):
            out[i] = float(got[row, :len(continuations[i])].mean())
    return out


def concept_tokens(model: LoadedModel, words: Sequence[str]) -> list[int]:
    """The first token of each concept word, with and without a leading space (what the model would write next).

    Examples:
        >>> from shatterbox import load
        >>> len(concept_tokens(load("gemma-3-270m"), ["happy"])) >= 1  # doctest: +SKIP
        True
    """
    found = set()
    for word in words:
        for form in (word, " " + word):
            got = model.tokenizer(form, add_special_tokens=False)["input_ids"]
            if got:
                found.add(int(got[0]))
    if not found:
        raise InputError("the concept words give no tokens: give words such as happy,joy", parameter="concept")
    return sorted(found)


def _concept(concept: str | Sequence[str], target: str) -> tuple[str, list[str] | None]:
    if isinstance(concept, str) and concept == "sentiment":
        if target not in ("positive", "negative"):
            raise InputError(f"the sentiment concept's target is positive or negative, not {target!r}", parameter="target")
        return "sentiment", None
    words = [w.strip() for w in (concept.split(",") if isinstance(concept, str) else concept) if w and w.strip()]
    if not words:
        raise InputError("no concept given: give concept='sentiment' or concept words such as happy,joy", parameter="concept")
    return "words: " + ", ".join(words), words


def _prompts(prompts: str | Sequence[str]) -> list[str]:
    listed = [prompts] if isinstance(prompts, str) else list(prompts)
    if not listed or any(not isinstance(p, str) or not p.strip() for p in listed):
        raise InputError("a prompt is empty: give one or more texts to continue", parameter="prompts")
    return listed


def _directions(model: LoadedModel, directions: Direction | Sequence[Direction], layer: int | None) -> tuple[list[Direction], int]:
    listed = [directions] if isinstance(directions, Direction) else list(directions)
    if not listed:
        raise InputError("no direction given: give a DiffMean, probe, factor or vector direction", parameter="directions")
    if layer is None:
        layers = {d.layer for d in listed}
        if len(layers) > 1:
            raise InputError(f"the directions come from hidden layers {sorted(layers)}: steer along one layer's directions at a time, or give layer=",
                             parameter="layer")
        layer = layers.pop()
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise InputError(f"layer {layer!r} is not a whole number: give a hidden layer 0-{model.n_layers}", parameter="layer")
    return [d.check(model, int(layer)) for d in listed], int(layer)


def _scale(model: LoadedModel, ids: Sequence[int], layer: int) -> float:
    """The median residual-stream norm at hidden layer ``layer`` over the prompt's tokens (its first token left out:
    the start token's state is far larger in many decoders)."""
    x = torch.tensor([list(ids)])
    with torch.inference_mode(), collecting(model, [Site("hidden", layer)]) as found:
        model.model(input_ids=x, attention_mask=torch.ones_like(x))
    norms = found[Site("hidden", layer)][0].float().norm(dim=-1)
    return float(norms[1:].median() if len(norms) > 1 else norms[0])


def steer(model: LoadedModel, prompts: str | Sequence[str], directions: Direction | Sequence[Direction], *, layer: int | None = None,
          alphas: str | Sequence[float] = STEER.alphas, positions: str = STEER.positions, max_new_tokens: int = STEER.max_new_tokens,
          concept: str | Sequence[str] = "sentiment", target: str = "positive", instruction: str | None = None, seed: int = STEER.seed,
          progress: Callable[[int, int], None] | None = None) -> SteeringResult:
    """Generate greedily from each prompt with ``alpha`` × the layer's median residual norm × each direction's unit vector
    added to hidden state ``layer`` (``positions``: ``all`` tokens, or ``generated``: from the last prompt token on), for
    every strength, beside the unsteered model, a random direction (``seed``) and prompting (``instruction`` before the
    prompt; default from the concept, ``""`` for none). Concept score: the shipped sentiment classifier's probability of
    ``target`` for the continuation (``concept="sentiment"``), or the steered model's mean log-probability of the concept
    words' first tokens per step (``concept`` = words). Fluency: the unsteered model's log-probability per token.

    Examples:
        >>> from shatterbox import load
        >>> from shatterbox.steering import diffmean
        >>> m = load("gemma-3-270m")  # doctest: +SKIP
        >>> r = steer(m, "I went to the market and", diffmean("sentiment-store", 6, "label", "positive", "negative"))  # doctest: +SKIP
        >>> r.verdict()  # doctest: +SKIP
        'best: DiffMean label: positive - negative at strength 1: concept +0.52, ...'
    """
    started = time.perf_counter()
    language_model_parts(model)
    texts = _prompts(prompts)
    listed, layer = _directions(model, directions, layer)
    strengths = parse_alphas(alphas)
    if positions not in ("all", "generated"):
        raise InputError(f"positions must be all or generated, not {positions!r}", parameter="positions")
    if not 1 <= max_new_tokens <= 128:
        raise InputError(f"max_new_tokens={max_new_tokens} is out of range: give 1 to 128", parameter="max_new_tokens")
    label, words = _concept(concept, target)
    if instruction is None:
        instruction = INSTRUCTIONS["sentiment"].format(target=target) if words is None else f"Write about {', '.join(words)}.\n"
    watch = concept_tokens(model, words) if words else []
    steered = listed + [random_direction(model, layer, seed=seed)]
    combos = [(None, 0.0)] + [(d, a) for d in steered for a in strengths if a != 0.0]
    rows: list[dict] = []
    scales = []
    for k, text in enumerate(texts):
        ids = tokenize_prompt(model, text).ids
        scale = _scale(model, ids, layer)
        scales.append(scale)
        plans = [[] if d is None else [add(Site("hidden", layer), d.unit * (a * scale))] for d, a in combos]
        new, watched = greedy(model, ids, plans, max_new_tokens=max_new_tokens, start=len(ids) - 1 if positions == "generated" else None, watch=watch)
        for (d, a), cont, w in zip(combos, new, watched):
            rows.append({"prompt": k, "direction": "unsteered" if d is None else d.name, "kind": "none" if d is None else d.kind,
                         "alpha": a, "ids": cont, "watched": w})
        if instruction:
            asked = tokenize_prompt(model, instruction + text).ids
            p_new, p_watched = greedy(model, asked, [[]], max_new_tokens=max_new_tokens, watch=watch)
            rows.append({"prompt": k, "direction": "prompting", "kind": "prompting", "alpha": None, "ids": p_new[0], "watched": p_watched[0]})
        by_prompt = [r for r in rows if r["prompt"] == k]
        for r, f in zip(by_prompt, fluency(model, ids, [r["ids"] for r in by_prompt])):
            r["fluency"] = None if f is None else round(f, 6)
        if progress is not None:
            progress(k + 1, len(texts))
    for r in rows:
        r["text"] = model.tokenizer.decode(r["ids"])
        r["tokens"] = len(r["ids"])
    _score(rows, words, target)
    for r in rows:
        del r["ids"], r["watched"]
    return SteeringResult(model.name, layer, positions, label, target if words is None else "", strengths, [d.to_dict() for d in steered], texts, rows,
                          instruction or "", scales, time.perf_counter() - started)


def _score(rows: list[dict], words: list[str] | None, target: str) -> None:
    """Each row's concept score: the sentiment classifier's probability of ``target``, or the watched log-probability."""
    if words:
        for r in rows:
            r["concept"] = round(float(r["watched"]), 6)
        return
    from shatterbox.classifiers.sentiment import LABELS, sentiment

    probs = sentiment().predict([r["text"] for r in rows])[:, LABELS.index(target)]
    for r, p in zip(rows, probs):
        r["concept"] = round(float(p), 6)
