"""The neuron-atlas CLI over a synthetic atlas: formats, errors and exit codes."""
import io
import json
import subprocess
import sys

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import neuron_atlas as na


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", *args],
                          capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_neurons_csv_matches_api(toy_atlas):
    out = run("neurons", "toy", "--lang", "tl,id", "--top", "5%", "-a", str(toy_atlas), "-f", "csv").stdout
    table = pacsv.read_csv(io.BytesIO(out.encode()))
    api = na.open(toy_atlas).neurons("toy", lang=["tl", "id"], top="5%").to_arrow()
    assert table.column("neuron").to_pylist() == api.column("neuron").to_pylist()
    assert table.column("lang").to_pylist() == api.column("lang").to_pylist()


def test_json_and_parquet_outputs(toy_atlas, tmp_path):
    out = run("languages", "toy", "-a", str(toy_atlas), "-f", "json").stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert {"lang": "tgl_Latn", "iso639_3": "tgl", "script": "Latn", "name": "Tagalog", "tokens": 3000} in rows
    path = tmp_path / "o.parquet"
    run("overlap", "toy", "--langs", "tl,en", "-a", str(toy_atlas), "-f", "parquet", "-o", str(path))
    assert pq.read_table(path).column_names == ["lang", "tgl_Latn", "eng_Latn"]


def test_sql_with_params_and_by_layer(toy_atlas):
    out = run("sql", "SELECT count(*) AS n FROM counts WHERE model = ?", "-p", "toy", "-a", str(toy_atlas)).stdout
    assert out.strip().splitlines()[-1] == str(4 * 96 * 9)
    out = run("neurons", "toy", "-l", "tl", "--by-layer", "-a", str(toy_atlas)).stdout
    assert out.splitlines()[0] == '"lang","layer","n_neurons"' and len(out.splitlines()) == 5


def test_errors_are_one_line_and_exit_2(toy_atlas):
    proc = run("neurons", "toy", "--lang", "Englsh", "-a", str(toy_atlas), check=False)
    assert proc.returncode == 2 and "eng_Latn (English)" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("neurons", "tyo", "-a", str(toy_atlas), check=False)
    assert proc.returncode == 2 and "Did you mean: toy" in proc.stderr
    proc = run("sql", "DROP VIEW lape", "-a", str(toy_atlas), check=False)
    assert proc.returncode == 2 and "read-only" in proc.stderr
    proc = run("neurons", "toy", "--top", "200%", "-a", str(toy_atlas), check=False)
    assert proc.returncode == 2 and "(0, 100%]" in proc.stderr


def test_overlap_plot(toy_atlas, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "o.png"
    run("overlap", "toy", "--langs", "tl,id,en", "--plot", str(png), "-a", str(toy_atlas))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_neurons_per_layer_plot(toy_atlas, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "layers.png"
    run("neurons", "toy", "--top", "5%", "--by-layer", "--plot", str(png), "-a", str(toy_atlas))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_info_and_models(toy_atlas):
    out = run("info", "-a", str(toy_atlas), "-f", "csv").stdout
    assert "toy-b" in out and "synthetic" in out
    assert "Synthetic" in run("models", "-a", str(toy_atlas)).stdout
