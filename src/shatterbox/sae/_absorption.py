"""Feature absorption on the first-letter task (Chanin et al. 2024, "A is for Absorption"; SAEBench's protocol).

A model knows which letter a word starts with: a linear probe on the residual stream reads it. An SAE ought to have a
"starts with S" latent that fires on every S word. Absorption is when it stays silent on some S words because a
token-specific latent ("sun") has swallowed the letter direction: the information is there, the general latent lies.

Per letter: a unit probe direction ``p`` (multinomial logistic regression on single-token words, mapped to the raw
space); the letter's *main* latents, chosen as sparse probing chooses (by class-mean difference, adding latents while
the F1 of a probe on them rises by ``SPLIT_GAIN``, at most ``MAX_SPLITS``). On each held-out word of the letter that the
probe reads right, the residual's own projection ``P = ⟨x, p⟩`` is shared out: latent ``i`` carries
``z_i · ⟨d_i, p⟩`` (``d_i`` its decoder row in the raw space); the main latents together carry ``M``; the absorbers are
the (at most ``MAX_ABSORBERS``) non-main latents with the largest positive share among those aligned with the probe
(cosine ≥ ``ABSORBER_COS``), carrying ``A``. SAEBench's rule (Chanin et al.), its thresholds:

- **absorption fraction**: 0 when ``M ≥ P`` or ``A < PROPORTION · P`` (the main latents carry the letter, or no
  absorber carries enough of it); 1 when ``M ≤ 0``; else ``a / (a + M)`` with ``a = min(A, P − M)``;
- **full absorption**: the main latents are silent, and the latent with the largest share is aligned (cosine ≥
  ``FULL_COS``) and carries at least ``PROPORTION · P`` (with ``P ≥ 0``).

Both are averaged over the words of a letter, then over letters: the scale SAEBench publishes
(``mean_absorption_fraction_score``, ``mean_full_absorption_score``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import torch

from shatterbox._batching import chunks
from shatterbox.errors import InputError
from shatterbox.factors import Factors, check_factors_control
from shatterbox.models import LoadedModel
from shatterbox.options import SAE
from shatterbox.probes import class_directions, make_probe
from shatterbox.sae._core import finite
from shatterbox.trace import encode

ABSORBER_COS = 0.1  # cosine with the probe a non-main latent needs to count towards the absorption fraction (SAEBench)
FULL_COS = 0.025  # cosine with the probe the largest-share latent needs for full absorption (SAEBench)
PROPORTION = 0.4  # share of the residual's probe projection the absorbers must carry (SAEBench)
MAX_ABSORBERS = 3  # latents that may together make up for a silent main latent (SAEBench)
EPS = 1e-8  # an activation below this is silent
SPLIT_GAIN = 0.03  # F1 a further main latent must add (SAEBench's feature-splitting threshold)
MAX_SPLITS = 3
MIN_WORDS = 10  # a letter needs this many words to be probed


@dataclass
class Absorption:
    """First-letter absorption of one SAE layer: ``letters`` rows (letter, held-out words the probe reads right, probe
    accuracy, main latents, mean absorption fraction, full-absorption rate) and their means."""

    layer: int
    letters: list[dict] = field(default_factory=list)
    probe_accuracy: float = float("nan")
    words: int = 0
    classes: int = 0  # letters the probe tells apart (chance is about 1 / classes)
    random_weights: "Absorption | None" = None  # the same SAE recipe on the random-weight model (absorption(control=...))

    @property
    def absorption_fraction(self) -> float:
        """Mean over letters of the mean absorption fraction of its words (0 best, 1 worst)."""
        return float(np.mean([r["absorption_fraction"] for r in self.letters])) if self.letters else float("nan")

    @property
    def full_absorption(self) -> float:
        """Mean over letters of the share of words whose main latents are silent while aligned latents carry the letter."""
        return float(np.mean([r["full_absorption"] for r in self.letters])) if self.letters else float("nan")

    @property
    def splits(self) -> float:
        """Mean number of main latents per letter (feature splitting)."""
        return float(np.mean([len(r["main"]) for r in self.letters])) if self.letters else float("nan")

    @property
    def knows_letters(self) -> bool:
        """Whether the letter probe reads the letters better than twice chance (else there is no letter feature to absorb)."""
        return self.probe_accuracy > 2 / max(self.classes, 1)

    @property
    def flag(self) -> str:
        """Why these fractions say little ("" when they stand): the letter probe reads the letters no better than twice
        chance, or the SAE absorbs as much as the same recipe on a random-weight model that knows the letters too.
        (A random-weight model that does not know them has no letter feature to absorb: its fraction of about 0 is the
        control of the probe, not a bar the trained SAE must pass.)"""
        problems = []
        if not self.knows_letters:
            problems.append(f"the letter probe reads {self.probe_accuracy:.2f} of {self.classes} letters (chance {1 / max(self.classes, 1):.2f}): "
                            "the model does not know them here, so the fractions mean little")
        control = self.random_weights
        if control is not None and control.knows_letters and not self.absorption_fraction < control.absorption_fraction:
            problems.append("absorbs as much as the same SAE on the random-weight model, or more")
        return "; ".join(problems)

    def to_dict(self) -> dict:
        """JSON-ready, with the means and the flag."""
        plain = {k: v for k, v in asdict(self).items() if k != "random_weights"}
        return finite(plain | {"absorption_fraction": self.absorption_fraction, "full_absorption": self.full_absorption, "splits": self.splits,
                               "flag": self.flag, "random_weights": None if self.random_weights is None else self.random_weights.to_dict()})


def absorption_arrays(codes: np.ndarray, decoder: np.ndarray, x: np.ndarray, letters: np.ndarray, probes: dict[str, np.ndarray],
                      main: dict[str, Sequence[int]], *, known: np.ndarray | None = None) -> list[dict]:
    """Absorption per letter from given arrays: ``codes`` [words, latents], ``decoder`` [latents, d] (raw space),
    ``x`` [words, d] the residual the codes encode, ``letters`` [words], ``probes`` letter -> probe direction [d],
    ``main`` letter -> main latents, ``known`` [words] whether the probe reads the word's letter right (default all).

    Examples:
        >>> dec = np.array([[1.0, 0.0], [0.7071, 0.7071]])  # latent 0: the letter; latent 1: a word that swallowed it
        >>> codes = np.array([[1.0, 0.0], [0.0, 1.0]])  # "sea" fires latent 0, "sun" fires latent 1 only
        >>> x = codes @ dec
        >>> rows = absorption_arrays(codes, dec, x, np.array(["s", "s"]), {"s": np.array([1.0, 0.0])}, {"s": [0]})
        >>> rows[0]["absorption_fraction"], rows[0]["full_absorption"]
        (0.5, 0.5)
    """
    known = np.ones(len(letters), bool) if known is None else np.asarray(known, bool)
    norms = np.linalg.norm(decoder, axis=1).clip(1e-12)
    out = []
    for letter in sorted(probes):
        rows = np.flatnonzero((letters == letter) & known)
        if not len(rows):
            continue
        fraction, full = _word_absorption(codes[rows], decoder, norms, x[rows], probes[letter], list(main[letter]))
        out.append({"letter": letter, "words": int(len(rows)), "main": [int(i) for i in main[letter]],
                    "absorption_fraction": float(fraction.mean()), "full_absorption": float(full.mean())})
    return out


def _word_absorption(codes: np.ndarray, decoder: np.ndarray, norms: np.ndarray, x: np.ndarray, probe: np.ndarray,
                     main: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(absorption fraction, full absorption) of each word of one letter, by SAEBench's rule (module docstring)."""
    p = probe / max(np.linalg.norm(probe), 1e-12)
    along = decoder @ p  # each latent's share of the letter per unit of activation
    cos = along / norms
    share = codes * along  # [words, latents]
    total = x @ p  # the residual's own projection
    is_main = np.zeros(len(decoder), bool)
    is_main[main] = True
    main_share = share[:, is_main].sum(1)
    candidates = np.where((~is_main & (cos >= ABSORBER_COS))[None] & (share > 0), share, 0.0)
    top = -np.sort(-candidates, axis=1)[:, :MAX_ABSORBERS].sum(1) if candidates.shape[1] else np.zeros(len(codes))
    with np.errstate(divide="ignore", invalid="ignore"):
        enough = top >= PROPORTION * total
        absorbed = np.minimum(top, total - main_share)
        partial = np.clip(absorbed / (absorbed + main_share), 0.0, 1.0)
    fraction = np.where((main_share >= total) | ~enough, 0.0, np.where(main_share <= 0, 1.0, partial))
    largest = share.argmax(1)
    full = ((codes[:, is_main] < EPS).all(1) & (cos[largest] >= FULL_COS) & (total >= 0)
            & (share[np.arange(len(codes)), largest] >= PROPORTION * total))
    return np.nan_to_num(fraction), full


