"""The Atlas query API: neuron sets equal the dense reference on both the stored and the recompute path."""
import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuron_atlas as na
from neuron_atlas.format.reader import load_counts
from neuron_atlas.format.schema import ModelRow
from neuron_atlas.format.writer import AtlasWriter, write_imported_sets
from reference_lape import reference_sets

from toy_langs import LANGS

ALL = sorted(LANGS)


def _reference_for(atlas, model, langs, top, filter_rate=0.95, bar_ratio=0.95):
    row = atlas.model(model)
    fired, tokens = load_counts(atlas.layout, row, langs)
    dense = fired.T.reshape(row.n_layers, row.ffn_width, len(langs))
    sets = reference_sets(dense, tokens, top, filter_rate, bar_ratio)
    return {langs[k]: v for k, v in sets.items()}


def _pairs(s, lang):
    t = s.to_arrow()
    t = t.filter(pa.compute.equal(t.column("lang"), lang))
    return list(zip(t.column("layer").to_pylist(), t.column("neuron").to_pylist()))


@pytest.mark.parametrize("top", ["1%", "3%", 0.05, "20%", "100%"])
def test_neurons_match_reference(toy_atlas, top):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy", top=top)
    ref = _reference_for(atlas, "toy", ALL, na.stats.lape.parse_top(top))
    assert s.langs == ALL
    for lang in ALL:
        assert _pairs(s, lang) == ref[lang]


@pytest.mark.parametrize("kw", [{"filter_rate": 0.9}, {"bar_ratio": 0.8}, {"filter_rate": 0.99, "bar_ratio": 0.5}])
def test_other_rates_match_reference(toy_atlas, kw):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy", top="2%", **kw)
    ref = _reference_for(atlas, "toy", ALL, 0.02, **kw)
    assert {lang: _pairs(s, lang) for lang in ALL} == ref


def test_among_recomputes_over_subset(toy_atlas):
    atlas = na.open(toy_atlas)
    subset = ["tgl_Latn", "ind_Latn", "zlm_Latn", "eng_Latn"]
    s = atlas.neurons("toy", lang="tl", among=["tl", "id", "zlm", "en"], top="5%")  # pool keeps this order
    assert _pairs(s, "tgl_Latn") == _reference_for(atlas, "toy", subset, 0.05)["tgl_Latn"]
    assert s.to_arrow().schema.metadata  # parameters travel with the result


def test_zero_token_language_gets_empty_set(toy_atlas):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy-b", top="10%")
    assert s.sizes()["ind_Latn"] == 0  # 0 tokens: p = 0 everywhere
    langs = sorted(LANGS[:5])
    ref = _reference_for(atlas, "toy-b", langs, 0.10)
    assert {lang: _pairs(s, lang) for lang in langs} == ref


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), n_langs=st.integers(2, 5), top=st.sampled_from(["1%", "4%", "30%"]))
def test_random_atlases_stored_path(tmp_path_factory, seed, n_langs, top):
    rng = np.random.default_rng(seed)
    root = tmp_path_factory.mktemp("rand")
    writer = AtlasWriter(root)
    writer.add_model(ModelRow(model="m", hf_repo="x", architecture="X", n_layers=3, ffn_width=20, hidden_size=4,
                              activation="silu", corpus="c", created=dt.datetime.now(dt.timezone.utc)))
    langs = LANGS[:n_langs]
    tokens = rng.integers(0, 30, size=n_langs)
    for k, lang in enumerate(langs):
        writer.add_counts("m", lang, rng.integers(0, tokens[k] + 1, size=(3, 20)), int(tokens[k]))
    writer.finalize("m")
    atlas = na.open(root)
    s = atlas.neurons("m", top=top)
    ref = _reference_for(atlas, "m", sorted(langs), na.stats.lape.parse_top(top))
    assert {lang: _pairs(s, lang) for lang in sorted(langs)} == ref


def test_stale_derived_tables_fall_back_to_recompute(tmp_path):
    from neuron_atlas.testing import make_atlas

    make_atlas(tmp_path, langs=LANGS[:4], seed=3)
    make_atlas(tmp_path, langs=LANGS[:5], seed=3, finalize=False)  # a language added, derived not refreshed
    atlas = na.open(tmp_path)
    s = atlas.neurons("toy", top="5%")
    langs = sorted(LANGS[:5])
    assert {lang: _pairs(s, lang) for lang in langs} == _reference_for(atlas, "toy", langs, 0.05)


