"""Explainers and simulators that need no language model, and the baselines every explanation is scored against.

The offline explanation is a short list of rules learned from the explainer's excerpts, written as text
that the offline simulator reads back (and a person can read): ``"bank" (9), "banks" (6); after "river" (7);
elsewhere 1`` — the unit fires on the token *bank* at about 9 of 10, on the token after *river* at about 7,
and at about 1 on every other token. Nothing else passes from explainer to simulator.
"""

from __future__ import annotations

import re
from typing import Protocol, Sequence

import numpy as np

from shatterbox.neurons._scoring import LEVELS, discretise
from shatterbox.neurons._units import Excerpt, Records

MAX_RULES = 16  # measured on 192 neurons of the default model: 4 rules 0.42, 8 0.48, 16 0.51, 24 0.51 mean correlation
MIN_GAIN = 0.01  # a rule must remove at least 1 % of the squared error left to be kept
MIN_SUPPORT = 2  # an ``after`` rule must match at least this many tokens of the explainer's excerpts
_RULE = re.compile(r'(after\s+)?"((?:[^"\\]|\\.)+)"\s*\((\d+(?:\.\d+)?)\)')
_ELSEWHERE = re.compile(r"elsewhere\s+(\d+(?:\.\d+)?)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")
_STOP = frozenset("a an and are as at be by fires for from in is it its of on or that the this to token tokens unit when where which with word words neuron".split())


class Explainer(Protocol):
    """Writes an explanation of one unit from its records (only ``explain_top``/``explain_random`` may be read)."""

    name: str

    def explain(self, records: Records) -> str: ...


class Simulator(Protocol):
    """Predicts each token's 0–10 activation from an explanation alone."""

    name: str

    def simulate(self, explanation: str, excerpts: Sequence[Excerpt]) -> list[np.ndarray]: ...


def _quote(token: str) -> str:
    return '"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _keys(excerpts: Sequence[Excerpt]) -> tuple[list[str], list[str]]:
    """Each token (lower-cased) and the token before it ("" at an excerpt's start), flattened."""
    tokens = [t.lower() for e in excerpts for t in e.tokens]
    previous = [p.lower() for e in excerpts for p in ([""] + e.tokens[:-1])]
    return tokens, previous


class TokenExplainer:
    """The offline explainer: greedy rules ``token`` or ``after token`` that best predict the discretised
    activations of the explainer's top and random excerpts (each rule predicts its tokens' mean level; a token
    takes its strongest matching rule; the rest take the mean of what no rule matches).

    Examples:
        >>> e = [Excerpt(0, ["the", "bank", "is"], np.array([0.0, 1.0, 0.0])), Excerpt(1, ["a", "bank"], np.array([0.0, 0.9])), Excerpt(2, ["the", "cat"], np.array([0.0, 0.0]))]
        >>> r = Records(0, "u", 1.0, e, [], [Excerpt(2, ["the", "dog"], np.array([0.0, 0.0]))], [])
        >>> TokenExplainer().explain(r)
        '"bank" (10)'
    """

    name = "offline"

    def __init__(self, max_rules: int = MAX_RULES, min_gain: float = MIN_GAIN) -> None:
        self.max_rules, self.min_gain = max_rules, min_gain

    def explain(self, records: Records) -> str:
        """The explanation string of ``records`` (see the module's docstring for its form)."""
        excerpts = records.explain_top + records.explain_random
        tokens, previous = _keys(excerpts)
        levels = np.concatenate([discretise(e.activations, records.maximum) for e in excerpts]).astype(np.float64)
        candidates = self._candidates(tokens, previous, levels)
        rules = self._greedy(candidates, levels)
        return _format(rules, levels, candidates)

    @staticmethod
    def _candidates(tokens: list[str], previous: list[str], levels: np.ndarray) -> list[tuple[str, str, np.ndarray, float]]:
        """(kind, token, mask, mean level) for every token and previous token seen with a non-zero level."""
        out = []
        for kind, keys in (("token", np.asarray(tokens, dtype=object)), ("after", np.asarray(previous, dtype=object))):
            for key in sorted({k for k, lv in zip(keys, levels) if lv > 0 and k}):
                mask = keys == key
                if kind == "token" or mask.sum() >= MIN_SUPPORT:
                    out.append((kind, key, mask, float(levels[mask].mean())))
        return out

    def _greedy(self, candidates: list, levels: np.ndarray) -> list[int]:
        chosen: list[int] = []
        prediction = np.zeros_like(levels)
        matched = np.zeros(len(levels), dtype=bool)
        error = self._error(levels, prediction, matched)
        for _ in range(self.max_rules):
            best, best_error = -1, error
            for i, (_, _, mask, mean) in enumerate(candidates):
                if i in chosen or mean < 1:
                    continue
                trial = self._error(levels, np.where(mask, np.maximum(prediction, mean), prediction), matched | mask)
                if trial < best_error - 1e-12:
                    best, best_error = i, trial
            if best < 0 or error - best_error < self.min_gain * error:
                break
            chosen.append(best)
            _, _, mask, mean = candidates[best]
            prediction, matched, error = np.where(mask, np.maximum(prediction, mean), prediction), matched | mask, best_error
        return chosen

    @staticmethod
    def _error(levels: np.ndarray, prediction: np.ndarray, matched: np.ndarray) -> float:
        rest = levels[~matched].mean() if (~matched).any() else 0.0
        return float(((levels - np.where(matched, prediction, rest)) ** 2).sum())


