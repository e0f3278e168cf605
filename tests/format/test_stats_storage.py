"""Atlas format v2 on disk: the activations and residual files (writer, readers, SQL views, verify, merge,
compaction), and v1 atlases next to them."""
import datetime as dt
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reference_moments import merge_moments

import neuron_atlas as na
from neuron_atlas.maintenance.compact import Precision, compact_atlas, layer_steps
from neuron_atlas.errors import AtlasWarning
from neuron_atlas.format.reader import (
    load_counts,
    load_moments,
    load_residual,
    read_manifest,
    read_model,
)
from neuron_atlas.format.schema import ModelRow
from neuron_atlas.format.layout import Layout, write_parquet
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.verify import verify
from neuron_atlas.format.writer import AtlasWriter
from neuron_atlas.maintenance.merge import merge_atlas

LANGS = ["eng_Latn", "fra_Latn", "tgl_Latn", "rus_Cyrl"]


def _row(**kw):
    base = {"model": "m", "hf_repo": "x", "architecture": "X", "n_layers": 2, "ffn_width": 5, "hidden_size": 4,
            "activation": "silu", "corpus": "c", "created": dt.datetime.now(dt.timezone.utc)}
    return ModelRow(**{**base, **kw})


def _stats(rng, row):
    return ((rng.normal(size=(row.n_layers, row.ffn_width)), rng.random((row.n_layers, row.ffn_width))),
            rng.normal(size=(row.n_layers + 1, row.hidden_size)))


def test_statistics_round_trip_through_files_and_sql(tmp_path):
    rng = np.random.default_rng()
    writer, row = AtlasWriter(tmp_path), _row()
    writer.add_model(row)
    assert read_manifest(writer.layout).format_version == 1  # counts only: still v1
    given = {}
    for lang in LANGS:
        moments, residual = _stats(rng, row)
        tokens = int(rng.integers(20, 100))
        writer.add_counts("m", lang, rng.integers(0, tokens, (2, 5)), tokens, moments=moments, residual=residual)
        given[lang] = (moments, residual, tokens)
    assert read_manifest(writer.layout).format_version == 2
    writer.finalize("m")
    mean, var, tokens = load_moments(writer.layout, row, LANGS[::-1])
    residual, res_tokens = load_residual(writer.layout, row, LANGS[::-1])
    for k, lang in enumerate(LANGS[::-1]):
        (m, v), r, t = given[lang]
        assert np.array_equal(mean[k], m) and np.array_equal(var[k], v) and np.array_equal(residual[k], r)
        assert tokens[k] == res_tokens[k] == t
    atlas = na.open(tmp_path)
    got = atlas.sql("SELECT layer, neuron, tokens, mean, var FROM activations WHERE model = 'm' AND lang = 'tgl_Latn' "
                    "ORDER BY layer, neuron")
    (m, v), r, t = given["tgl_Latn"]
    assert got.column("mean").to_pylist() == m.ravel().tolist() and got.column("var").to_pylist() == v.ravel().tolist()
    assert set(got.column("tokens").to_pylist()) == {t}
    res = atlas.sql("SELECT layer, tokens, mean FROM residual WHERE model = 'm' AND lang = $lang ORDER BY layer",
                    {"lang": "tgl_Latn"})
    assert res.column("mean").to_pylist() == r.tolist() and res.column("layer").to_pylist() == [0, 1, 2]
    assert verify(tmp_path) == []


@pytest.mark.parametrize("bad, match", [
    (lambda m, v, r: (m[:1], v, r), r"activation means of m/eng_Latn have shape \(1, 5\), expected \(2, 5\)"),
    (lambda m, v, r: (m, -v, r), "activation variances of m/eng_Latn must be >= 0"),
    (lambda m, v, r: (np.where(m > 0, np.nan, m), v, r), "non-finite values"),
    (lambda m, v, r: (m, v, r[:, :3]), r"residual means of m/eng_Latn have shape \(3, 3\), expected \(3, 4\)"),
])
def test_statistics_are_validated_before_anything_is_written(tmp_path, bad, match):
    writer, row = AtlasWriter(tmp_path), _row()
    writer.add_model(row)
    (m, v), r = _stats(np.random.default_rng(), row)
    m, v, r = bad(m, v, r)
    with pytest.raises(na.AtlasError, match=match):
        writer.add_counts("m", "en", np.ones((2, 5), int), 10, moments=(m, v), residual=r)
    assert not writer.has_counts("m", "en") and not list(tmp_path.rglob("*.parquet"))[1:]


