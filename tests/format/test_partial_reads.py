"""A steering vector for one layer reads only that layer's row group of each residual file and the footers: bytes
counted at an fsspec filesystem, as a lazy hf:// atlas reads them."""
import shutil

import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from neuron_atlas.atlas import Atlas
from neuron_atlas.errors import AtlasFormatError
from neuron_atlas.format.parquet import read_footer, read_row_groups
from neuron_atlas.testing import make_atlas

L, HIDDEN, LANGS = 6, 96, 8


class CountingFS(LocalFileSystem):
    """The local disk through fsspec, counting the bytes read from each file."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.read: dict[str, int] = {}

    def _open(self, path, mode="rb", **kw):
        f = super()._open(path, mode=mode)
        if "b" not in mode:
            return f
        counts, read = self.read, f.read

        def counted(*args):
            data = read(*args)
            counts[path] = counts.get(path, 0) + len(data)
            return data

        f.read = counted
        return f


def test_one_layer_reads_its_row_group_and_the_footer(tmp_path):
    root = make_atlas(tmp_path / "a", n_layers=L, ffn_width=32, langs=LANGS, seed=5, stats=True, hidden_size=HIDDEN)
    fs = CountingFS(skip_instance_cache=True)
    atlas = Atlas(str(root), fs=fs)
    got = atlas.steering_vector("toy", "eng_Latn", layer=3)
    np.testing.assert_array_equal(got, Atlas(root).steering_vector("toy", "eng_Latn", layer=3))
    residual = {p: n for p, n in fs.read.items() if "/residual/" in p}
    assert len(residual) == LANGS
    for path, n in residual.items():
        meta = pq.read_metadata(path)
        assert meta.num_row_groups == L + 1  # one per layer
        footer = meta.serialized_size + 8
        chunk = sum(meta.row_group(3).column(i).total_compressed_size for i in range(meta.num_columns))
        assert n <= footer + chunk, (path, n, footer, chunk)
        assert n < 0.5 * fsspec.filesystem("file").size(path)
    assert sum(residual.values()) <= 2 * LANGS * HIDDEN * 8 + sum(pq.read_metadata(p).serialized_size + 8 for p in residual)
    fs.read.clear()
    atlas.steering_vector("toy", "eng_Latn", layer=3, against=["fr", "de"])  # warm: nothing read
    assert not any("/residual/" in p for p in fs.read)


def test_footer_and_row_groups_equal_pyarrow(tmp_path):
    root = make_atlas(tmp_path / "a", n_layers=L, ffn_width=32, langs=2, seed=6, stats=True, hidden_size=HIDDEN)
    path = next(root.glob("residual/model=toy/lang=*/residual.parquet"))
    with open(path, "rb") as f:
        assert read_footer(f, str(path)).equals(pq.read_metadata(path))
    table, _ = read_row_groups(str(path), LocalFileSystem(), "layer", [1, 4])
    assert table.equals(pq.ParquetFile(path).read_row_groups([1, 4]))
    assert table.column("layer").to_pylist() == [1, 4]


def test_a_residual_file_of_another_language_is_refused(tmp_path):
    root = make_atlas(tmp_path / "a", n_layers=2, ffn_width=16, langs=3, seed=7, stats=True, hidden_size=8)
    files = sorted(root.glob("residual/model=toy/lang=*/residual.parquet"))
    shutil.copy(files[0], files[1])
    with pytest.raises(AtlasFormatError, match="copied into another folder"):
        Atlas(root).steering_vector("toy", files[1].parent.name.split("=")[1], layer=1)
