"""AtlasWriter: validation of what is written, atomic files, and the JSON schemas in schema/."""
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

import neuron_atlas as na
from neuron_atlas import storage
from neuron_atlas.schema import ROW_MODELS, ModelRow
from neuron_atlas.writer import AtlasWriter

ROOT = Path(__file__).resolve().parents[1]


def _row(**kw):
    base = dict(model="m", hf_repo="x", architecture="X", n_layers=2, ffn_width=5, hidden_size=4,
                activation="silu", corpus="c", created=dt.datetime.now(dt.timezone.utc))
    return ModelRow(**{**base, **kw})


def test_counts_are_validated(tmp_path):
    w = AtlasWriter(tmp_path)
    w.add_model(_row())
    with pytest.raises(na.AtlasError, match=r"shape \(3, 5\), expected \(2, 5\)"):
        w.add_counts("m", "en", np.zeros((3, 5), int), 10)
    with pytest.raises(na.AtlasError, match="must lie in"):
        w.add_counts("m", "en", np.full((2, 5), 11), 10)
    with pytest.raises(na.UnknownModelError):
        w.add_counts("other", "en", np.zeros((2, 5), int), 10)
    assert w.add_counts("m", "en", np.ones((2, 5), int), 10) == "eng_Latn"
    with pytest.raises(na.AtlasError, match="exists"):
        w.add_counts("m", "English", np.ones((2, 5), int), 10)
    with pytest.raises(na.AtlasError, match="already has counts"):
        w.add_model(_row(ffn_width=6))


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    w = AtlasWriter(tmp_path)
    w.add_model(_row())

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(storage.pq, "write_table", boom)
    with pytest.raises(KeyboardInterrupt):
        w.add_counts("m", "en", np.ones((2, 5), int), 10)
    monkeypatch.undo()
    assert not w.has_counts("m", "en")
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(na.AtlasFormatError, match="without atlas.json"):
        AtlasWriter(tmp_path)


def test_slug_validated():
    with pytest.raises(ValueError):
        _row(model="Bad Slug!")


def test_json_schemas_are_current(tmp_path):
    from neuron_atlas.schema import write_json_schemas

    for path in write_json_schemas(tmp_path):
        committed = ROOT / "schema" / path.name
        assert committed.exists(), f"{committed} missing: run python -m neuron_atlas.schema"
        assert json.loads(committed.read_text()) == json.loads(path.read_text()), f"{committed} is stale"
    assert {p.name.split(".")[0] for p in (ROOT / "schema").glob("*.json")} == {"manifest", *ROW_MODELS}


def test_merge_copies_missing_models_keeps_other_builds_and_resumes(tmp_path):
    from neuron_atlas.synthetic import make_atlas
    from neuron_atlas.writer import merge_atlas

    a, b = tmp_path / "a", tmp_path / "b"
    make_atlas(a, model="one", n_layers=2, ffn_width=16, langs=3, seed=1)
    make_atlas(b, model="two", n_layers=3, ffn_width=8, langs=4, seed=2)
    make_atlas(b, model="one", n_layers=2, ffn_width=16, langs=2, seed=9)  # another build of "one"
    assert merge_atlas(b, a) == {"one": None, "two": 4}
    merged, source = na.open(a), na.open(b)
    assert merged.model_slugs == ["one", "two"] and merged.model("one").revision == "seed=1"
    assert merged.neurons("two", top="5%").table.equals(source.neurons("two", top="5%").table)
    q = "SELECT lang, sum(fired) FROM counts WHERE model = 'two' GROUP BY lang ORDER BY lang"
    assert merged.sql(q).equals(source.sql(q))
    storage_path = Path(merged.layout.counts("two", merged.langs_of("two")[0]))
    storage_path.unlink()  # an interrupted merge: one shard missing
    assert merge_atlas(b, a) == {"one": None, "two": 1}


def test_merge_command(tmp_path):
    import subprocess
    import sys

    from neuron_atlas.synthetic import make_atlas

    make_atlas(tmp_path / "src", model="two", n_layers=2, ffn_width=8, langs=2)
    out = subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "merge", str(tmp_path / "src"), str(tmp_path / "dst")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "merged two: 2 shards" in out.stderr and na.open(tmp_path / "dst").model_slugs == ["two"]