def word_list(model: LoadedModel, *, limit: int = SAE.words, seed: int = 0) -> list[str]:
    """Lower-case alphabetic WordNet lemmas (2+ letters) that ``model``'s tokenizer keeps as one token: a seeded sample
    of at most ``limit``.

    Examples:
        >>> from shatterbox.models import load
        >>> words = word_list(load(), limit=50)  # doctest: +SKIP
        >>> len(words), all(w.isalpha() and w.islower() for w in words)  # doctest: +SKIP
        (50, True)
    """
    from shatterbox.corpus import load_corpus

    lemmas = load_corpus("wordnet").table.column("lemmas").to_pylist()
    candidates = sorted({w for entry in lemmas for w in entry.split("|") if w.isascii() and w.isalpha() and w.islower() and len(w) > 1})
    tokenizer = model.tokenizer
    ids = tokenizer(candidates, add_special_tokens=False)["input_ids"]
    single = [w for w, i in zip(candidates, ids) if len(i) == 1]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(single), min(limit, len(single)), replace=False) if single else []
    return [single[i] for i in sorted(picked)]


def word_vectors(model: LoadedModel, words: Sequence[str], layer: int, *, batch: int = 256) -> np.ndarray:
    """[words, d] hidden state ``layer`` at each word's own token (each word alone, with the model's special tokens)."""
    out = []
    for part in chunks(len(words), batch):
        enc = encode(model, list(words[part]))
        first = [next(i for i, s in enumerate(enc.batch.sequence_ids(row)) if s is not None) for row in range(len(enc.texts))]
        with torch.inference_mode():
            hidden = model.model(**enc.model_inputs(model.forward_keys), output_hidden_states=True, return_dict=True).hidden_states[layer]
        out.append(hidden[torch.arange(len(first)), torch.tensor(first)].float().numpy())
    return np.concatenate(out)


