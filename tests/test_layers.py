"""The architecture's rule, checked on the code: imports point down the layers and never go round in a circle.

Every ``import`` counts, at module level and inside functions (what ``if TYPE_CHECKING:`` guards is never run
and does not count). The one tolerated upward import is a deprecated name forwarding to its replacement: an
import inside a function whose first statement is ``deprecated(...)``, gone with the next release.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "shatterbox"

# bottom to top; a package imports packages of lower layers, or of its own layer without a circle
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"errors", "_batching", "memory", "runs", "decoders", "options"}),
    ("models", {"models"}),
    ("capture", {"trace"}),
    ("corpus and store", {"corpus", "store", "engines", "classifiers"}),
    ("analyses", {"attention", "heads", "attribution", "generation", "global_attribution", "factors", "neurons",
                  "probes", "projector", "patching", "lens", "steering", "sae"}),
    ("render", {"render"}),
    ("front ends", {"cli", "web", ""}),  # "": the package itself, shatterbox/__init__.py, the notebook's facade
]
RANK = {package: rank for rank, (_, packages) in enumerate(LAYERS) for package in packages}


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """``shatterbox.trace._trace`` -> "capture"; ``shatterbox`` -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _deprecated_shim(function: ast.AST) -> bool:
    body = getattr(function, "body", [])
    first = body[1] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1 else (body[0] if body else None)
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Call) and ast.unparse(first.value.func) == "deprecated"


def imports(source: str, module: str, is_package: bool, modules: set[str]) -> list[tuple[str, bool]]:
    """The shatterbox modules ``source`` (the text of ``module``) imports: (target, inside a deprecation shim)."""
    found: list[tuple[str, bool]] = []
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, shim: bool) -> None:
        if _type_checking(node):
            for child in node.orelse:
                visit(child, shim)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            shim = shim or _deprecated_shim(node)
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                targets.append(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        found.extend((t, shim) for t in targets if t.split(".")[0] == "shatterbox" and t in modules and t != module)
        for child in ast.iter_child_nodes(node):
            visit(child, shim)

    visit(ast.parse(source), False)
    return found


def graph(sources: dict[str, tuple[str, bool]]) -> dict[str, list[tuple[str, bool]]]:
    """module -> imported modules, from {module: (source text, is a package)}."""
    modules = set(sources)
    return {m: imports(text, m, is_package, modules) for m, (text, is_package) in sources.items()}


def read_tree(root: Path = SRC) -> dict[str, tuple[str, bool]]:
    return dict(_tree(root))


@lru_cache(maxsize=1)
def _tree(root: Path) -> tuple:
    return tuple((module_name(p, root), (p.read_text(encoding="utf-8"), p.name == "__init__.py")) for p in sorted(root.rglob("*.py")))


def upward(edges: dict[str, list[tuple[str, bool]]]) -> list[str]:
    """Imports from a package to one of a higher layer (deprecation shims excepted)."""
    bad = []
    for source, targets in edges.items():
        for target, shim in targets:
            a, b = package_of(source), package_of(target)
            if a != b and RANK[b] > RANK[a] and not shim:
                bad.append(f"{source} -> {target} ({LAYERS[RANK[a]][0]} imports {LAYERS[RANK[b]][0]})")
    return bad


def circles(edges: dict[str, list[tuple[str, bool]]], *, packages: bool) -> list[list[str]]:
    """Circles among modules (or, ``packages=True``, among packages), parent packages left out: importing
    ``a.b`` always runs ``a/__init__`` first, which is not an import of ``a`` by ``a.b``."""
    node = package_of if packages else (lambda m: m)
    succ: dict[str, set[str]] = {}
    for source, targets in edges.items():
        for target, shim in targets:
            a, b = node(source), node(target)
            if a != b and not shim and not (not packages and source.startswith(target + ".")):
                succ.setdefault(a, set()).add(b)
    found, state, path = [], {}, []

    def walk(v: str) -> None:
        state[v] = 1
        path.append(v)
        for w in sorted(succ.get(v, ())):
            if state.get(w) == 1:
                found.append(path[path.index(w):] + [w])
            elif w not in state:
                walk(w)
        path.pop()
        state[v] = 2

    for v in sorted(succ):
        if v not in state:
            walk(v)
    return found


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in read_tree()}
    assert packages - set(RANK) == set()


def test_imports_only_point_down():
    assert upward(graph(read_tree())) == []


def test_no_circles_between_packages_or_modules():
    edges = graph(read_tree())
    assert circles(edges, packages=True) == []
    assert circles(edges, packages=False) == []


@pytest.fixture
def planted():
    """A copy of the tree to plant bad imports in."""
    return read_tree()


def test_a_planted_upward_import_fails(planted):
    text, is_package = planted["shatterbox.trace._trace"]
    planted["shatterbox.trace._trace"] = (text + "\n\ndef f():\n    from shatterbox.render import to_html\n", is_package)
    assert upward(graph(planted)) == ["shatterbox.trace._trace -> shatterbox.render (capture imports render)"]


def test_a_planted_circle_fails(planted):
    text, is_package = planted["shatterbox.store"]
    planted["shatterbox.store"] = (text + "\nimport shatterbox.factors\n", is_package)
    edges = graph(planted)
    assert circles(edges, packages=True) == [["store", "factors", "store"]]
    assert "shatterbox.store -> shatterbox.factors (corpus and store imports analyses)" in upward(edges)


def test_only_a_deprecation_shim_may_import_upward(planted):
    text, is_package = planted["shatterbox.models"]
    assert any(shim for _, shim in graph(planted)["shatterbox.models"])  # LoadedModel.capture, deprecated
    planted["shatterbox.models"] = (text.replace('deprecated("LoadedModel.capture(text)"', 'print("LoadedModel.capture(text)"'), is_package)
    assert upward(graph(planted)) == ["shatterbox.models -> shatterbox.trace (models imports capture)"]


def test_type_checking_imports_do_not_count():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from shatterbox.render import show\n"
    assert imports(source, "shatterbox.errors", False, {"shatterbox.render", "shatterbox.errors"}) == []


def sizes(root: Path = SRC) -> tuple[list[str], list[str]]:
    """Modules over 600 lines and functions over 80 lines (docstrings included)."""
    modules, functions = [], []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 600:
            modules.append(f"{path.relative_to(root)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                functions.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    return modules, functions


def test_modules_and_functions_stay_small():
    assert sizes() == ([], [])
    tree = ast.parse((SRC / "web" / "__init__.py").read_text(encoding="utf-8"))
    create_app = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "create_app")
    assert create_app.end_lineno - create_app.lineno + 1 < 60


def test_the_size_check_sees_a_long_function(tmp_path):
    (tmp_path / "x.py").write_text("def f():\n" + "    x = 1\n" * 80, encoding="utf-8")
    assert sizes(tmp_path) == ([], ["x.py:1 f: 81 lines"])