def test_overlap_is_jaccard_of_sets(toy_atlas):
    atlas = na.open(toy_atlas)
    langs = ["tl", "id", "zlm", "en", "srp_Cyrl"]
    m = atlas.overlap("toy", langs, top="5%")
    s = atlas.neurons("toy", lang=langs, top="5%")
    sets = {lang: set(_pairs(s, lang)) for lang in s.langs}
    for a in s.langs:
        for b in s.langs:
            union = sets[a] | sets[b]
            expect = len(sets[a] & sets[b]) / len(union) if union else None
            got = m.column(b)[s.langs.index(a)].as_py()
            assert (got is None or np.isnan(got)) if expect is None else got == pytest.approx(expect)


def test_by_layer_and_indices(toy_atlas):
    s = na.open(toy_atlas).neurons("toy", lang=["tl", "fr"], top="5%")
    by = s.by_layer()
    assert by.num_rows == 2 * 4 and sum(by.column("n_neurons").to_pylist()) == len(s)
    idx = s.indices()
    assert sorted((layer, int(n)) for layer, arr in enumerate(idx["tgl_Latn"]) for n in arr) == _pairs(s, "tgl_Latn")
    assert s.mask().sum() == len(set(_pairs(s, "tgl_Latn")) | set(_pairs(s, "fra_Latn")))
    assert list(s.to_pandas().columns) == ["model", "lang", "layer", "neuron", "p", "entropy", "rank", "score", "n_langs",
                                           "top_langs"]


def test_language_spellings_resolve(toy_atlas):
    atlas = na.open(toy_atlas)
    for spelling in ["tl", "tgl", "TGL_latn", "Tagalog", "fil", "tgl-Latn"]:
        assert atlas.neurons("toy", lang=spelling).langs == ["tgl_Latn"]
    assert atlas.neurons("toy", lang="zh-Hant").langs == ["cmn_Hant"]
    assert atlas.neurons("toy", lang="sr-Latn").langs == ["srp_Latn"]
    assert atlas.neurons("toy", lang="sr").langs == ["srp_Cyrl"]


def test_sql_views_and_parameters(toy_atlas):
    atlas = na.open(toy_atlas)
    got = atlas.sql("SELECT lang, count(*) AS n FROM lape WHERE model = ? GROUP BY lang ORDER BY lang", ["toy"])
    sizes = atlas.neurons("toy").sizes()
    assert dict(zip(got.column("lang").to_pylist(), got.column("n").to_pylist())) == {k: v for k, v in sizes.items() if v}
    row = atlas.sql("SELECT fired, tokens, p FROM counts WHERE model=$m AND lang='tgl_Latn' AND layer=1 AND neuron=5",
                    {"m": "toy"}).to_pylist()[0]
    assert row["p"] == row["fired"] / row["tokens"]
    assert atlas.sql("SELECT count(*) AS n FROM models").column("n")[0].as_py() == 2


@pytest.mark.parametrize("query", ["DROP VIEW lape", "COPY (SELECT 1) TO 'x.csv'", "CREATE TABLE t AS SELECT 1",
                                   "SELECT 1; SELECT 2", "ATTACH 'x.db'"])
def test_sql_is_read_only(toy_atlas, query):
    with pytest.raises(na.AtlasError):
        na.open(toy_atlas).sql(query)


def test_sql_cannot_read_outside_the_atlas(toy_atlas):
    with pytest.raises(na.AtlasError, match="(?i)permission|disabled"):
        na.open(toy_atlas).sql("SELECT * FROM read_csv('/etc/hostname')")


def test_unknown_model_and_language_suggest(toy_atlas):
    atlas = na.open(toy_atlas)
    with pytest.raises(na.UnknownModelError, match="Did you mean: toy"):
        atlas.neurons("tyo")
    with pytest.raises(na.UnknownLanguageError, match="ind_Latn"):
        atlas.neurons("toy", lang="Indonesain")  # typo: not a language
    with pytest.raises(na.UnknownLanguageError, match="not among the 9 languages.*cmn_Hans"):
        atlas.neurons("toy", lang="yue")  # Cantonese: a language the model lacks; Chinese is closest
    with pytest.raises(na.UnknownLanguageError, match="tgl_Latn"):
        atlas.neurons("toy-b", lang="srp_Cyrl")