def _main_latents(codes: np.ndarray, positive: np.ndarray, seed: int) -> list[int]:
    """The letter's main latents: by class-mean difference, added while a probe's F1 on them rises by SPLIT_GAIN."""
    from sklearn.metrics import f1_score

    gap = codes[positive].mean(0) - codes[~positive].mean(0)
    ranked = [int(i) for i in np.argsort(-gap, kind="stable")[:MAX_SPLITS] if gap[i] > 0]
    chosen, best = [], 0.0
    for latent in ranked:
        trial = chosen + [latent]
        f1 = f1_score(positive, make_probe("linear", seed=seed).fit(codes[:, trial], positive).predict(codes[:, trial]), zero_division=0)
        if chosen and f1 < best + SPLIT_GAIN:
            break
        chosen, best = trial, f1
    return chosen or ranked[:1]


def absorption(factors: Factors, model: LoadedModel, *, layer: int | None = None, words: Sequence[str] | int = SAE.words,
               seed: int = 0, control: tuple[Factors, LoadedModel] | None = None) -> Absorption:
    """First-letter absorption of ``factors`` at hidden state ``layer`` on ``model`` (default: a seeded sample of
    single-token WordNet lemmas, or the given words; 80 % train the probe and choose the main latents, 20 % are scored).
    ``control`` = (factors fitted the same way on the random-weight store, checked to be that control, and the
    random-weight model): measured alike on the same words, into :attr:`Absorption.random_weights`.

    Examples:
        >>> # see tests/sae/test_absorption.py
    """
    layer = factors.layer_of(layer)
    if control is not None:  # refused before any work when it is not the control
        check_factors_control(factors, factors.open_store(), control[0], control[0].open_store())
    words = word_list(model, limit=words, seed=seed) if isinstance(words, int) else list(words)
    letters = np.array([w[0] for w in words])
    classes, counts = np.unique(letters, return_counts=True)
    keep = np.isin(letters, classes[counts >= MIN_WORDS])
    if len(set(letters[keep])) < 2:
        raise InputError(f"{len(words)} words give fewer than two letters with {MIN_WORDS} words each: give more words")
    words, letters = [w for w, k in zip(words, keep) if k], letters[keep]
    x = word_vectors(model, words, layer)
    rng = np.random.default_rng(seed)
    test = rng.random(len(words)) < 0.2
    probe = make_probe("linear", seed=seed).fit(x[~test], letters[~test])
    directions = class_directions(probe)
    known = probe.predict(x[test]) == letters[test]
    decoder = factors.models[layer].components_ * factors.scale[layer]  # decoder rows in the raw space
    start = factors.block(layer)  # this layer's own factors
    codes = factors.codes(x, layer, units=[start])[:, start:start + len(decoder)]
    main = {c: _main_latents(codes[~test], letters[~test] == c, seed) for c in directions}  # numbered within the layer's block
    rows = absorption_arrays(codes[test], decoder, x[test], letters[test], directions, main, known=known)
    accuracy = {str(c): float(known[letters[test] == c].mean()) for c in directions if (letters[test] == c).any()}
    for row in rows:
        row["probe_accuracy"] = accuracy[row["letter"]]
        row["main"] = [start + i for i in row["main"]]  # numbered as the factors file numbers them
    result = Absorption(layer, rows, float(known.mean()), len(words), len(directions))
    if control is not None:
        c_factors, c_model = control
        result.random_weights = absorption(c_factors, c_model, layer=layer, words=words, seed=seed)
    return result


