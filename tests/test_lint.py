"""`ruff check` is clean on the whole repository under the project's own rule set (pyproject's [tool.ruff])."""
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> str:
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        found = shutil.which("ruff")
        if found is None:
            pytest.skip("ruff is not installed (it comes with the [test] extra)")
        return found
    return find_ruff_bin()


def _check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), *args],
                          cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=300)


def test_rule_set_is_explicit():
    """The rules come from pyproject, not from the ruff version's defaults or a user's config."""
    lint = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
    assert lint["select"] and "RUF100" in lint["select"]  # every noqa comment must still suppress something


def test_ruff_catches_what_it_should():
    """The same command fails on an unused import, a needless `# noqa` and a run of blank lines."""
    bad = 'import os\n\n\n\nx = 1  # noqa: E402\n'
    out = _check("--output-format", "json", "--stdin-filename", "neuron_atlas/_lint_probe.py", "-", stdin=bad)
    assert out.returncode == 1
    assert {d["code"] for d in json.loads(out.stdout)} == {"F401", "E303", "RUF100"}, out.stdout


def test_repository_is_ruff_clean():
    out = _check(".")
    assert out.returncode == 0, out.stdout + out.stderr
