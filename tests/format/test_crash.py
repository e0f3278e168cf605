"""Crash consistency: a build or a merge killed at any write and then rerun gives exactly the uninterrupted atlas.

Each operation runs in a forked child that dies (``os._exit``, as SIGKILL would: no cleanup, no finally) just before
or just after one of its file-system writes, chosen by a seeded draw over all of them; the rerun happens here.
"""
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from neuron_atlas.format import layout as storage
from neuron_atlas.testing import make_atlas, random_counts
from neuron_atlas.format.writer import AtlasWriter
from neuron_atlas.maintenance.merge import merge_atlas

LANGS = ["eng_Latn", "tgl_Latn", "ind_Latn", "fra_Latn"]
POINTS = 20  # kill points drawn per operation (the issue asks for at least 20)
_VOLATILE = {"derived", "neuron_atlas_fingerprint"}  # the derivation time, and the fingerprint that hashes it


def build(root: Path) -> None:
    """A build as the builder runs it: the model, each missing shard, then the derived tables."""
    from neuron_atlas.testing import ModelRow, dt

    writer = AtlasWriter(root)
    writer.add_model(ModelRow(model="toy", hf_repo="synthetic/toy", architecture="Synthetic", n_layers=2, ffn_width=8,
                              hidden_size=4, activation="silu", corpus="synthetic",
                              created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)))
    tokens = np.array([300, 400, 500, 600])
    fired = random_counts(np.random.default_rng(1), len(LANGS), 16, tokens)
    for k, lang in enumerate(LANGS):
        if not writer.has_counts("toy", lang):
            writer.add_counts("toy", lang, fired[k].reshape(2, 8), int(tokens[k]))
    writer.finalize("toy")


def _with_fault(operation, args, kill_at: int, counter: list[int] | None = None) -> None:
    """Run ``operation(*args)``, dying at the ``kill_at``-th write boundary (0: never; ``counter`` counts them)."""
    seen = [0]

    def boundary() -> None:
        seen[0] += 1
        if counter is not None:
            counter[0] = seen[0]
        if seen[0] == kill_at:
            os._exit(9)

    def around(fn):
        def wrapped(*a, **kw):
            boundary()
            out = fn(*a, **kw)
            boundary()
            return out
        return wrapped

    originals = (os.replace, storage.pq.write_table)
    os.replace, storage.pq.write_table = (around(f) for f in originals)
    try:
        operation(*args)
    finally:
        os.replace, storage.pq.write_table = originals


def _killed(operation, args, kill_at: int) -> int:
    proc = multiprocessing.get_context("fork").Process(target=_with_fault, args=(operation, args, kill_at))
    proc.start()
    proc.join(60)
    return proc.exitcode


def snapshot(root: Path) -> dict:
    """Every file of the atlas: Parquet files as their rows and metadata (less the volatile keys), text as text."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        rel = str(path.relative_to(root))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()
                    if k != b"ARROW:schema" and k.decode() not in _VOLATILE}
            if "neuron_atlas" in meta:
                meta["neuron_atlas"] = {k: v for k, v in json.loads(meta["neuron_atlas"]).items() if k not in _VOLATILE}
            out[rel] = (table.replace_schema_metadata(None).to_pylist(), meta)
        else:
            out[rel] = path.read_text()
    return out


def _points(operation, args, tmp_path: Path, seed: int) -> list[int]:
    counter = [0]
    _with_fault(operation, args(tmp_path / "count"), 0, counter)
    total = counter[0]
    assert total >= 20
    return sorted(np.random.default_rng(seed).choice(np.arange(1, total + 1), size=POINTS, replace=total < POINTS).tolist())


def test_build_killed_anywhere_then_rerun_equals_the_uninterrupted_build(tmp_path):
    build(tmp_path / "reference")
    want = snapshot(tmp_path / "reference")
    points = _points(build, lambda root: (root,), tmp_path, seed=20)
    for k in points:
        root = tmp_path / f"killed-{k}"
        assert _killed(build, (root,), k) == 9
        build(root)  # the rerun
        assert snapshot(root) == want, f"killed at write boundary {k}"
        assert not list(root.rglob(".*.tmp")), k


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge") / "source"
    make_atlas(root, model="toy", n_layers=2, ffn_width=8, langs=LANGS, tokens=300, seed=5)
    make_atlas(root, model="two", n_layers=1, ffn_width=8, langs=LANGS[:2], tokens=200, seed=6)
    return root


def test_merge_killed_anywhere_then_rerun_equals_the_uninterrupted_merge(tmp_path, source):
    before = snapshot(source)
    merge_atlas(source, tmp_path / "reference")
    want = snapshot(tmp_path / "reference")
    points = _points(merge_atlas, lambda out: (source, out), tmp_path, seed=21)
    for k in points:
        out = tmp_path / f"killed-{k}"
        assert _killed(merge_atlas, (source, out), k) == 9
        merge_atlas(source, out)
        assert snapshot(out) == want, f"killed at write boundary {k}"
    assert snapshot(source) == before  # the source is never written
