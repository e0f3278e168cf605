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
    rows = json.loads(out)  # one JSON array
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


def _no_traceback(proc):
    assert "Traceback" not in proc.stderr and "╭" not in proc.stderr, proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error:")]) == 1, proc.stderr


@pytest.mark.parametrize("args, code, message", [
    (["neurons"], 2, "Missing"),
    (["neurons", "toy", "--bogus"], 2, "No such option"),
    (["neurons", "toy", "--filter-rate", "abc"], 2, "valid number"),
    (["models", "--format", "xml"], 2, "xml"),
    (["sql"], 2, "Missing"),
    (["sql", "SELEC 1"], 2, "syntax error"),
    (["sql", "SELECT * FROM read_text('/etc/passwd')"], 2, "disabled|Permission"),
    (["sql", "SELECT count(*) FROM range(100000000000000)", "--timeout", "0.5"], 1, "timeout"),
    (["neurons", "toy", "--lang", "Tagalogg"], 2, "did you mean 'Tagalog'"),
    (["models", "-a", "/no/such/atlas"], 2, "does not exist"),
    (["models", "-f", "csv", "-o", "/proc/no/such/x.csv"], 1, "/proc/no"),
])
def test_usage_errors_and_failures_exit_codes(toy_atlas, args, code, message):
    if "-a" not in args:
        args = [*args, "-a", str(toy_atlas)]
    proc = run(*args, check=False)
    assert proc.returncode == code, proc.stderr
    assert __import__("re").search(message, proc.stderr), proc.stderr
    _no_traceback(proc)


def test_csv_and_json_to_an_output_file(toy_atlas, tmp_path):
    run("models", "-a", str(toy_atlas), "-f", "csv", "-o", str(tmp_path / "m.csv"))
    run("models", "-a", str(toy_atlas), "-f", "json", "-o", str(tmp_path / "m.json"))
    assert "toy-b" in (tmp_path / "m.csv").read_text() and "toy-b" in (tmp_path / "m.json").read_text()


def test_output_that_is_a_folder(toy_atlas, tmp_path):
    proc = run("models", "-a", str(toy_atlas), "-f", "csv", "-o", str(tmp_path), check=False)
    assert proc.returncode == 2 and "is a folder" in proc.stderr
    _no_traceback(proc)
    assert list(tmp_path.iterdir()) == []


def test_verify_command(toy_atlas, tmp_path):
    import shutil

    assert run("verify", str(toy_atlas)).returncode == 0
    root = tmp_path / "a"
    shutil.copytree(toy_atlas, root)
    shard = root / "counts" / "model=toy" / "lang=tgl_Latn" / "counts.parquet"
    shard.write_bytes(shard.read_bytes()[:300])
    proc = run("verify", str(root), check=False)
    assert proc.returncode == 1 and str(shard) in proc.stderr and "1 problems" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sql_warns_about_left_out_files_in_one_line_each(toy_atlas, tmp_path):
    import shutil

    root = tmp_path / "a"
    shutil.copytree(toy_atlas, root)
    shard = root / "counts" / "model=toy" / "lang=tgl_Latn" / "counts.parquet"
    shard.write_bytes(b"garbage")
    proc = run("sql", "SELECT 1 AS x", "-a", str(root), "-f", "csv")
    assert proc.stdout.split() == ['"x"', "1"] or proc.stdout.split() == ["x", "1"]
    assert proc.stderr.startswith("warning:") and str(shard) in proc.stderr and "Traceback" not in proc.stderr


def test_python_m_entry_point(toy_atlas):
    proc = subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "models", "-a", str(toy_atlas), "-f", "csv"],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 0 and "toy-b" in proc.stdout


def test_ctrl_c_exits_130(toy_atlas):
    import os
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "neuron_atlas.cli", "sql", "SELECT count(*) FROM range(100000000000000)",
                             "-a", str(toy_atlas)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    time.sleep(4)  # started and running the query
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err


def test_json_output_holds_no_nan(toy_atlas):
    """JSON has no NaN or Infinity: a non-finite value is written as null (strict parsers read the file)."""
    query = "SELECT 'a' AS k, 'NaN'::DOUBLE AS x, 'inf'::DOUBLE AS y, [1.0, 'nan'::DOUBLE] AS z"
    for fmt in ("json", "jsonl"):
        out = run("sql", query, "-a", str(toy_atlas), "-f", fmt).stdout
        rows = json.loads(out) if fmt == "json" else [json.loads(line) for line in out.splitlines()]
        assert rows == [{"k": "a", "x": None, "y": None, "z": [1.0, None]}]
