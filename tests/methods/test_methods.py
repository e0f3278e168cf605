"""The registry of selection methods: a method registered from here (a trivial "random" one) is usable through
``Atlas.neurons(method=...)`` and the CLI with no other file touched; misspelt names suggest registered ones."""
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

import neuron_atlas as na
from neuron_atlas.errors import InvalidParameterError
from neuron_atlas.methods import Method, Selection, method_names, register_method

SEED = 17


def select_random(stats, rows, size):
    """Scores drawn at random per (asked language, neuron); each language keeps its ``size`` highest."""
    scores = np.random.default_rng(SEED).random((len(rows), stats.p.shape[1]))
    picks = [np.argsort(-row, kind="stable")[:size] for row in scores]
    return Selection(picks, scores=scores, qualified=[scores.shape[1]] * len(rows))


if "random" not in method_names():
    register_method(Method("random", select_random, needs=("counts",), size="required", rule="a random score"))


def test_builtin_methods_are_registered():
    assert method_names()[:2] == ["lape", "ovr"]


def test_registered_method_answers_neurons(toy_atlas):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy", lang=["tl", "id"], size=6, method="random")
    assert s.params["method"] == "random" and s.sizes() == {lang: 6 for lang in s.langs}
    row = atlas.model("toy")
    scores = np.random.default_rng(SEED).random((2, row.n_layers * row.ffn_width))  # drawn independently here
    for i, lang in enumerate(s.langs):
        t = s.table.filter(pc.equal(s.table.column("lang"), lang))
        flat = t.column("layer").to_numpy().astype(np.int64) * row.ffn_width + t.column("neuron").to_numpy()
        assert sorted(flat) == sorted(np.argsort(-scores[i])[:6])
        np.testing.assert_array_equal(t.column("score").to_numpy(), scores[i, flat])


def test_registered_method_needs_size_and_a_known_name(toy_atlas):
    atlas = na.open(toy_atlas)
    with pytest.raises(InvalidParameterError, match="give size="):
        atlas.neurons("toy", method="random")
    with pytest.raises(InvalidParameterError, match="Did you mean: random"):
        atlas.neurons("toy", size=5, method="randm")
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_method(Method("random", select_random))


def test_registered_method_through_the_cli(toy_atlas):
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_methods; "
            "from neuron_atlas.cli import main; main()")
    args = ["neurons", "toy", "-l", "tl,id", "--size", "6", "--method", "random", "-a", str(toy_atlas), "-f", "csv"]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    api = na.open(toy_atlas).neurons("toy", lang=["tl", "id"], size=6, method="random").to_arrow()
    assert pacsv.read_csv(io.BytesIO(proc.stdout.encode())).column("neuron").to_pylist() == api.column("neuron").to_pylist()


def test_no_method_branch_in_the_package():
    package = Path(na.__file__).parent
    hits = [f"{p}:{i}" for p in package.rglob("*.py") for i, line in enumerate(p.read_text().splitlines(), 1)
            if "method ==" in line or "method !=" in line]
    assert not hits, f"methods are looked up in neuron_atlas.methods, not branched on: {hits}"
