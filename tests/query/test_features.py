"""Large-magnitude feature tables: norms against a dense reference, the Parquet layout, queries and overlaps."""
from __future__ import annotations

import subprocess
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from neuron_atlas.errors import InvalidParameterError, UnknownModelError
from neuron_atlas._query import features as ft
from neuron_atlas.format.schema import ARROW_SCHEMAS, FeatureRow
from neuron_atlas.format.layout import write_parquet


def write_synthetic(root, model: str, pair: str, sumsq: np.ndarray, tokens: int = 50) -> None:
    write_parquet(ft.feature_table(sumsq, tokens), ft.features_path(root, model, pair), {"model": model})


def test_query_helpers_do_not_import_torch():
    code = "import sys, neuron_atlas._query.features as f, neuron_atlas; a = neuron_atlas.Atlas; f.resolve_pair('sw-en', ['swa_Latn-eng_Latn']); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_feature_table_ranks_dimensions_by_norm_within_each_layer():
    rng = np.random.default_rng(0)
    sumsq = rng.random((3, 10)) * 100
    table = ft.feature_table(sumsq, tokens=25)
    assert table.schema == ARROW_SCHEMAS["features"] and table.num_rows == 30
    for layer in range(3):
        rows = table.filter(pa.compute.equal(table["layer"], layer))
        rank = rows["rank"].to_numpy()
        expected = np.empty(10, int)
        expected[np.argsort(-sumsq[layer])] = np.arange(10)
        np.testing.assert_array_equal(rank, expected)
        np.testing.assert_allclose(rows["norm"].to_numpy(), np.sqrt(sumsq[layer]), rtol=1e-6)
        np.testing.assert_allclose(rows["rms"].to_numpy(), np.sqrt(sumsq[layer] / 25), rtol=1e-6)
    for row in table.slice(0, 3).to_pylist():
        FeatureRow.model_validate(row)


def test_features_query_top_and_pair_spellings(tmp_path):
    sumsq = np.array([[1.0, 9.0, 4.0, 16.0], [25.0, 0.0, 1.0, 4.0]])
    write_synthetic(tmp_path, "tiny", "swa_Latn-eng_Latn", sumsq)
    top2 = ft.features(tmp_path, "tiny", "sw-en", top=2)
    assert top2.to_pydict() == {
        "model": ["tiny"] * 4, "pair": ["swa_Latn-eng_Latn"] * 4, "layer": [0, 0, 1, 1], "dim": [3, 1, 0, 3],
        "norm": [4.0, 3.0, 5.0, 2.0], "rms": top2["rms"].to_pylist(), "rank": [0, 1, 0, 1],
    }
    same = ft.features(tmp_path, "tiny", ("swa_Latn", "English"), top=2, layer=1)
    assert same["dim"].to_pylist() == [0, 3]
    assert ft.features(tmp_path, "tiny", "swa_Latn-eng_Latn", top=None).num_rows == 8
    assert ft.metadata(tmp_path, "tiny", "sw-en")["model"] == "tiny"


def test_features_errors_name_what_exists(tmp_path):
    write_synthetic(tmp_path, "tiny", "swa_Latn-eng_Latn", np.ones((2, 4)))
    with pytest.raises(UnknownModelError, match="models with features: \\['tiny'\\]"):
        ft.features(tmp_path, "tine", "sw-en")
    with pytest.raises(InvalidParameterError, match="stored pairs: \\['swa_Latn-eng_Latn'\\]"):
        ft.features(tmp_path, "tiny", "fr-en")
    with pytest.raises(InvalidParameterError, match="top must be"):
        ft.features(tmp_path, "tiny", "sw-en", top=0)
    with pytest.raises(InvalidParameterError, match="top must be"):  # not a TypeError from a comparison
        ft.features(tmp_path, "tiny", "sw-en", top="5")
    with pytest.raises(InvalidParameterError, match="layer 5 not in"):
        ft.features(tmp_path, "tiny", "sw-en", layer=5)


def test_overlap_counts_shared_top_dimensions(tmp_path):
    write_synthetic(tmp_path, "tiny", "swa_Latn-eng_Latn", np.array([[9.0, 8, 1, 0], [0, 1, 8, 9]]))
    write_synthetic(tmp_path, "tiny", "fra_Latn-eng_Latn", np.array([[9.0, 1, 8, 0], [9, 8, 1, 0]]))
    table = ft.overlap(tmp_path, "tiny", top=2)
    rows = sorted(zip(table["layer"].to_pylist(), table["shared"].to_pylist(), table["jaccard"].to_pylist()))
    assert rows == [(0, 1, 1 / 3), (1, 0, 0.0)]  # {0,1}&{0,2}; {2,3}&{0,1}
    with pytest.raises(InvalidParameterError, match="two or more pairs"):
        ft.overlap(tmp_path, "tiny", pairs=["sw-en"])
    by_string = ft.overlap(tmp_path, "tiny", pairs="fr-en,sw-en", top=2)  # comma-separated, not letter by letter
    assert by_string.equals(table)


def test_sql_over_the_hive_layout(tmp_path):
    write_synthetic(tmp_path, "tiny", "swa_Latn-eng_Latn", np.array([[1.0, 9.0, 4.0]]))
    write_synthetic(tmp_path, "tiny", "fra_Latn-eng_Latn", np.array([[9.0, 1.0, 4.0]]))
    got = duckdb.sql(
        f"SELECT pair, dim FROM read_parquet('{tmp_path}/features/*/*/features.parquet', hive_partitioning = true) "
        "WHERE model = 'tiny' AND rank = 0 ORDER BY pair"
    ).fetchall()
    assert got == [("fra_Latn-eng_Latn", 0), ("swa_Latn-eng_Latn", 1)]


def test_features_read_through_the_layout_of_a_remote_atlas(toy_atlas, tmp_path):
    """Through an fsspec filesystem (as hf:// atlases are read) features answer like a local folder, and the card
    lists one config per (model, pair)."""
    import shutil

    import fsspec

    from neuron_atlas.atlas import Atlas
    from neuron_atlas.hub.card import dataset_configs

    root = tmp_path / "atlas"
    shutil.copytree(toy_atlas, root)
    sumsq = np.array([[1.0, 9.0, 4.0, 16.0], [25.0, 0.0, 1.0, 4.0]])
    write_synthetic(root, "toy", "swa_Latn-eng_Latn", sumsq)
    local, remote = Atlas(root), Atlas(str(root), fs=fsspec.filesystem("file"))
    assert remote.features("toy", "sw-en", top=2).equals(local.features("toy", "sw-en", top=2))
    configs = {c["config_name"]: c["data_files"] for c in dataset_configs(remote.layout)}
    assert configs["toy-swa_Latn-eng_Latn-features"] == [
        {"split": "train", "path": "features/model=toy/pair=swa_Latn-eng_Latn/features.parquet"}]
