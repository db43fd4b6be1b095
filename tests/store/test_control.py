"""A control must be one: the same architecture with random weights, over the same corpus and settings. The trained
store itself, a random-weight store of another corpus, or factors fitted another way are refused in one line, in the
library, the CLI and the web app."""

import pytest
from typer.testing import CliRunner

from shatterbox.cli import app
from shatterbox.corpus import load_corpus
from shatterbox.errors import InputError
from shatterbox.factors import factors_report, fit_factors
from shatterbox.models import random_weights
from shatterbox.store import check_control, harvest
from shatterbox.web import create_app
from tests.conftest import local_client


@pytest.fixture(scope="module")
def stores(tmp_path_factory, default_model):
    root = tmp_path_factory.mktemp("controls")
    corpus, other = load_corpus("wordnet", limit=120, seed=1), load_corpus("wordnet", limit=120, seed=2)
    random = random_weights(default_model, 1)
    return {
        "wn": harvest(corpus, root / "wn", model=default_model, layers="1"),
        "wn-random": harvest(corpus, root / "wn-random", model=random, layers="1"),
        "other-random": harvest(other, root / "other-random", model=random, layers="1"),
        "root": root,
    }


@pytest.mark.slow
def test_only_a_random_weight_store_of_the_same_corpus_is_a_control(stores):
    check_control(stores["wn"], stores["wn-random"])  # the real control passes
    with pytest.raises(InputError, match="wn cannot be the random-weight control of wn: it has the same weights"):
        check_control(stores["wn"], stores["wn"])
    with pytest.raises(InputError, match=r"other-random cannot be the random-weight control of wn: its corpus differs \(wordnet, 120 sentences"):
        check_control(stores["wn"], stores["other-random"])
    with pytest.raises(InputError, match="has random weights itself"):
        check_control(stores["wn-random"], stores["wn-random"])


@pytest.mark.slow
def test_the_probe_command_refuses_a_control_that_is_not_one(stores):
    runner = CliRunner()
    for bad, why in (("wn", "it has the same weights"), ("other-random", "its corpus differs")):
        r = runner.invoke(app, ["probe", str(stores["wn"].root), "--random", str(stores[bad].root), "--folds", "2"])
        assert r.exit_code == 2 and why in r.stderr and "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1
    ok = runner.invoke(app, ["probe", str(stores["wn"].root), "--random", str(stores["wn-random"].root), "--folds", "2", "--format", "json"])
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.slow
def test_factors_report_refuses_a_control_fitted_on_trained_weights(stores):
    trained = fit_factors(stores["wn"], layers=[1], n_factors=8, n_epochs=1)
    again = fit_factors(stores["wn"], layers=[1], n_factors=8, n_epochs=1)
    with pytest.raises(InputError, match="it has the same weights"):
        factors_report(trained, stores["wn"], control=(again, stores["wn"]))
    other_way = fit_factors(stores["wn-random"], layers=[1], n_factors=16, n_epochs=1)
    with pytest.raises(InputError, match="the control factors were fitted another way"):
        factors_report(trained, stores["wn"], control=(other_way, stores["wn-random"]))


@pytest.mark.slow
def test_the_probes_tab_offers_and_accepts_only_true_controls(stores):
    client = local_client(create_app(stores=stores["root"]))
    assert client.get("/api/stores/wn/properties").json()["controls"] == ["wn-random"]
    r = client.post("/api/stores/wn/probe", json={"property": "pos", "folds": 2, "random": "other-random"})
    assert r.status_code == 400 and "its corpus differs" in r.json()["error"] and r.json()["field"] == "random"
