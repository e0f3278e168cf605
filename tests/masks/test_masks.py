"""NeuronMask: every neuron source gives the dense mask a plain numpy reference gives; weight masks, algebra,
files and errors. Torch-free except the test on published neuron sets."""
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuron_atlas.errors import AtlasFormatError, UnknownLanguageError
from neuron_atlas.masks import FFNShape, MaskError, NeuronMask, neuron_mask, neuron_masks
from neuron_atlas.neuronset import SCHEMA, NeuronSet

L, W = 4, 10


def random_rows(rng, langs=("eng_Latn", "tgl_Latn", "fra_Latn"), n=12):
    """Random (lang, layer, neuron) rows, unique per language, and the dense reference per language."""
    dense = {lang: rng.random((L, W)) < n / (L * W) for lang in langs}
    rows = [(lang, i, j) for lang in langs for i, j in zip(*np.nonzero(dense[lang]))]
    return rows, dense


def as_neuronset(rows, langs=("eng_Latn", "tgl_Latn", "fra_Latn")):
    table = pa.table({
        "model": ["tiny"] * len(rows), "lang": [r[0] for r in rows],
        "layer": pa.array([r[1] for r in rows], pa.int16()), "neuron": pa.array([r[2] for r in rows], pa.int32()),
        "p": [0.5] * len(rows), "entropy": [0.1] * len(rows), "rank": pa.array(range(len(rows)), pa.int32()),
        "score": pa.nulls(len(rows), pa.float64()), "n_langs": pa.array([1] * len(rows), pa.int32()),
        "top_langs": [r[0] for r in rows],
    }, schema=SCHEMA)
    return NeuronSet(table, "tiny", list(langs), L, W, {"top_rate": 0.01, "filter_rate": 0.95, "bar_ratio": 0.95,
                                                          "revision": "v1"})


@pytest.fixture
def data():
    rows, dense = random_rows(np.random.default_rng(7))
    return rows, dense, as_neuronset(rows)


def test_every_source_gives_the_reference_mask(data):
    rows, dense, ns = data
    union = dense["eng_Latn"] | dense["tgl_Latn"] | dense["fra_Latn"]
    table = ns.to_arrow()
    frame = table.to_pandas()
    per_lang = {lang: {i: np.flatnonzero(dense[lang][i]) for i in range(L)} for lang in dense}
    assert np.array_equal(neuron_mask(ns).dense(), union)
    assert np.array_equal(neuron_mask(table).dense(), union)  # shape from the table's metadata
    assert np.array_equal(neuron_mask(frame, shape=(L, W)).dense(), union)
    assert np.array_equal(neuron_mask(per_lang, shape=(L, W)).dense(), union)
    assert np.array_equal(neuron_mask(ns.indices(), shape=(L, W)).dense(), union)  # {lang: [per layer]}
    pairs = [(r[1], r[2]) for r in rows if r[0] == "tgl_Latn"]
    assert np.array_equal(neuron_mask(pairs, shape=(L, W)).dense(), dense["tgl_Latn"])
    assert np.array_equal(neuron_mask(per_lang["fra_Latn"], shape=(L, W)).dense(), dense["fra_Latn"])


def test_language_selection(data):
    _, dense, ns = data
    one = neuron_mask(ns, lang="tl")  # resolved to tgl_Latn
    assert np.array_equal(one.dense(), dense["tgl_Latn"]) and one.languages == ("tgl_Latn",)
    two = neuron_mask(ns, lang=["eng_Latn", "fr"])
    assert np.array_equal(two.dense(), dense["eng_Latn"] | dense["fra_Latn"])
    assert two.languages == ("eng_Latn", "fra_Latn")
    assert one.model == "tiny" and one.atlas_version == "v1" and one.params["top_rate"] == 0.01
    per = neuron_masks(ns)
    assert list(per) == ["eng_Latn", "tgl_Latn", "fra_Latn"]
    assert all(np.array_equal(per[k].dense(), dense[k]) for k in per)
    with pytest.raises(UnknownLanguageError, match="not among"):
        neuron_mask(ns, lang="deu")
    with pytest.raises(MaskError, match="no 'lang' column"):
        neuron_mask([(0, 1)], lang="eng", shape=(L, W))


