"""How good a fit is, on held-out vectors, next to its control: PCA with as many components as the mean L0."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.decomposition import PCA

from shatterbox._batching import chunks
from shatterbox.factors._base import FactorModel, check_matrix


# measured in bench/factors.py (layer 3, 3,000 sentences): FISTA 0.764 after 8 epochs, 0.758 after 4; the TopK SAE at the
# same L0 0.724 after 20 epochs; PCA with as many components 0.486
ADVICE = "more epochs or tokens (--epochs, --max-tokens), or the FISTA dictionary (--kind fista, 0.04 more than an SAE at the same L0)"


DEAD_SAMPLE = 20_000  # training vectors also read for activity: a latent silent on all of them and on the held-out ones is dead
DENSE = 0.1  # a factor active on more than this share of the held-out vectors is dense


@dataclass(frozen=True)
class FitReport:
    """Held-out quality of a factor model.

    ``variance_explained`` = 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖²; ``pca_variance_explained`` is the same for
    PCA with ``pca_components`` = round(mean L0) components fitted on the training vectors;
    ``mean_l0`` active factors per vector; ``dead`` factors never active on the held-out vectors nor on up to
    ``DEAD_SAMPLE`` training vectors (a few thousand held-out tokens alone would call rare latents dead); ``dense`` factors
    active on more than ``DENSE`` of them (SAEBench's dense latents).
    """

    variance_explained: float
    pca_variance_explained: float
    pca_components: int
    mean_l0: float
    dead: int
    dead_fraction: float
    n_factors: int
    n_heldout: int
    fit_seconds: float
    dense: int = 0
    dense_fraction: float = 0.0

    @property
    def flag(self) -> str:
        """Why this fit is weak ("" when it beats PCA with as many components, its control).

        Examples:
            >>> FitReport(0.45, 0.46, 30, 30.0, 0, 0.0, 512, 100, 1.0).flag[:43]
            'does not beat PCA with 30 components (0.450'
        """
        if self.variance_explained > self.pca_variance_explained:
            return ""
        return (f"does not beat PCA with {self.pca_components} components ({self.variance_explained:.3f} against "
                f"{self.pca_variance_explained:.3f}): {ADVICE}")

    def to_dict(self) -> dict:
        """JSON-ready, with its :attr:`flag`."""
        return asdict(self) | {"flag": self.flag}


def variance_explained(x: np.ndarray, recon: np.ndarray) -> float:
    """1 − Σ‖x − x̂‖² / Σ‖x − mean(x)‖².

    Examples:
        >>> x = np.array([[1.0, 0.0], [-1.0, 0.0]])
        >>> variance_explained(x, x * 0.5)
        0.75
    """
    total = float(((x - x.mean(0)) ** 2).sum())
    return 1.0 - float(((x - recon) ** 2).sum()) / max(total, 1e-12)


def evaluate(model: FactorModel, heldout: np.ndarray, train: np.ndarray) -> FitReport:
    """Score ``model`` on ``heldout`` vectors; the PCA control is fitted on ``train``.

    Examples:
        >>> from shatterbox.factors import SparseDictionary
        >>> rng = np.random.default_rng(0); x = rng.normal(size=(400, 6)).astype(np.float32)
        >>> r = evaluate(SparseDictionary(n_factors=12, alpha=0.05, n_epochs=2).fit(x[:300]), x[300:], x[:300])
        >>> r.n_heldout, r.n_factors
        (100, 12)
    """
    heldout = check_matrix(heldout, "evaluate", model.n_features_in_)
    codes = model.transform(heldout)
    active = codes > 0
    l0 = float(active.sum(1).mean())
    seen = active.any(0)
    for part in chunks(min(len(train), DEAD_SAMPLE), 8192):  # a rare latent is not dead: look at training vectors too
        seen |= (model.transform(train[part]) > 0).any(0)
    dead = int((~seen).sum())
    m = int(min(max(1, round(l0)), heldout.shape[1], len(train)))
    pca = PCA(n_components=m, random_state=0).fit(train)
    return FitReport(
        variance_explained=variance_explained(heldout, model.inverse_transform(codes)),
        pca_variance_explained=variance_explained(heldout, pca.inverse_transform(pca.transform(heldout))),
        pca_components=m,
        mean_l0=l0,
        dead=dead,
        dead_fraction=dead / model.n_factors,
        n_factors=model.n_factors,
        n_heldout=len(heldout),
        fit_seconds=float(getattr(model, "fit_seconds_", 0.0)),
        dense=int((active.mean(0) > DENSE).sum()),
        dense_fraction=float((active.mean(0) > DENSE).sum()) / model.n_factors,
    )
