"""What the CLI prints reads as the CLI's own: its options' names in the library's messages, panel names suggested,
lists as JSON lists, tables rather than Arrow dumps, short reprs; and a query starts without the other commands."""
import io
import json
import os
import re
import subprocess
import sys

import pytest

from neuron_atlas.cli.wording import cli_words


def run(*args, check=True, env=None):
    proc = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_library_arguments_become_options():
    assert cli_words("method='ovr' ranks each language's neurons by score: give size= (e.g. 500 or '0.5%')") == \
        "--method ovr ranks each language's neurons by score: give --size (e.g. 500 or '0.5%')"
    assert cli_words("fewer than size=500.") == "fewer than --size 500."
    assert cli_words("e.g. among=['tl', 'id'], filter_rate=0.9") == "e.g. --among tl,id, --filter-rate 0.9"
    assert cli_words("n_layers=3, topsize=2, x.size=4") == "n_layers=3, topsize=2, x.size=4"  # not query options


def test_method_without_size_names_the_option(toy_atlas):
    proc = run("neurons", "toy", "--lang", "tl", "--method", "ovr", "-a", str(toy_atlas), check=False)
    assert proc.returncode == 2 and "give --size" in proc.stderr and "size=" not in proc.stderr, proc.stderr


def test_a_misspelt_panel_gets_the_panel_it_is_closest_to():
    proc = run("neurons", "gemma-3-270m", "--lang", "tl", "--among", "seed-13", check=False)
    assert proc.returncode == 2 and "Did you mean: seed-12" in proc.stderr, proc.stderr
    assert "--among seed-13" in proc.stderr and "among=" not in proc.stderr
    for among in ("tang-7", "tl,id,en"):  # a panel, and a list of languages, as before
        assert run("neurons", "gemma-3-270m", "--lang", "en", "--among", among, "-f", "csv").stdout.startswith('"model"')


def test_json_lists_are_lists_and_csv_keeps_its_strings():
    rows = json.loads(run("neurons", "gemma-3-270m", "--lang", "tl", "-f", "json").stdout)
    assert rows and all(isinstance(r["top_langs"], list) and r["top_langs"] for r in rows)
    assert all("," not in tag for r in rows for tag in r["top_langs"])
    lines = run("neurons", "gemma-3-270m", "--lang", "tl", "-f", "jsonl").stdout.splitlines()
    assert [json.loads(line)["top_langs"] for line in lines] == [r["top_langs"] for r in rows]
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(io.BytesIO(run("neurons", "gemma-3-270m", "--lang", "tl", "-f", "csv").stdout.encode()))
    assert table.column("top_langs").to_pylist() == [",".join(r["top_langs"]) for r in rows]
    methods = json.loads(run("methods", "-f", "json").stdout)
    assert all(isinstance(m["needs"], list) for m in methods)


@pytest.mark.parametrize("args", [("panels",), ("overlap", "gemma-3-270m", "--lang", "tl,id,en"),
                                  ("neurons", "gemma-3-270m", "--lang", "tl", "--coverage")])
def test_panels_overlap_and_coverage_are_tables_of_whole_words(args):
    out = run(*args, "-f", "table", env={"COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}).stdout
    assert "pyarrow.Table" not in out and "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    if args == ("panels",):
        from neuron_atlas.languages.panels import panels

        shown = set(out.split())
        for source in panels().column("source").to_pylist():
            assert set(source.split()) <= shown, source  # 'RUCAIBox/Language-Specific-Neurons' not cut


def test_a_query_starts_without_the_other_commands_or_rich():
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print(sorted(m for m in sys.modules if m.startswith(('neuron_atlas.', 'rich'))),"
            " file=sys.stderr))\n"
            "from neuron_atlas.cli import main\n"
            "sys.argv = ['neuron-atlas', 'neurons', 'gemma-3-270m', '--lang', 'tl', '-f', 'csv']\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded = set(re.findall(r"'([\w.]+)'", proc.stderr.splitlines()[-1]))
    assert "neuron_atlas.cli.query" in loaded and "note: tgl_Latn" in proc.stderr
    assert "rich" not in loaded  # CSV into a pipe, notes into a pipe: plain lines, no rich
    for module in ("cli.build", "cli.importers", "cli.hub", "cli.explore", "cli.features", "cli.steering",
                   "cli.verify", "cli.merge", "builder.config", "importers.config"):
        assert f"neuron_atlas.{module}" not in loaded, module


def test_wanda_masks_print_in_a_few_lines():
    torch = pytest.importorskip("torch")
    from neuron_atlas.prune.wanda import Masks

    masks = {f"model.layers.{i}.{kind}": torch.arange(64 * 32).reshape(64, 32) % 4 == 0
             for i in range(12) for kind in ("self_attn.q_proj", "mlp.up_proj", "mlp.down_proj")}
    text = repr(Masks(masks, {"method": "wanda", "pattern": "unstructured", "sparsity": 0.25}))
    lines = text.splitlines()
    assert len(lines) <= 6 and "tensor" not in text, text
    assert lines[0] == "Masks(wanda, unstructured: 36 weights, 18,432 of 73,728 removed = 25.0%)"
    assert re.search(r"mlp.up_proj +×12  25.0% removed", text) and "12 layers" in text
    assert str(Masks(masks)) == repr(Masks(masks))
