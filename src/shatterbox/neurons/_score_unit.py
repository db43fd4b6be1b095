"""Scoring one unit's explanation and its three baselines with the same simulator and judge."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from shatterbox.neurons._offline import Simulator
from shatterbox.neurons._scoring import LEVELS, Score, balanced_accuracy, correlation_score, discretise, paired_difference
from shatterbox.neurons._units import Excerpt, Records

MARGIN = 0.05  # an explanation must beat each baseline's correlation by this much, and by more than resampling noise
BASELINES = ("random", "shuffled", "token_lookup")
DETECT_LEVEL = LEVELS / 2  # a simulated level from which the simulator's judge calls an excerpt activating
QUIET_LEVEL = 2  # detection: an excerpt peaking at level >= 5 activates, one below 2 does not; those in between are left out


class Judge(Protocol):
    """Answers delphi's two questions from an explanation: does each excerpt activate the unit (detection), and are
    each excerpt's highlighted tokens the ones the explanation describes (fuzzing)?"""

    name: str

    def detect(self, explanation: str, excerpts: Sequence[Excerpt]) -> np.ndarray: ...

    def fuzz(self, explanation: str, excerpts: Sequence[Excerpt], highlights: Sequence[np.ndarray]) -> np.ndarray: ...


class Remembered:
    """A simulator that answers an excerpt it has already simulated for the same explanation from memory: the
    correlation score, detection and fuzzing read the same held-out excerpts, and a simulator reads nothing but the
    explanation and the tokens. It remembers one explanation at a time.

    Examples:
        >>> from shatterbox.neurons._offline import TokenSimulator
        >>> sim = Remembered(TokenSimulator())
        >>> e = Excerpt(0, ["a", "bank"], np.zeros(2))
        >>> [x.tolist() for x in sim.simulate('"bank" (9)', [e, e])], sim.simulated
        ([[0.0, 9.0], [0.0, 9.0]], 1)
    """

    def __init__(self, simulator: Simulator) -> None:
        self.simulator, self.name = simulator, simulator.name
        self.simulated = 0  # excerpts the wrapped simulator was asked for
        self._explanation: str | None = None
        self._memo: dict[tuple[str, ...], np.ndarray] = {}

    def simulate(self, explanation: str, excerpts: Sequence[Excerpt]) -> list[np.ndarray]:
        """Simulated 0–10 activations, one array per excerpt; only excerpts not seen with this explanation are simulated."""
        if explanation != self._explanation:
            self._explanation, self._memo = explanation, {}
        keys = [tuple(e.tokens) for e in excerpts]
        missing = {k: e for k, e in zip(keys, excerpts) if k not in self._memo}
        if missing:
            self._memo.update(zip(missing, self.simulator.simulate(explanation, list(missing.values()))))
            self.simulated += len(missing)
        return [self._memo[k] for k in keys]


class SimulationJudge:
    """A judge built on a simulator: an excerpt activates when some token is simulated at level >= 5; a
    highlighting is right when the highlighted tokens' mean simulated level exceeds the others'.

    Examples:
        >>> from shatterbox.neurons._offline import TokenSimulator
        >>> j = SimulationJudge(TokenSimulator())
        >>> j.detect('"bank" (9)', [Excerpt(0, ["a", "bank"], np.zeros(2)), Excerpt(1, ["a", "dog"], np.zeros(2))]).tolist()
        [True, False]
    """

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator
        self.name = simulator.name

    def detect(self, explanation: str, excerpts: Sequence[Excerpt]) -> np.ndarray:
        """Whether each excerpt activates, by its largest simulated level."""
        return np.array([s.max() >= DETECT_LEVEL for s in self.simulator.simulate(explanation, excerpts)], dtype=bool)

    def fuzz(self, explanation: str, excerpts: Sequence[Excerpt], highlights: Sequence[np.ndarray]) -> np.ndarray:
        """Whether each highlighting is right: its tokens are simulated higher, on average, than the rest."""
        sims = self.simulator.simulate(explanation, excerpts)
        return np.array([s[h].mean() > s[~h].mean() for s, h in zip(sims, highlights)], dtype=bool)


