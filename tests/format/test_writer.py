"""AtlasWriter: validation of what is written, atomic files, and the JSON schemas in schema/."""
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import neuron_atlas as na
from neuron_atlas.format import layout as storage
from neuron_atlas.format.schema import ROW_MODELS, ModelRow
from neuron_atlas.testing import SAMPLE_LANGS
from neuron_atlas.format.writer import AtlasWriter

ROOT = Path(__file__).resolve().parents[2]


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
    from neuron_atlas.format.schema import write_json_schemas

    for path in write_json_schemas(tmp_path):
        committed = ROOT / "schema" / path.name
        assert committed.exists(), f"{committed} missing: run python -m neuron_atlas.format.schema"
        assert json.loads(committed.read_text()) == json.loads(path.read_text()), f"{committed} is stale"
    assert {p.name.split(".")[0] for p in (ROOT / "schema").glob("*.json")} == {"manifest", *ROW_MODELS}


_ADD_LANGS = """
import os, sys, time, numpy as np
from neuron_atlas.format.writer import AtlasWriter
w = AtlasWriter(sys.argv[1])
open(sys.argv[1] + "/../ready-" + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[1] + "/../go"):  # both start writing at once
    time.sleep(0.01)
for tag in sys.argv[2:]:
    w.add_counts("m", tag, np.zeros((2, 5), int), 10)
"""


def test_two_processes_adding_languages_keep_every_row(tmp_path):
    root = tmp_path / "atlas"
    AtlasWriter(root).add_model(_row())
    halves = [list(SAMPLE_LANGS[:40]), list(SAMPLE_LANGS[40:80])]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _ADD_LANGS, str(root), *half], env=env) for half in halves]
    while len(list(tmp_path.glob("ready-*"))) < 2 and all(p.poll() is None for p in procs):
        time.sleep(0.01)
    (tmp_path / "go").touch()
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    got = na.open(root).languages().column("lang").to_pylist()
    assert sorted(got) == sorted(SAMPLE_LANGS[:80])  # without the lock rows of one writer were lost


def test_killed_writer_leftovers_are_removed_on_resume(tmp_path):
    w = AtlasWriter(tmp_path)
    w.add_model(_row())
    dead = subprocess.Popen(["true"])
    dead.wait()
    shard_dir = tmp_path / "counts" / "model=m" / "lang=eng_Latn"
    shard_dir.mkdir(parents=True)
    orphan = shard_dir / f".counts.parquet.{dead.pid}-0a1b2c.tmp"  # what SIGKILL mid-write leaves
    orphan.write_bytes(b"half a file")
    live = tmp_path / f".languages.parquet.{os.getpid()}-0d0e0f.tmp"  # a live writer's file in flight
    live.write_bytes(b"being written")
    AtlasWriter(tmp_path)  # a resumed build opens a writer
    assert not orphan.exists() and live.exists()


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        w = AtlasWriter(tmp_path / "a")
        w.add_model(_row())
        w.add_counts("m", "en", np.zeros((2, 5), int), 10)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "a").rglob("*") if p.is_file() and p.name != ".atlas.lock"}
    assert set(modes.values()) == {0o644}, modes


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(na.AtlasError, match="is a file"):
        AtlasWriter(tmp_path / "f")


def test_merge_copies_missing_models_keeps_other_builds_and_resumes(tmp_path):
    from neuron_atlas.testing import make_atlas
    from neuron_atlas.maintenance.merge import merge_atlas

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
    storage_path = Path(merged.layout.file("counts", model="two", lang=merged.langs_of("two")[0]))
    storage_path.unlink()  # an interrupted merge: one shard missing
    assert merge_atlas(b, a) == {"one": None, "two": 1}


def test_merge_command(tmp_path):
    import subprocess
    import sys

    from neuron_atlas.testing import make_atlas

    make_atlas(tmp_path / "src", model="two", n_layers=2, ffn_width=8, langs=2)
    out = subprocess.run([sys.executable, "-m", "neuron_atlas.cli", "merge", str(tmp_path / "src"), str(tmp_path / "dst")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "merged two: 2 shards" in out.stderr and na.open(tmp_path / "dst").model_slugs == ["two"]


_KILLED_MID_WRITE = """
import sys, time
import pyarrow.parquet as pq
import numpy as np
from neuron_atlas.format import layout as storage
from neuron_atlas.format.writer import AtlasWriter

def slow_write(table, where, **kw):
    open(where, "wb").write(b"PAR1 half")
    print("writing", flush=True)
    time.sleep(60)

storage.pq.write_table = slow_write
AtlasWriter(sys.argv[1]).add_counts("m", "en", np.zeros((2, 5), int), 10)
"""


def test_sigkill_mid_write_leaves_a_temporary_that_resume_removes(tmp_path):
    AtlasWriter(tmp_path).add_model(_row())
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_MID_WRITE, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = list(tmp_path.rglob(".*.tmp"))
    # add_counts writes the catalogue row first (the shard, written last, commits the language)
    assert len(left) == 1 and left[0].name.startswith(".languages.parquet.")
    assert not (left[0].parent / "languages.parquet").exists()  # readers never saw half a file
    AtlasWriter(tmp_path)  # the resumed build
    assert list(tmp_path.rglob(".*.tmp")) == []


def test_writers_creating_one_atlas_at_once(tmp_path):
    root = tmp_path / "new"
    with ThreadPoolExecutor(8) as pool:
        writers = list(pool.map(lambda _: AtlasWriter(root), range(8)))
    assert len(writers) == 8 and na.open(root).manifest.format_version == 1