def test_replaced_shard_without_statistics_drops_the_stale_ones(tmp_path):
    writer, row = AtlasWriter(tmp_path), _row()
    writer.add_model(row)
    moments, residual = _stats(np.random.default_rng(), row)
    writer.add_counts("m", "en", np.ones((2, 5), int), 10, moments=moments, residual=residual)
    writer.add_counts("m", "en", np.ones((2, 5), int), 12, replace=True)  # e.g. an importer's counts
    assert not any(tmp_path.glob("activations/**/*.parquet")) and not any(tmp_path.glob("residual/**/*.parquet"))
    with pytest.raises(na.MissingStatisticsError, match=r"no activation moments .* for eng_Latn.*neuron-atlas build"):
        load_moments(writer.layout, row, ["eng_Latn"])


def test_v1_atlas_answers_lape_and_ovr_and_names_missing_statistics(tmp_path):
    v1 = make_atlas(tmp_path / "v1", langs=LANGS, seed=3)
    v2 = make_atlas(tmp_path / "v2", langs=LANGS, seed=3, stats=True)
    assert na.open(v1).manifest.format_version == 1 and na.open(v2).manifest.format_version == 2
    for method, size in (("lape", None), ("ovr", "2%")):
        a = na.open(v1).neurons("toy", method=method, size=size).to_arrow()
        b = na.open(v2).neurons("toy", method=method, size=size).to_arrow()
        assert a.equals(b) and a.num_rows > 0  # the statistics change no LAPE answer
    layout = Layout(str(v1))
    with pytest.raises(na.MissingStatisticsError) as info:
        load_residual(layout, read_model(layout, "toy"), LANGS)
    assert info.value.langs == LANGS and info.value.kind == "residual"
    assert na.open(v1).sql("SELECT count(*) AS n FROM activations").column("n")[0].as_py() == 0
    assert verify(v1) == []


def test_verify_names_corrupt_and_stray_statistics_files(tmp_path):
    """Bad values written as a buggy writer would (through write_parquet, so the content fingerprint matches and the
    value checks are what must catch them); a file copied into another language's folder."""
    root = make_atlas(tmp_path / "a", langs=LANGS, stats=True)
    layout = Layout(str(root))
    act = root / "activations" / "model=toy" / "lang=fra_Latn" / "activations.parquet"
    table = pq.read_table(act)
    var = table.column("var").to_numpy().copy()
    var[7] = -1.0
    write_parquet(table.set_column(4, "var", pa.array(var)), act)
    res = root / "residual" / "model=toy" / "lang=tgl_Latn" / "residual.parquet"
    table = pq.read_table(res)
    write_parquet(table.set_column(1, "tokens", pa.array(np.full(table.num_rows, 5), pa.int64())), res)
    stray = root / "residual" / "model=toy" / "lang=deu_Latn" / "residual.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(res.read_bytes())
    problems = [str(p) for p in verify(root)]
    assert any(str(act) in p and "negative variance" in p for p in problems)
    assert any(str(res) in p and "token counts 5..5, but the language's counts shard has 2000" in p for p in problems)
    assert any(str(stray) in p and "no counts shard" in p for p in problems)
    with pytest.warns(AtlasWarning):
        langs = na.open(root).sql("SELECT DISTINCT lang FROM residual ORDER BY lang").column("lang").to_pylist()
    assert langs == ["eng_Latn", "fra_Latn", "rus_Cyrl"]  # the bad file and the stray one are left out
    assert load_moments(layout, read_model(layout, "toy"), ["eng_Latn"])[0].shape == (1, 4, 64)


def test_merge_keeps_v2_and_v1_models_in_one_atlas(tmp_path):
    make_atlas(tmp_path / "a", model="new", langs=LANGS, stats=True, seed=1)
    make_atlas(tmp_path / "b", model="old", langs=LANGS[:2], seed=2)
    out = tmp_path / "out"
    assert merge_atlas(tmp_path / "a", out) == {"new": 4} and merge_atlas(tmp_path / "b", out) == {"old": 2}
    layout, src = Layout(str(out)), Layout(str(tmp_path / "a"))
    row = read_model(layout, "new")
    for got, want in zip(load_moments(layout, row, LANGS), load_moments(src, row, LANGS)):
        assert np.array_equal(got, want)
    assert np.array_equal(load_residual(layout, row, LANGS)[0], load_residual(src, row, LANGS)[0])
    assert read_manifest(layout).format_version == 2 and verify(out) == []
    with pytest.raises(na.MissingStatisticsError):
        load_moments(layout, read_model(layout, "old"), LANGS[:2])


def test_merged_moments_equal_the_moments_of_all_tokens():
    """Per-group (tokens, mean, population variance) merged = the moments of the concatenated samples."""
    rng = np.random.default_rng()
    groups = [rng.normal(rng.normal(0, 3), rng.uniform(0.1, 2), (int(rng.integers(1, 50)), 3, 4)) for _ in range(5)]
    tokens, mean, var = merge_moments(np.array([len(g) for g in groups]), np.stack([g.mean(0) for g in groups]),
                                      np.stack([g.var(0) for g in groups]))
    every = np.concatenate(groups)
    assert tokens == len(every)
    np.testing.assert_allclose(mean, every.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var, every.var(0), rtol=1e-10)


