"""The documentation's examples: every complete TOML config shown in the README and docs/ is
valid, every Python example runs, the tutorial script runs (tests/toolkit/test_results.py) and
every sub-command is documented."""
from __future__ import annotations

import glob
import os
import re
import tomllib

import pytest
from helpers import ROOT

from toolkit.config import config_from_dict

PAGES = [os.path.join(ROOT, "README.md")] + sorted(
    glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))


def _blocks(lang: str):
    for path in PAGES:
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(rf"```{lang}\n(.*?)```", text, re.S):
            yield os.path.relpath(path, ROOT), text[:m.start()].count("\n") + 1, m.group(1)


TOML = [(p, line, b) for p, line, b in _blocks("toml") if "[lattice]" in b]


def test_docs_have_configs():
    assert len(TOML) >= 2    # the README's minimal valve and the annotated reference config


@pytest.mark.parametrize("page, line, block", TOML, ids=[f"{p}:{l}" for p, l, _ in TOML])
def test_toml_examples_are_valid_configs(page, line, block):
    """A config shown in the docs parses and validates as shown (comments included)."""
    config_from_dict(tomllib.loads(block))


def test_every_command_is_documented():
    """Each registered sub-command appears in the README's command list and in the guide."""
    from toolkit.cli import commands

    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    guide = "".join(open(p, encoding="utf-8").read() for p in PAGES[1:])
    for ep in commands():
        assert f"qcspin {ep.name}" in readme and f"qcspin {ep.name}" in guide, ep.name


PYTHON = list(_blocks("python"))


def test_docs_have_python_examples():
    assert PYTHON    # the README's Python API tour


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("page, line, block", PYTHON, ids=[f"{p}:{l}" for p, l, _ in PYTHON])
def test_python_examples_run(page, line, block, tmp_path):
    """A Python example of the docs runs as shown, in a directory with the repository's
    examples/ (it writes its result files there)."""
    import subprocess
    import sys

    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    (tmp_path / "example.py").write_text(block)
    env = dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 0, f"{page}:{line}: {r.stderr[-2000:]}"
