"""An atlas' data is checked, not trusted: each corruption is named (file and fault), left out of SQL, found by verify."""
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuron_atlas as na
from neuron_atlas.errors import AtlasWarning
from neuron_atlas.format.layout import write_parquet
from neuron_atlas.format.verify import verify
from neuron_atlas.format.writer import AtlasWriter

from toy_langs import SMALL_LANGS

LANGS = SMALL_LANGS


def shard(root, lang="tgl_Latn", model="toy"):
    return Path(root) / "counts" / f"model={model}" / f"lang={lang}" / "counts.parquet"


def rewrite(path, **changes):
    """Rewrite a Parquet file with columns replaced (callables get the old numpy column), keeping its metadata."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"neuron_atlas")
    meta = json.loads(raw) if raw else None
    for name, value in changes.items():
        old = table.column(name).to_numpy(zero_copy_only=False)
        new = value(old.copy()) if callable(value) else value
        table = table.set_column(table.column_names.index(name), name, pa.array(new, table.schema.field(name).type))
    write_parquet(table.replace_schema_metadata(None), path, meta)


def _sql(root, query="SELECT count(*) AS n FROM counts WHERE model = 'other'"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = na.open(root).sql(query)
    return result, [str(w.message) for w in caught if issubclass(w.category, AtlasWarning)]


def _set(i, value):
    def change(a):
        a[i] = value
        return a
    return change


CORRUPTIONS = {  # name -> (how to corrupt the tgl_Latn shard of toy, what the error says)
    "fired > tokens": (lambda p: rewrite(p, fired=_set(5, 801)), "fired on 801 tokens of 800|fired counts span"),
    "negative fired": (lambda p: rewrite(p, fired=_set(7, -3)), "negative fired|fired counts span"),
    "mixed tokens": (lambda p: rewrite(p, tokens=_set(10, 900)), "mixed token counts"),
    "unsorted rows": (lambda p: pq.write_table(pq.read_table(p).take(np.random.default_rng(0).permutation(96)), p),
                      "sorted by layer, neuron"),
    "another language's data": (lambda p: shutil.copy(shard(p.parents[2].parent, "eng_Latn"), p), "holds the counts of"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:200]), "not a readable Parquet"),
    "wrong layer ids": (lambda p: rewrite(p, layer=lambda a: a + 1), "layer spans|row 0 is"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shard_corruption_is_named_and_left_out_of_sql(atlas_copy, name):
    corrupt, message = CORRUPTIONS[name]
    path = shard(atlas_copy)
    corrupt(path)
    atlas = na.open(atlas_copy)
    with pytest.raises(na.AtlasFormatError, match=message) as info:
        atlas.neurons("toy", lang="tl", among=["tl", "en"])  # reads the shard
    assert str(path) in str(info.value)
    problems = verify(atlas_copy)
    assert any(str(path) in str(p) for p in problems), problems
    counts, warned = _sql(atlas_copy, "SELECT lang, count(*) AS n FROM counts WHERE model = 'toy' GROUP BY lang")
    if name != "unsorted rows":  # SQL rows name their (layer, neuron), so order does not matter to SQL
        assert "tgl_Latn" not in counts.column("lang").to_pylist()
        assert any(str(path) in w for w in warned), warned
    assert _sql(atlas_copy)[0].column("n")[0].as_py() == 2 * 16 * 3  # other models answer as before


def test_truncated_shard_keeps_sql_working(atlas_copy):
    path = shard(atlas_copy)
    path.write_bytes(path.read_bytes()[:100])
    result, warned = _sql(atlas_copy, "SELECT 1 AS x")
    assert result.column("x")[0].as_py() == 1
    assert any(str(path) in w and "not a readable Parquet" in w for w in warned)
    assert _sql(atlas_copy, "SELECT count(*) AS n FROM ranking WHERE model = 'other'")[0].column("n")[0].as_py() == 32


def test_model_row_naming_another_model(atlas_copy):
    shutil.copy(atlas_copy / "models" / "model=other" / "model.parquet", atlas_copy / "models" / "model=toy" / "model.parquet")
    with pytest.raises(na.AtlasFormatError, match="names model 'other', but its folder is model=toy"):
        na.open(atlas_copy).neurons("toy", lang="tl")
    result, warned = _sql(atlas_copy, "SELECT DISTINCT model FROM counts ORDER BY model")
    assert result.column("model").to_pylist() == ["other"] and any("model=toy" in w for w in warned)


def test_two_model_rows(atlas_copy):
    path = atlas_copy / "models" / "model=toy" / "model.parquet"
    table = pq.read_table(path)
    pq.write_table(pa.concat_tables([table, table]), path)
    with pytest.raises(na.AtlasFormatError, match="exactly one model row, found 2"):
        na.open(atlas_copy).model("toy")
    assert _sql(atlas_copy, "SELECT count(*) AS n FROM models")[0].column("n")[0].as_py() == 1


def test_wrong_ffn_width(atlas_copy):
    rewrite(atlas_copy / "models" / "model=toy" / "model.parquet", ffn_width=[48], n_layers=[2])  # same L·d = 96
    with pytest.raises(na.AtlasFormatError, match="counts.parquet"):
        na.open(atlas_copy).neurons("toy", lang="tl", among=["tl", "en"])
    _, warned = _sql(atlas_copy)
    assert any("neuron spans 0..31, not 0..47" in w for w in warned)
    assert any("model=toy" in str(p) for p in verify(atlas_copy))


@pytest.mark.parametrize("column, change, message", [
    ("p", _set(0, 1953.0), "p spans"),
    ("rank", _set(0, 10_000), "rank spans"),
    ("neuron", _set(0, 999), "neuron spans"),
])
def test_tampered_lape_table_is_not_used(atlas_copy, pristine, column, change, message):
    path = atlas_copy / "lape" / "model=toy" / "lape.parquet"
    rewrite(path, **{column: change})
    fresh = na.open(atlas_copy).neurons("toy", top="1%")  # recomputed from the shards instead
    assert fresh.to_arrow().equals(na.open(pristine).neurons("toy").to_arrow())
    result, warned = _sql(atlas_copy, "SELECT count(*) AS n FROM lape WHERE model = 'toy'")
    assert result.column("n")[0].as_py() == 0 and any(message in w for w in warned)
    assert any(str(path) in str(p) for p in verify(atlas_copy))


def test_subtly_tampered_lape_table_is_found_by_verify(atlas_copy):
    path = atlas_copy / "lape" / "model=toy" / "lape.parquet"
    rewrite(path, neuron=lambda a: np.roll(a, 1))  # every value still in range
    assert any(str(path) in str(p) and "recomputed" in str(p) for p in verify(atlas_copy))


@pytest.mark.parametrize("version", [0, -7, '"1"', 1.5, "null"])
def test_bad_manifest_versions(atlas_copy, version):
    (atlas_copy / "atlas.json").write_text(f'{{"format": "neuron-atlas", "format_version": {version}}}')
    with pytest.raises(na.AtlasFormatError, match="atlas.json"):
        na.open(atlas_copy)


def test_stray_language_folder_is_no_language(atlas_copy):
    evil = atlas_copy / "counts" / "model=toy" / "lang=EVIL" / "counts.parquet"
    evil.parent.mkdir()
    shutil.copy(shard(atlas_copy), evil)
    atlas = na.open(atlas_copy)
    assert "EVIL" not in atlas.langs_of("toy")
    result, warned = _sql(atlas_copy, "SELECT DISTINCT lang FROM counts WHERE model = 'toy'")
    assert "EVIL" not in result.column("lang").to_pylist()
    assert any("lang=EVIL" in w and "not a canonical language tag" in w for w in warned)
    assert any("lang=EVIL" in str(p) for p in verify(atlas_copy))


def test_stale_lape_after_new_shards(atlas_copy):
    writer = AtlasWriter(atlas_copy)
    writer.add_counts("toy", "zlm_Latn", np.full((3, 32), 7), 800)  # no finalize()
    atlas = na.open(atlas_copy)
    s = atlas.neurons("toy")
    assert "zlm_Latn" in s.langs  # the API recomputes over all five shards
    result, warned = _sql(atlas_copy, "SELECT count(*) AS n FROM lape WHERE model = 'toy'")
    assert result.column("n")[0].as_py() == 0
    assert any("stale" in w and "zlm_Latn" in w for w in warned)
    assert any("stale" in str(p) for p in verify(atlas_copy))
    writer.finalize("toy")
    assert _sql(atlas_copy, "SELECT count(*) AS n FROM lape WHERE model = 'toy'")[0].column("n")[0].as_py() > 0
    assert verify(atlas_copy) == []


def test_pristine_atlas_verifies_clean(pristine):
    assert verify(pristine) == []
    assert verify(na.open()) == []  # the embedded atlas


# -- fuzz: every corruption of a shard is detected with a clear error, or harmless ---------------------------------
# Wrong values are impossible ones: a count changed within [0, tokens] looks exactly like a real count (byte flips
# that would make one are caught by the Parquet page checksums the writer adds).
_IMPOSSIBLE = {"fired": [-1, -(2**31), 801, 2**31 - 1], "tokens": [-1, 0, 799, 801, 2**40],
               "layer": [-1, 1, 2, 3, 2**15 - 1], "neuron": [-1, 31, 32, 95, 2**31 - 1]}


def _corruptions():
    return st.one_of(
        st.tuples(st.just("truncate"), st.floats(0, 0.999)),
        st.tuples(st.just("flip"), st.floats(0, 0.999), st.integers(0, 7)),
        st.sampled_from(sorted(_IMPOSSIBLE)).flatmap(
            lambda c: st.tuples(st.just("value"), st.just(c), st.integers(0, 95), st.sampled_from(_IMPOSSIBLE[c]))),
    )


def _apply(path: Path, spec) -> None:
    data = bytearray(path.read_bytes())
    if spec[0] == "truncate":
        path.write_bytes(bytes(data[: int(len(data) * spec[1])]))
    elif spec[0] == "flip":
        i = int(len(data) * spec[1])
        data[i] ^= 1 << spec[2]
        path.write_bytes(bytes(data))
    else:
        _, column, row, value = spec
        if column in ("layer", "neuron") and value == [row // 32, row % 32][column == "neuron"]:
            value = -1  # the same id is no change
        rewrite(path, **{column: _set(row, value)})


SUBSET = ["tgl_Latn", "eng_Latn", "ind_Latn"]  # not every language: neurons() recomputes, reading the shard
TOY_SQL = "SELECT lang, sum(fired) AS s, min(tokens) AS t, count(*) AS n FROM counts WHERE model = 'toy' GROUP BY lang ORDER BY lang"
OTHER_SQL = "SELECT lang, sum(fired) AS s FROM counts WHERE model = 'other' GROUP BY lang ORDER BY lang"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_corruptions())
def test_fuzz_corrupted_shard_is_detected_or_harmless(pristine, spec):
    """Whatever happens to a shard: neurons() names it or answers as before; SQL leaves it out (naming it), fails
    with one line, or answers as before; where SQL reads a flipped byte DuckDB cannot notice, verify() names it."""
    baseline = na.open(pristine).neurons("toy", among=SUBSET, top="10%").to_arrow()
    toy, other = _sql(pristine, TOY_SQL)[0], _sql(pristine, OTHER_SQL)[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "atlas"
        shutil.copytree(pristine, root)
        path = shard(root)
        _apply(path, spec)
        problems = [str(p) for p in verify(root)]
        try:
            got = na.open(root).neurons("toy", among=SUBSET, top="10%").to_arrow()
        except na.AtlasError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), exc
            assert any(str(path) in p for p in problems)  # verify finds what the read found
        else:
            assert got.equals(baseline), f"{spec}: neurons() silently answered differently"
        try:
            result, warned = _sql(root, TOY_SQL)
        except na.AtlasError as exc:
            assert "\n" not in str(exc)
        else:
            left_out = any(str(path) in w for w in warned)
            if not left_out and not result.equals(toy):
                assert any(str(path) in p for p in problems), f"{spec}: SQL silently answered differently"
        assert _sql(root, OTHER_SQL)[0].equals(other)  # SQL over the other model is untouched


def test_tag_shaped_folder_of_no_language_is_found_by_verify(atlas_copy):
    fake = atlas_copy / "counts" / "model=toy" / "lang=xyz_Latn" / "counts.parquet"
    fake.parent.mkdir()
    shutil.copy(shard(atlas_copy), fake)
    assert any("lang=xyz_Latn" in str(p) and "not the canonical tag of a known language" in str(p) for p in verify(atlas_copy))
