"""A factors fit that does not beat PCA with as many components, or a reconstruction that harms the embedding more
than zeroing the layer, is flagged in the library, the CLI, the report page and the web tab's data."""

import numpy as np
import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.corpus import load_corpus
from shatterbox.factors import FitReport, fit_factors
from shatterbox.render.factors import factors_page
from shatterbox.store import harvest


def test_a_report_below_pca_is_flagged_and_one_above_is_not():
    assert FitReport(0.45, 0.46, 30, 30.0, 0, 0.0, 512, 100, 1.0).flag.startswith("does not beat PCA with 30 components (0.450 against 0.460)")
    assert FitReport(0.47, 0.46, 30, 30.0, 0, 0.0, 512, 100, 1.0).flag == ""
    assert FitReport(0.45, 0.46, 30, 30.0, 0, 0.0, 512, 100, 1.0).to_dict()["flag"].endswith("at the same L0)")


def test_the_report_page_marks_weak_layers_and_harmful_reconstructions():
    below, above = FitReport(0.45, 0.46, 30, 30.0, 0, 0.0, 512, 100, 1.0), FitReport(0.6, 0.46, 30, 30.0, 0, 0.0, 512, 100, 1.0)
    report = {"model": "m", "store": {"corpus": "c", "model": "default"}, "layers": [1, 2], "levels": {}, "shared": False,
              "reports": {"1": below.to_dict(), "2": above.to_dict()}, "sections": {}, "polysemy": None, "control": None, "skipped": {},
              "downstream": [{"layer": 1, "recovered": -0.031, "reconstructed_loss": 0.2, "zero_ablated_loss": 0.19, "flag": "harms"},
                             {"layer": 2, "recovered": 0.5, "reconstructed_loss": 0.1, "zero_ablated_loss": 0.2, "flag": ""}]}
    page = factors_page(report)
    assert page.count('<tr class="weak">') == 2 and "does not beat PCA with 30 components" in page


@pytest.mark.slow
def test_the_fit_command_says_which_layers_are_weak(tmp_path):
    store = harvest(load_corpus("wordnet", limit=150, seed=3), tmp_path / "s", layers="1,2")
    out = tmp_path / "f.factors"
    r = CliRunner().invoke(app, ["factors", "fit", str(store.root), "--out", str(out), "--per-layer", "--kind", "sae", "--factors", "64",
                                 "--k", "4", "--epochs", "1", "--max-tokens", "1500", "--format", "csv"])
    assert r.exit_code == 0, r.stderr
    factors = fit_factors(store, per_layer=True, kind="sae", n_factors=64, k=4, n_epochs=1, max_tokens=1500)
    weak = [l for l, rep in factors.reports.items() if rep.flag]
    rows = r.stdout.strip().splitlines()
    assert rows[0].endswith(',"flag"') and [row.endswith(',"below PCA"') for row in rows[1:]] == [l in weak for l in factors.reports]
    assert ("weak: layer" in r.stderr) == bool(weak)


def test_polysemy_from_too_few_occurrences_is_flagged_on_the_page():
    from shatterbox.factors._polysemy import MIN_OCCURRENCES, _ari_flag

    assert _ari_flag(MIN_OCCURRENCES - 1, 1.0, 0.0).startswith("too few occurrences") and _ari_flag(MIN_OCCURRENCES, 0.5, 0.0) == ""
    assert _ari_flag(40, 0.01, 0.02).startswith("no better than shuffled senses")
    row = {"word": "heavy", "senses": 2, "occurrences": 6, "factor_ari": 1.0, "kmeans_ari": 0.4, "chance_ari": 0.0, "flag": _ari_flag(6, 1.0, 0.0)}
    report = {"model": "m", "store": {"corpus": "c", "model": "default"}, "layers": [1], "levels": {}, "shared": True, "reports": {},
              "sections": {}, "polysemy": [row], "control": None, "skipped": {}}
    page = factors_page(report)
    assert '<tr class="weak"><td>heavy</td>' in page and "too few occurrences (6 &lt; 20)" in page