def test_compacted_atlas_keeps_counts_and_rounds_statistics_onto_grids(tmp_path):
    src = make_atlas(tmp_path / "full", langs=LANGS, stats=True, seed=4)
    out = tmp_path / "compact"
    spec = Precision(mean_bits=3, var_bits=4, residual_bits=2)
    assert compact_atlas(src, out, {"toy": spec}) == {"toy": 4}
    full, small = Layout(str(src)), Layout(str(out))
    row = read_model(full, "toy")
    for a, b in zip(load_counts(full, row, LANGS), load_counts(small, row, LANGS)):
        assert np.array_equal(a, b)
    mean, var, _ = load_moments(full, row, LANGS)
    cmean, cvar, _ = load_moments(small, row, LANGS)
    step = layer_steps(mean, 3)[:, None]
    assert np.all(np.abs(cmean - mean) <= step / 2) and np.array_equal(np.round(cmean / step) * step, cmean)
    assert np.all(np.abs(cvar - var) <= var * 2.0**-4) and np.any(cvar != var)
    assert verify(out) == [] and na.open(out).neurons("toy").to_arrow().equals(na.open(src).neurons("toy").to_arrow())
    size = sum(p.stat().st_size for p in out.rglob("activations.parquet"))
    assert size < sum(p.stat().st_size for p in src.rglob("activations.parquet")) / 2
    compact_atlas(src, tmp_path / "residual-only", {"toy": Precision(moments=False)})
    assert not any((tmp_path / "residual-only").rglob("activations.parquet"))


def _rewrite_stats(path, change):
    """Rewrite a statistics file with ``change(table)`` applied, its metadata kept (the footer fingerprint goes)."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"neuron_atlas"])
    write_parquet(change(table.replace_schema_metadata(None)), path, meta)


@pytest.mark.parametrize("fault", ["wider and narrower rows", "a duplicated row"])
def test_residual_rows_that_do_not_fit_the_model_are_refused_on_the_query_path(tmp_path, fault):
    root = make_atlas(tmp_path / "a", langs=LANGS, stats=True, seed=5)
    path = root / "residual" / "model=toy" / "lang=tgl_Latn" / "residual.parquet"

    def change(table):
        rows = table.to_pylist()
        if fault == "a duplicated row":
            rows = rows[:1] + rows
        else:
            rows[0]["mean"] = rows[0]["mean"] + [0.5]
            rows[1]["mean"] = rows[1]["mean"][:-1]
        return pa.Table.from_pylist(rows, schema=table.schema)

    _rewrite_stats(path, change)
    atlas = na.open(root)
    with pytest.raises(na.AtlasFormatError, match="floats|two rows for layer"):
        atlas.steering_vector("toy", "tl", layer=1 if fault != "a duplicated row" else 0)
    with pytest.raises(na.AtlasFormatError, match="floats|two rows for layer"):
        atlas.steering_vector("toy", "tl")


def test_statistics_over_other_tokens_than_the_counts_are_refused_on_the_query_path(tmp_path):
    root = make_atlas(tmp_path / "a", langs=LANGS, stats=True, seed=6)
    for kind in ("activations", "residual"):
        path = root / kind / "model=toy" / f"lang={LANGS[1]}" / f"{kind}.parquet"
        _rewrite_stats(path, lambda t: t.set_column(t.column_names.index("tokens"), "tokens",
                                                    pa.array([10**9] * t.num_rows, pa.int64())))
    atlas = na.open(root)
    for call in (lambda: atlas.neurons("toy", lang=LANGS[0], method="t", size=3),
                 lambda: atlas.activation_means("toy", LANGS[1]),
                 lambda: atlas.steering_vector("toy", LANGS[0], layer=1)):
        with pytest.raises(na.AtlasFormatError, match="statistics over 1000000000 tokens"):
            call()


def test_recompressed_atlas_holds_the_same_rows_in_fewer_bytes(tmp_path):
    from neuron_atlas.maintenance.compact import recompress_atlas

    root = make_atlas(tmp_path / "a", langs=LANGS, stats=True, seed=8)
    shutil.copytree(root, tmp_path / "before")
    before, after = recompress_atlas(root)
    assert 0 < after <= before
    assert verify(root) == []
    for path in sorted((tmp_path / "before").rglob("*.parquet")):
        old, new = pq.read_table(path), pq.read_table(root / path.relative_to(tmp_path / "before"))
        assert new.equals(old) and pq.read_metadata(root / path.relative_to(tmp_path / "before")).num_row_groups == \
            pq.read_metadata(path).num_row_groups
    assert na.open(root).neurons("toy", lang=LANGS[0], method="t", size=3).to_arrow().equals(
        na.open(tmp_path / "before").neurons("toy", lang=LANGS[0], method="t", size=3).to_arrow())
