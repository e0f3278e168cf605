"""Small conventions of the CLI and the result objects: JSON is an array (jsonl for lines), --version, shell
completion, one spelling of the language option, help text keeps its brackets, NeuronSet speaks the Arrow C stream."""
import json
import re
import subprocess
import sys

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

import neuron_atlas as na
from neuron_atlas.cli import app


def run(*args):
    proc = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", *args],
                          capture_output=True, text=True, check=False, env={"COLUMNS": "250", "PATH": ""} | _env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def test_json_is_one_array_and_jsonl_a_row_per_line(toy_atlas):
    rows = json.loads(run("languages", "toy", "-a", str(toy_atlas), "-f", "json"))
    assert isinstance(rows, list) and {"lang": "tgl_Latn", "iso639_3": "tgl", "script": "Latn", "name": "Tagalog",
                                       "tokens": 3000} in rows
    lines = run("languages", "toy", "-a", str(toy_atlas), "-f", "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == rows
    assert json.loads(run("sql", "SELECT 1 AS x WHERE false", "-a", str(toy_atlas), "-f", "json")) == []


def test_version_and_completion():
    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.strip() == f"neuron-atlas {na.__version__}"
    helped = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "--install-completion" in helped.output and "--show-completion" in helped.output


def test_one_spelling_of_the_language_option_everywhere(toy_atlas):
    command = typer.main.get_command(app)
    for name in ("neurons", "overlap", "build", "import"):
        opts = next(p for p in command.commands[name].params if p.name in ("lang", "langs")).opts
        assert opts[:2] == ["--lang", "--langs"], (name, opts)  # --lang, with --langs kept as an alias
    a = run("overlap", "toy", "--lang", "tl,en", "-a", str(toy_atlas), "-f", "csv")
    assert a == run("overlap", "toy", "--langs", "tl,en", "-a", str(toy_atlas), "-f", "csv")


def test_help_text_keeps_its_brackets():
    """Rich reads [word] in help as markup and drops it: every bracket must be escaped (and then shows)."""
    command = typer.main.get_command(app)
    for name, sub in command.commands.items():
        texts = [sub.help or ""] + [getattr(p, "help", None) or "" for p in sub.params]
        for text in texts:
            assert not re.search(r"(?<!\\)\[[a-z][\w-]*\]", text), (name, text)
    out = CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "250"}).output
    assert "neuron-atlas[ray]" in out


def test_neuron_set_is_an_arrow_stream(toy_atlas):
    s = na.open(toy_atlas).neurons("toy", lang=["tl", "id"], top="5%")
    want = s.to_arrow()
    assert pa.table(s).equals(want)
    assert duckdb.sql("SELECT lang, layer, neuron FROM s ORDER BY ALL").fetchall() == sorted(
        zip(*(want.column(c).to_pylist() for c in ("lang", "layer", "neuron"))))
    if hasattr(pd.DataFrame, "from_arrow"):
        pd.testing.assert_frame_equal(pd.DataFrame.from_arrow(s), s.to_pandas())
    polars = pytest.importorskip("polars")
    assert polars.DataFrame(s).shape == (len(s), want.num_columns)
