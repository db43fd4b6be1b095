"""The layout's rule: no package imports another package's private (underscored) module."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "shatterbox"


def private_imports(source: str, package: str) -> list[str]:
    """Modules ``shatterbox.<other>._name...`` that ``source``, a file of ``package``, imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "shatterbox" and len(parts) > 2 and parts[1] != package and any(p.startswith("_") for p in parts[2:]):
                found.append(name)
    return found


def test_no_package_reaches_into_another_packages_private_module():
    bad = [f"{path.relative_to(SRC)}: {name}" for path in sorted(SRC.rglob("*.py"))
           for name in private_imports(path.read_text(encoding="utf-8"), path.relative_to(SRC).parts[0].removesuffix(".py"))]
    assert bad == []


def test_the_check_sees_a_private_import():
    source = "from shatterbox.attribution._explain import METHODS\nimport shatterbox.trace._encode\nfrom shatterbox.web._x import y\n"
    assert private_imports(source, "web") == ["shatterbox.attribution._explain", "shatterbox.trace._encode"]