def absorption_summary(results: Sequence[Absorption]) -> list[dict]:
    """Mean ± sd over seeds (one :class:`Absorption` per seed) of the SAE's absorption and, when measured, its
    random-weight control's: the rows every front end shows, each with its flag.

    Examples:
        >>> rows = [{"letter": "s", "words": 4, "main": [0], "absorption_fraction": f, "full_absorption": 0.0} for f in (0.2, 0.4)]
        >>> summary = absorption_summary([Absorption(9, [r], 0.8, 40, 20) for r in rows])
        >>> summary[0]["sae"], round(summary[0]["absorption_fraction"], 3), round(summary[0]["absorption_fraction_sd"], 3)
        ('SAE', 0.3, 0.141)
    """
    found = {"SAE": list(results)}
    if results and all(r.random_weights is not None for r in results):
        found["random-weight SAE"] = [r.random_weights for r in results]
    out = []
    for name, runs in found.items():
        fractions = [r.absorption_fraction for r in runs]
        out.append({"sae": name, "absorption_fraction": float(np.mean(fractions)),
                    "absorption_fraction_sd": float(np.std(fractions, ddof=1)) if len(runs) > 1 else 0.0,
                    "full_absorption": float(np.mean([r.full_absorption for r in runs])), "splits": float(np.mean([r.splits for r in runs])),
                    "probe_accuracy": float(np.mean([r.probe_accuracy for r in runs])), "classes": runs[0].classes,
                    "seeds": len(runs), "flag": "; ".join(dict.fromkeys(r.flag for r in runs if r.flag))})
    return finite(out)