@pytest.mark.parametrize("top", ["0%", "150%", -1, float("nan")])
def test_bad_top(toy_atlas, top):
    with pytest.raises(na.InvalidParameterError):
        na.open(toy_atlas).neurons("toy", top=top)


def test_not_an_atlas(tmp_path):
    with pytest.raises(na.AtlasNotFoundError, match="not an atlas"):
        na.open(tmp_path)
    with pytest.raises(na.AtlasNotFoundError, match="does not exist"):
        na.open(tmp_path / "nope")


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_corrupt_parquet_named(toy_atlas, tmp_path):
    root = _copy(toy_atlas, tmp_path / "a")
    shard = root / "counts" / "model=toy" / "lang=tgl_Latn" / "counts.parquet"
    shard.write_bytes(b"PAR1 garbage")
    with pytest.raises(na.AtlasFormatError, match="lang=tgl_Latn.*not a readable Parquet"):
        na.open(root).neurons("toy", lang="tl", among=["tl", "en"])


def test_wrong_schema_named(toy_atlas, tmp_path):
    root = _copy(toy_atlas, tmp_path / "a")
    path = root / "models" / "model=toy" / "model.parquet"
    pq.write_table(pa.table({"model": ["toy"]}), path)
    with pytest.raises(na.AtlasFormatError, match="model.parquet: column 'hf_repo' is missing"):
        na.open(root).model("toy")


def test_opening_and_querying_never_write(toy_atlas):
    def snapshot():
        return {p: os.stat(os.path.join(d, p)).st_mtime_ns for d, _, fs in os.walk(toy_atlas) for p in fs}

    before = snapshot()
    atlas = na.open(toy_atlas)
    atlas.neurons("toy", lang="tl", among=["tl", "en"])
    atlas.overlap("toy")
    atlas.sql("SELECT count(*) FROM counts")
    assert snapshot() == before


def test_imported_sets_answer_only_their_rate(tmp_path):
    row = ModelRow(model="imp", hf_repo="org/m", architecture="LlamaForCausalLM", n_layers=2, ffn_width=8,
                   hidden_size=4, activation="silu", corpus="wiki", source="import:test",
                   created=dt.datetime.now(dt.timezone.utc))
    write_imported_sets(tmp_path, row, {"en": [np.array([1, 3]), np.array([])], "sw": [np.array([]), np.array([7])]},
                        top_rate=0.01, source="test")
    atlas = na.open(tmp_path)
    s = atlas.neurons("imp", lang="sw")
    assert _pairs(s, "swh_Latn") == [(1, 7)] or _pairs(s, s.langs[0]) == [(1, 7)]
    with pytest.raises(na.InvalidParameterError, match="imported"):
        atlas.neurons("imp", lang="en", top="5%")


def test_core_import_does_not_load_torch(toy_atlas):
    code = f"import neuron_atlas as na, sys; na.open({str(toy_atlas)!r}).neurons('toy', lang='tl'); " \
           "print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_lang_and_among_arguments(toy_atlas):
    atlas = na.open(toy_atlas)
    split = atlas.neurons("toy", lang="tl", among="tl,id,en")  # a string is split on commas, not characters
    assert split.to_arrow().equals(atlas.neurons("toy", lang="tl", among=["tl", "id", "en"]).to_arrow())
    assert atlas.neurons("toy", lang="tl,id").langs == ["tgl_Latn", "ind_Latn"]
    for bad, match in [([], "at least one"), (5, "got 5 \\(int\\)"), ("", "at least one"), ([5], "list of tags")]:
        with pytest.raises(na.InvalidParameterError, match=match):
            atlas.neurons("toy", lang=bad)
        with pytest.raises(na.InvalidParameterError, match=match):
            atlas.neurons("toy", among=bad)


def test_hub_options_on_a_local_folder_are_named(toy_atlas):
    with pytest.raises(na.InvalidParameterError, match="mode= apply to Hub atlases"):
        na.open(toy_atlas, mode="snapshot")
    with pytest.raises(na.InvalidParameterError, match="one language\\s+cannot be compared"):
        na.open(toy_atlas).neurons("toy", lang="tl", among="tl")