def fuzz_items(records: Records, seed: int = 0) -> tuple[list[Excerpt], list[np.ndarray], np.ndarray]:
    """Delphi's fuzzing items from the held-out top excerpts: each excerpt twice, once with its activating tokens
    highlighted (level >= 1), once with as many non-activating tokens highlighted instead; (excerpts, highlight
    masks, whether the highlighting is right). Excerpts whose tokens all activate, or none, are left out.

    Examples:
        >>> r = Records(0, "u", 1.0, [], [Excerpt(0, ["a", "bank"], np.array([0.0, 1.0]))], [], [])
        >>> _, masks, right = fuzz_items(r)
        >>> [m.tolist() for m in masks], right.tolist()
        ([[False, True], [True, False]], [True, False])
    """
    rng = np.random.default_rng([seed, records.unit, 11])
    excerpts, masks, right = [], [], []
    for e in records.score_top:
        active = discretise(e.activations, records.maximum) >= 1
        quiet = np.flatnonzero(~active)
        if not active.any() or len(quiet) == 0:
            continue
        wrong = np.zeros_like(active)
        wrong[rng.choice(quiet, size=min(int(active.sum()), len(quiet)), replace=False)] = True
        excerpts += [e, e]
        masks += [active, wrong]
        right += [True, False]
    return excerpts, masks, np.array(right, dtype=bool)


def score(records: Records, explanation: str, simulator: Simulator, judge: Judge, *, seed: int = 0) -> dict:
    """Correlation (simulator), detection and fuzzing (judge) of one explanation on the held-out excerpts.

    Detection asks about every held-out excerpt that clearly activates (peak level >= 5) or clearly does not
    (peak level < 2), whether it came from the top or the random ones: a random excerpt that fires counts as firing.

    Returns ``{"simulated": [...], "correlation": Score, "detection": Score, "fuzzing": Score}``.
    """
    held = records.score_top + records.score_random
    simulated = simulator.simulate(explanation, held)
    truth = [e.activations for e in held]
    peaks = np.array([discretise(e.activations, records.maximum).max() for e in held])
    clear = (peaks >= DETECT_LEVEL) | (peaks < QUIET_LEVEL)
    labels = peaks[clear] >= DETECT_LEVEL
    if labels.any() and not labels.all():
        detection = balanced_accuracy(labels, judge.detect(explanation, [e for e, c in zip(held, clear) if c]), seed=seed)
    else:
        detection = Score(float("nan"), float("nan"), float("nan"))
    items, masks, right = fuzz_items(records, seed)
    fuzzing = balanced_accuracy(right, judge.fuzz(explanation, items, masks), seed=seed) if len(items) else Score(float("nan"), float("nan"), float("nan"))
    return {"simulated": simulated, "correlation": correlation_score(truth, simulated, seed=seed), "detection": detection, "fuzzing": fuzzing}


def verdict(records: Records, main: dict, baselines: dict[str, dict], seed: int = 0) -> tuple[bool, str, dict[str, Score]]:
    """(flagged, reason, paired differences): flagged unless the explanation's correlation beats the shuffled and the
    token-lookup baselines' by at least ``MARGIN`` with the paired bootstrap 95 % interval above 0.

    Examples:
        >>> top = [Excerpt(i, ["a", "b"], np.array([0.0, 1.0])) for i in range(8)]
        >>> r = Records(0, "u", 1.0, [], top, [], [Excerpt(9, ["c", "d"], np.array([0.0, 0.0]))] * 8)
        >>> good = {"simulated": [np.array([0.0, 9.0])] * 8 + [np.array([0.0, 0.0])] * 8}
        >>> bad = {"simulated": [np.array([9.0, 0.0])] * 8 + [np.array([0.0, 9.0])] * 8}
        >>> verdict(r, good, {"shuffled": bad, "token_lookup": good})[:2]
        (True, 'no better than token lookup')
    """
    truth = [e.activations for e in records.score_top + records.score_random]
    diffs = {name: paired_difference(truth, main["simulated"], baselines[name]["simulated"], seed=seed) for name in ("shuffled", "token_lookup")}
    losers = [name.replace("_", " ") for name, d in diffs.items() if not (d.value >= MARGIN and d.low > 0)]
    return bool(losers), ("" if not losers else "no better than " + " or ".join(losers)), diffs
