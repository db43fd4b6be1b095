"""One source for every default: the library, the CLI, the web API and the page all read shatterbox.options."""

import inspect

import pytest
import typer

from shatterbox.options import ANALYSES, describe, option, request_fields, spec, specs, typer_option

# where each analysis's options are taken: library function, CLI command (name path), web request model
LIBRARY = {
    "explain": "shatterbox.attribution:explain",
    "generate": "shatterbox.generation:explain_generation",
    "project": "shatterbox.projector:map_store",
    "probe": "shatterbox.probes:probe",
    "ranking": "shatterbox.global_attribution:dataset_payload",
    "patch": "shatterbox.patching:sweep",
    "lens": "shatterbox.lens:lens_of",
    "steer": "shatterbox.steering:steer",
}
CLI = {"explain": ["explain"], "generate": ["generate"], "project": ["project"], "probe": ["probe"], "ranking": ["explain"], "patch": ["patch"],
       "lens": ["lens", "show"], "steer": ["steer"]}
API = {"explain": "shatterbox.web.explain:ExplainRequest", "generate": "shatterbox.web.generate:GenerateRequest",
       "project": "shatterbox.web.probes:ProjectRequest", "probe": "shatterbox.web.probes:ProbeRequest",
       "ranking": "shatterbox.web.explain:DatasetRequest", "patch": "shatterbox.web.patching:PatchRequest",
       "lens": "shatterbox.web.lens:LensRequest", "steer": "shatterbox.web.lens:SteerRequest"}
CLI_OWN = {("explain", "method"), ("explain", "budget"), ("explain", "pairs"), ("explain", "samples")}  # corpus runs default these apart


def _load(path: str):
    import importlib

    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _command(names: list[str]):
    from shatterbox.cli import app

    command = typer.main.get_command(app)
    for name in names:
        command = command.commands[name]
    return command


def disagreements(options, library, cli, api, cli_own=frozenset()) -> list[str]:
    """Where the library function, the CLI command's parameters or the API model differ from ``options``."""
    found = []
    signature, flags = inspect.signature(library).parameters, {p.name: p for p in cli.params}
    for name, s in specs(options).items():
        if signature[name].default != s.default:
            found.append(f"library {name}={signature[name].default!r}")
        if api.model_fields[name].default != s.default:
            found.append(f"api {name}={api.model_fields[name].default!r}")
        if name not in cli_own:
            flag = flags[name]
            if flag.default != s.default or not flag.help.endswith(s.help) or (flag.min, flag.max) != (s.ge, s.le):
                found.append(f"cli {name}={flag.default!r} [{flag.min}, {flag.max}]")
    return found


@pytest.mark.parametrize("group", sorted(set(ANALYSES) - {"sae"}))  # sae: several commands, checked below
def test_the_library_cli_and_api_take_their_defaults_from_the_options(group):
    own = {name for g, name in CLI_OWN if g == group}
    assert disagreements(ANALYSES[group], _load(LIBRARY[group]), _command(CLI[group]), _load(API[group]), own) == []


@pytest.mark.parametrize("name, library, command, request_model", [
    ("texts", "shatterbox.sae:sae_scores", ["sae", "score"], "shatterbox.web.sae:ScoreRequest"),
    ("ks", "shatterbox.sae:sparse_probing", ["sae", "probe"], "shatterbox.web.sae:ProbeRequest"),
    ("seeds", "shatterbox.sae:sparse_probing", ["sae", "probe"], "shatterbox.web.sae:ProbeRequest"),
    ("seeds", None, ["sae", "absorption"], "shatterbox.web.sae:AbsorptionRequest"),
    ("words", "shatterbox.sae:absorption", ["sae", "absorption"], "shatterbox.web.sae:AbsorptionRequest"),
])
def test_the_sae_commands_take_their_defaults_from_the_options(name, library, command, request_model):
    from shatterbox.options import SaeOptions

    s = specs(SaeOptions)[name]
    flag = {p.name: p for p in _command(command).params}[name]
    assert flag.default == s.default and flag.help.endswith(s.help) and (flag.min, flag.max) == (s.ge, s.le)
    assert _load(request_model).model_fields[name].default == s.default
    if library is not None:
        assert inspect.signature(_load(library)).parameters[name].default == s.default


def test_the_tuned_lens_and_lens_fit_take_their_defaults_from_the_options():
    from shatterbox.lens import TunedLens
    from shatterbox.options import TUNED_LENS, TunedLensOptions

    assert vars(TunedLens().settings) == vars(TUNED_LENS)
    flags = {p.name: p for p in _command(["lens", "fit"]).params}
    for name, s in specs(TunedLensOptions).items():
        assert inspect.signature(TunedLens).parameters[name].default == s.default
        assert flags[name].default == s.default and flags[name].help.endswith(s.help) and (flags[name].min, flags[name].max) == (s.ge, s.le)


def test_the_api_serves_every_option(default_model):
    from shatterbox.web import create_app
    from tests.conftest import local_client

    served = local_client(create_app()).get("/api/options").json()
    assert served == {group: describe(options) for group, options in ANALYSES.items()}
    assert served["generate"]["max_new_tokens"] == {"default": 4, "help": spec(ANALYSES["generate"], "max_new_tokens").help,
                                                    "ge": 1, "le": 32, "choices": None}


@pytest.mark.slow
def test_the_page_shows_every_default_and_range(browser, default_model):
    from shatterbox.web import create_app, running
    from tests.conftest import open_app

    with running(create_app()) as url:
        page, errors, _ = open_app(browser, url)
        page.wait_for_function("document.getElementById('gen-tokens').value !== ''")
        fields = page.eval_on_selector_all("[data-option]", "els => els.map(e => [e.dataset.option, e.value, e.min || null, e.max || null])")
        page.close()
    assert errors == [] and len(fields) >= 10
    for where, value, low, high in fields:
        group, name = where.split(".")
        s = spec(ANALYSES[group], name)
        assert value == str(s.default), where
        assert (low, high) == ((None, None) if s.ge is None else (str(s.ge), str(s.le))), where  # number fields carry the range


def test_a_disagreeing_default_is_caught():
    from dataclasses import dataclass

    from pydantic import create_model

    @dataclass(frozen=True)
    class Demo:
        steps: int = option(32, "Steps.", ge=2, le=256)

    def library(*, steps: int = 16):  # written out again, with another value
        return steps

    app = typer.Typer()

    @app.command()
    def cli(steps: int = typer_option(Demo, "steps", help="another help")):
        """A command whose help drifted."""

    api = create_model("Api", **request_fields(Demo))
    assert disagreements(Demo, library, typer.main.get_command(app), api) == ["library steps=16", "cli steps=32 [2, 256]"]
