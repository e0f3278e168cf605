"""Terminal tables read at 80 columns: full values, constant columns in the title, nothing cut to a few characters."""
import io
import os
import re
import subprocess
import sys

import pyarrow as pa

import neuron_atlas as na
from neuron_atlas.cli.tables import render


def table_at(width, *args):
    env = {**os.environ, "COLUMNS": str(width), "TERM": "dumb", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", *args, "-f", "table"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_neurons_at_80_columns_show_whole_values():
    out = table_at(80, "neurons", "gemma-3-270m", "--lang", "tl")
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out
    first = out.splitlines()[0]
    assert "gemma-3-270m" in first and "tgl_Latn" in first  # constant columns moved into the title
    expected = na.open().neurons("gemma-3-270m", lang="tl").to_arrow()
    for layer, neuron in zip(expected["layer"].to_pylist(), expected["neuron"].to_pylist()):
        assert re.search(rf"│\s+{layer} │\s+{neuron} │", out), (layer, neuron)
    assert out.count("gemma-3-270m") == 1  # not repeated on every row


def test_models_at_80_and_120_columns_are_readable():
    for width in (80, 120):
        out = table_at(width, "models")
        assert max(len(line) for line in out.splitlines()) <= width
        assert "…" not in out
        for value in ("gemma-3-270m", "smollm2-135m", "Gemma3ForCausalLM", "LlamaForCausalLM"):
            assert value in out


def test_too_many_columns_go_under_each_row_whole():
    """No column is left out: those that do not fit go under each row, as ``name  value``, whole."""
    rows = [{f"column_{i}": f"value-{i}-{r}" for i in range(12)} for r in range(20)]
    from rich.console import Console

    for wide in (False, True):  # --wide cannot squeeze 12 columns into 80 without cutting words: the same layout
        console = Console(width=80, record=True, file=io.StringIO())
        console.print(render(pa.Table.from_pylist(rows), "t", 80, wide=wide))
        text = console.export_text()
        assert "…" not in text and "not shown" not in text
        assert max(len(line) for line in text.splitlines()) <= 80
        words = text.split()
        for i in range(12):
            assert f"column_{i}" in words
            for r in range(20):
                assert f"value-{i}-{r}" in words


def test_every_command_help_shows_an_example():
    from neuron_atlas.cli import COMMANDS
    from neuron_atlas.cli.examples import EXAMPLES

    assert {name for name, _ in COMMANDS} <= set(EXAMPLES)
    for name, _ in COMMANDS:
        assert all(line.startswith(f"neuron-atlas {name}") for line in EXAMPLES[name])
    out = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", "neurons", "--help"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}).stdout
    assert "Examples:" in out and "neuron-atlas neurons gemma-3-270m --lang tl" in out


def test_notices_are_whole_sentences():
    atlas = na.open()
    notices = {**atlas.neurons("gemma-3-270m", lang=["tl", "id"]).notices,
               **atlas.neurons("gemma-3-270m", lang="tl", size=100000, method="ovr").notices}
    assert notices
    for text in notices.values():
        assert text.endswith(".") and not text.rstrip(".").endswith("="), text


def test_info_gives_the_size_on_disk_it_promises(toy_atlas):
    proc = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", "info", "-a", str(toy_atlas),
                           "-f", "csv"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    on_disk = sum(p.stat().st_size for p in toy_atlas.rglob("*.parquet") if "/model=toy/" in str(p))
    assert f",{on_disk}," in proc.stdout.splitlines()[1]
    assert "MiB)" in proc.stderr