def test_mask_views_against_numpy():
    rng = np.random.default_rng(3)
    dense = rng.random((L, W)) < 0.3
    mask = NeuronMask.from_dense(dense, model="m")
    assert len(mask) == dense.sum() and np.array_equal(mask.counts(), dense.sum(1))
    assert mask.layers() == [i for i in range(L) if dense[i].any()]
    assert np.array_equal(mask.pairs(), np.argwhere(dense))
    assert all(np.all(np.diff(idx) > 0) for idx in mask.indices)
    assert NeuronMask.from_pairs(mask.pairs(), (L, W)) == mask


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_union_intersection_match_numpy(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((L, W)) < 0.3, rng.random((L, W)) < 0.3
    ma, mb = NeuronMask.from_dense(a, languages=["x"]), NeuronMask.from_dense(b, languages=["y"])
    assert np.array_equal((ma | mb).dense(), a | b)
    assert np.array_equal((ma & mb).dense(), a & b)
    assert (ma | mb).languages == ("x", "y")


def test_random_like_keeps_sizes():
    mask = NeuronMask([[1, 2, 3], [], [0, 9], [4]], W)
    per = mask.random_like(seed=1)
    assert np.array_equal(per.counts(), mask.counts()) and per != mask
    overall = mask.random_like(per_layer=False, seed=1)
    assert len(overall) == len(mask)
    assert mask.random_like(seed=1) == per  # deterministic


SHAPES = {
    "gated": [FFNShape("gated", 6, W)] * L,
    "fused": [FFNShape("fused_gated", 6, W)] * L,
    "conv1d": [FFNShape("plain", 6, W, transposed=True)] * L,
}


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_weight_masks_against_dense_reference(kind):
    dense = np.random.default_rng(5).random((L, W)) < 0.3
    mask = NeuronMask.from_dense(dense)
    for layer, wm in enumerate(mask.weight_masks(SHAPES[kind])):
        m = dense[layer]
        if kind == "gated":
            expect = {"gate": np.repeat(m[:, None], 6, 1), "up": np.repeat(m[:, None], 6, 1),
                      "down": np.repeat(m[None, :], 6, 0)}
        elif kind == "fused":
            expect = {"up": np.repeat(np.concatenate([m, m])[:, None], 6, 1), "down": np.repeat(m[None, :], 6, 0)}
        else:  # Conv1D stores fc_in as [hidden, width] and fc_out as [width, hidden]
            expect = {"up": np.repeat(m[None, :], 6, 0), "down": np.repeat(m[:, None], 6, 1)}
        assert set(wm) == set(expect)
        for name, ref in expect.items():
            assert wm[name].shape == ref.shape and np.array_equal(wm[name].dense(), ref)
            assert wm[name].size == ref.sum()


def test_shape_mismatch_errors():
    mask = NeuronMask([[1], [2], [3], [4]], W, model="llama-3.1-8b")
    with pytest.raises(MaskError, match="4 layers but the model has 5"):
        mask.weight_masks([FFNShape("gated", 6, W)] * 5)
    with pytest.raises(MaskError, match="10 neurons per layer but the model's FFN width is \\[12\\]"):
        mask.check([FFNShape("gated", 6, 12)] * L)
    with pytest.raises(MaskError, match="neuron 10 is out of range"):
        NeuronMask([[10]], W)
    with pytest.raises(MaskError, match="layer 7 is out of range"):
        neuron_mask([(7, 1)], shape=(L, W))
    with pytest.raises(MaskError, match="does not say its model's shape"):
        neuron_mask({0: [1]})
    rows, _ = random_rows(np.random.default_rng(1))
    with pytest.raises(MaskError, match="4 layers × 10 FFN neurons, but the target has 5 layers × 10"):
        neuron_mask(as_neuronset(rows), shape=[FFNShape("gated", 6, W)] * 5)
    with pytest.raises(MaskError, match="lacks column"):
        neuron_mask(pa.table({"layer": [0]}), shape=(L, W))
    with pytest.raises(MaskError, match="cannot combine masks of different shapes"):
        mask | NeuronMask([[1]], W)


def test_empty_sets_are_errors_where_nothing_could_be_done():
    rows, _ = random_rows(np.random.default_rng(2))
    ns = as_neuronset([r for r in rows if r[0] != "fra_Latn"])
    with pytest.raises(MaskError, match="fra_Latn has no selected neurons at top_rate=0.01"):
        neuron_mask(ns, lang="fra")
    assert len(neuron_masks(ns)["fra_Latn"]) == 0  # per-language view keeps empty languages
    with pytest.raises(MaskError, match="empty"):
        neuron_mask([], shape=(L, W))


def test_save_load_roundtrip(tmp_path, data):
    _, _, ns = data
    mask = neuron_mask(ns, lang="tgl")
    path = tmp_path / "tgl.safetensors"
    mask.save(path)
    back = NeuronMask.load(path)
    assert back == mask and back.languages == ("tgl_Latn",) and back.params == mask.params
    assert back.model == "tiny" and back.atlas_version == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["tgl.safetensors"]  # no temporary files left
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        meta = json.loads(fh.metadata()["mask"])
    assert meta["fingerprint"] == mask.fingerprint() and meta["languages"] == ["tgl_Latn"]


def test_empty_layers_and_empty_mask_roundtrip(tmp_path):
    mask = NeuronMask([[], [], [], []], W) & NeuronMask([[1], [], [], []], W)
    mask.save(tmp_path / "e.safetensors")
    assert NeuronMask.load(tmp_path / "e.safetensors") == mask and len(mask) == 0


def test_load_rejects_bad_files(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(AtlasFormatError, match="not a readable safetensors"):
        NeuronMask.load(tmp_path / "junk.safetensors")
    from safetensors.numpy import save_file

    meta = NeuronMask([[1, 2]], W).metadata()
    save_file({"indices": np.array([1, 3], np.int32), "offsets": np.array([0, 2])}, str(tmp_path / "t.safetensors"),
              metadata={"format": "neuron-atlas-mask", "mask": json.dumps(meta)})
    with pytest.raises(AtlasFormatError, match="fingerprint"):
        NeuronMask.load(tmp_path / "t.safetensors")
    save_file({"x": np.zeros(1)}, str(tmp_path / "o.safetensors"), metadata={"format": "other"})
    with pytest.raises(AtlasFormatError, match="not a neuron-atlas mask"):
        NeuronMask.load(tmp_path / "o.safetensors")


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    NeuronMask([[1]], W).save(path)
    before = path.read_bytes()
    from neuron_atlas._utils import files

    def full(file, mode="r", *args, **kwargs):  # every file written by the output rule fails as on a full disk
        if "w" in mode:
            raise OSError("disk full")
        return open(file, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", full, raising=False)
    with pytest.raises(OSError, match="disk full"):
        NeuronMask([[2]], W).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.safetensors"]


def test_masks_module_does_not_import_torch():
    code = "import sys, neuron_atlas.masks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
