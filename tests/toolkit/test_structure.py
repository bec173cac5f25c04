"""The package structure: imports run one way, toolkit <- operators <- integrators <- analysis
(a module imports only its own package and the ones to its left, also inside functions), and
every sub-command is registered in pyproject.toml and lives in a *_cli module."""
from __future__ import annotations

import ast
import glob
import os
import tomllib

import pytest
from helpers import ROOT

LAYERS = ("toolkit", "operators", "integrators", "analysis")


def _imports(path: str) -> list[tuple[int, str]]:
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


@pytest.mark.parametrize("package", LAYERS)
def test_imports_run_one_way(package):
    allowed = set(LAYERS[:LAYERS.index(package) + 1])
    bad = [f"{os.path.relpath(p, ROOT)}:{line} imports {mod}"
           for p in sorted(glob.glob(os.path.join(ROOT, package, "*.py")))
           for line, mod in _imports(p) if mod in LAYERS and mod not in allowed]
    assert not bad, bad


def test_commands_are_registered_cli_modules():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        eps = tomllib.load(fh)["project"]["entry-points"]["qcspin.commands"]
    assert {"run", "info", "plot", "spectrum", "jeff", "transport", "sweep", "quench"} <= set(eps)
    for name, target in eps.items():
        module, func = target.split(":")
        assert module.endswith("_cli") and func == "register", (name, target)
        assert os.path.exists(os.path.join(ROOT, *module.split(".")) + ".py"), target