def _format(rules: list[int], levels: np.ndarray, candidates: list) -> str:
    parts, afters = [], []
    matched = np.zeros(len(levels), dtype=bool)
    for i in sorted(rules, key=lambda i: -candidates[i][3]):
        kind, key, mask, mean = candidates[i]
        matched |= mask
        (afters if kind == "after" else parts).append(f"{'after ' if kind == 'after' else ''}{_quote(key)} ({int(round(mean))})")
    text = "; ".join(s for s in (", ".join(parts), ", ".join(afters)) if s)
    rest = int(round(levels[~matched].mean())) if (~matched).any() else 0
    if rest >= 1:
        text = f"{text}; elsewhere {rest}" if text else f"elsewhere {rest}"
    return text or "no clear pattern"


def parse(explanation: str) -> tuple[dict[str, float], dict[str, float], float]:
    """(token rules, after rules, elsewhere level) read from an explanation; free text without rules falls back to
    its quoted tokens, else its content words, at level 10.

    Examples:
        >>> parse('"bank" (9), "shore" (3); after "river" (7); elsewhere 1')
        ({'bank': 9.0, 'shore': 3.0}, {'river': 7.0}, 1.0)
        >>> parse("mentions of money and banks")[0]
        {'mentions': 10.0, 'money': 10.0, 'banks': 10.0}
        >>> parse('the token "the" before nouns')[0]
        {'the': 10.0}
    """
    tokens: dict[str, float] = {}
    after: dict[str, float] = {}
    for prefix, key, level in _RULE.findall(explanation):
        target = after if prefix else tokens
        target[_unquote(key).lower()] = max(target.get(_unquote(key).lower(), 0.0), min(float(level), LEVELS))
    found = _ELSEWHERE.search(explanation)
    elsewhere = min(float(found.group(1)), LEVELS) if found else 0.0
    if not tokens and not after and not found:  # free text: its quoted tokens, else its content words, at level 10
        quoted = [_unquote(q).lower() for q in re.findall(r'"((?:[^"\\]|\\.)+)"', explanation)]
        words = quoted or [w.lower() for w in _WORD.findall(explanation) if w.lower() not in _STOP]
        tokens = {w: float(LEVELS) for w in words}
    return tokens, after, elsewhere


class TokenSimulator:
    """The offline simulator: each token takes the level of the strongest rule of the explanation it matches
    (its own token, or the token before it), else the ``elsewhere`` level. Reads nothing but the explanation.

    Examples:
        >>> TokenSimulator().simulate('"bank" (9); after "river" (7)', [Excerpt(0, ["river", "bank", "x"], np.zeros(3))])[0].tolist()
        [0.0, 9.0, 0.0]
    """

    name = "offline"

    def simulate(self, explanation: str, excerpts: Sequence[Excerpt]) -> list[np.ndarray]:
        """Simulated 0–10 activations, one array per excerpt."""
        tokens, after, elsewhere = parse(explanation)
        out = []
        for e in excerpts:
            own = np.array([tokens.get(t.lower(), -1.0) for t in e.tokens])
            prev = np.array([after.get(p.lower(), -1.0) for p in [""] + e.tokens[:-1]]) if after else np.full(len(e.tokens), -1.0)
            best = np.maximum(own, prev)
            out.append(np.where(best >= 0, best, elsewhere))
        return out


def token_lookup(records: Records, limit: int = MAX_RULES) -> str:
    """Baseline: the tokens where the explainer's top excerpts peak, each at level 10, nothing else.

    Examples:
        >>> e = [Excerpt(0, ["the", "bank"], np.array([0.0, 1.0])), Excerpt(1, ["a", "shore"], np.array([0.0, 0.3]))]
        >>> token_lookup(Records(0, "u", 1.0, e, [], [], []))
        '"bank" (10), "shore" (10)'
    """
    peaks: list[str] = []
    for e in records.explain_top:
        token = e.tokens[int(e.activations.argmax())].lower()
        if token not in peaks:
            peaks.append(token)
    return ", ".join(f"{_quote(t)} ({LEVELS})" for t in peaks[:limit])


def random_explanation(records: Records, vocabulary: Sequence[str], seed: int = 0, size: int = MAX_RULES) -> str:
    """Baseline: ``size`` tokens drawn (seeded per unit) from ``vocabulary``, each at level 10.

    Examples:
        >>> random_explanation(Records(3, "u", 1.0, [], [], [], []), ["a", "b", "c"], size=2).count("(10)")
        2
    """
    rng = np.random.default_rng([seed, records.unit, 7])
    vocab = sorted(set(vocabulary))  # token types: a frequent word is as likely as a rare one
    picked = rng.choice(len(vocab), size=min(size, len(vocab)), replace=False) if vocab else []
    return ", ".join(f"{_quote(vocab[i])} ({LEVELS})" for i in picked)
