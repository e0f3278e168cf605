"""The CLI on format-v2 statistics: neurons --method mean_diff/t, steering-vector in each file format, methods, and
the exit codes (2 for bad input and for statistics the atlas lacks)."""
import io
import subprocess
import sys

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from toy_langs import LANGS

import neuron_atlas as na
from neuron_atlas.testing import make_atlas


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", *args],
                          capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    return make_atlas(tmp_path_factory.mktemp("v2"), n_layers=3, ffn_width=40, langs=LANGS[:6], seed=4,
                       stats=True)


@pytest.mark.parametrize("method", ["mean_diff", "t"])
def test_neurons_method_matches_api(v2, method):
    out = run("neurons", "toy", "-l", "tl", "--method", method, "--size", "12", "-a", str(v2), "-f", "csv").stdout
    table = pacsv.read_csv(io.BytesIO(out.encode()))
    api = na.open(v2).neurons("toy", lang="tl", method=method, size=12).to_arrow()
    assert table.column("neuron").to_pylist() == api.column("neuron").to_pylist()
    np.testing.assert_allclose(table.column("score").to_numpy(), api.column("score").to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("suffix", [".safetensors", ".npy", ".parquet"])
@pytest.mark.parametrize("layer", [None, 2])
def test_steering_vector_files(v2, tmp_path, suffix, layer):
    path = tmp_path / f"v{suffix}"
    args = ["steering-vector", "toy", "--lang", "tl", "--output", str(path), "-a", str(v2), "--against", "fr,id"]
    run(*args, *([] if layer is None else ["--layer", str(layer)]))
    want = na.open(v2).steering_vector("toy", "tl", layer=layer, against=["fr", "id"])
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        got = load_file(path)["steering_vector"]
    elif suffix == ".npy":
        got = np.load(path)
    else:
        table = pq.read_table(path)
        assert table.column("layer").to_pylist() == ([layer] if layer is not None else list(range(4)))
        got = np.array(table.column("vector").to_pylist(), dtype=np.float32)
        got = got[0] if layer is not None else got
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_methods_lists_what_each_needs(v2):
    out = run("methods", "-f", "csv").stdout
    table = pacsv.read_csv(io.BytesIO(out.encode()))
    needs = dict(zip(table.column("method").to_pylist(), table.column("needs").to_pylist()))
    assert needs["lape"] == "counts" and needs["ovr"] == "counts"
    assert needs["mean_diff"] == "means" and needs["t"] == "moments"


def test_exit_codes(v2, toy_atlas, tmp_path):
    proc = run("steering-vector", "toy", "--lang", "tl", "-o", str(tmp_path / "v.txt"), "-a", str(v2), check=False)
    assert proc.returncode == 2 and ".safetensors, .npy, .parquet" in proc.stderr
    proc = run("steering-vector", "toy", "--lang", "tl", "--layer", "9", "-o", str(tmp_path / "v.npy"), "-a", str(v2),
               check=False)
    assert proc.returncode == 2 and "0 (the embeddings) to 3" in proc.stderr
    proc = run("neurons", "toy", "-l", "tl", "--method", "mean_dif", "--size", "5", "-a", str(v2), check=False)
    assert proc.returncode == 2 and "mean_diff" in proc.stderr
    proc = run("neurons", "toy", "-l", "tl", "--method", "t", "--size", "5", "-a", str(toy_atlas), check=False)
    assert proc.returncode == 2 and "neuron-atlas build --model synthetic/toy" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run("steering-vector", "toy", "--lang", "tl", "-o", str(tmp_path / "v.npy"), "-a", str(toy_atlas), check=False)
    assert proc.returncode == 2 and "residual-stream means" in proc.stderr
