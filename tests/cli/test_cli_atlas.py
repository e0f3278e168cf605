"""Which atlas a command reads or writes: readers default to the embedded atlas, writers name theirs (no folder
of the working directory is picked for them); a model the atlas lacks gets its routes on stderr."""
import os
import subprocess
import sys

import typer
from typer.testing import CliRunner

from neuron_atlas.cli import app

WRITERS = {"import", "features"}  # commands whose --atlas is the folder they write into


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neuron_atlas.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env={**os.environ, "COLUMNS": "250"})


def test_atlas_options_default_to_the_embedded_atlas_or_are_required():
    """No --atlas has a default of its own: a reader's None opens the embedded atlas, a writer must be told."""
    options = {name: next(p for p in command.params if p.name == "atlas")
               for name, command in typer.main.get_command(app).commands.items()
               if any(p.name == "atlas" and "--atlas" in p.opts for p in command.params)}
    assert WRITERS < set(options) and {"neurons", "sql", "info"} < set(options)
    for name, option in options.items():
        assert option.default is None, (name, option.default)
        assert option.required == (name in WRITERS), name
    assert options["features"].opts == ["--atlas", "-a"]


def test_features_without_atlas_is_a_usage_error_and_writes_nothing(tmp_path):
    proc = cli("features", "gemma-3-270m", "--pair", "sw-en", cwd=tmp_path)
    assert proc.returncode == 2 and "Missing option '--atlas'" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no ./atlas made behind the user's back


def test_a_model_the_atlas_lacks_gets_its_routes_in_the_one_error_line():
    proc = cli("neurons", "llama-3.1-8b", "--lang", "tl")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: model 'llama-3.1-8b' is not in the atlas at ")
    assert "(it has gemma-3-270m, smollm2-135m). To get it: - build Tagalog (tl) only (about " in lines[0]
    assert "`neuron-atlas build --model meta-llama/Llama-3.1-8B --corpus hf:HuggingFaceFW/fineweb-2 --lang tl " \
        in lines[0]
    assert "--out ATLAS` also published, without Tagalog (tl): subnetwork/llama-3.1-8b " in lines[0]


def test_export_and_push_take_the_embedded_atlas_by_name(tmp_path):
    from neuron_atlas.atlas import EMBEDDED
    from neuron_atlas.cli.hub import _folder

    assert _folder("embedded") == EMBEDDED
    result = cli("export", tmp_path / "nope", tmp_path / "out")
    assert result.returncode == 2 and "'embedded'" in result.stderr
    dry = CliRunner().invoke(app, ["push", "embedded", "--repo", "org/name", "--dry-run"])
    assert dry.exit_code == 0 and "atlas.json" in dry.output
