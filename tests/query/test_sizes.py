"""Per-language sizes (size=), one-vs-rest (method='ovr'), reach columns, coverage, panels and notices,
through the Atlas API, against the dense references in reference_lape.py on random atlases."""
import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuron_atlas as na
from neuron_atlas.errors import InvalidParameterError
from neuron_atlas.languages.tags import resolve
from neuron_atlas.masks import neuron_mask
from neuron_atlas.languages.panels import panel
from neuron_atlas.format.reader import load_counts
from neuron_atlas.testing import make_atlas
from reference_lape import reference_above_bar, reference_sized_sets, reference_ovr_sets

from toy_langs import LANGS

ALL = sorted(LANGS)


def _dense(atlas, model, langs):
    row = atlas.model(model)
    fired, tokens = load_counts(atlas.layout, row, langs)
    return fired.T.reshape(row.n_layers, row.ffn_width, len(langs)), tokens


def _rows(s, lang):
    t = s.table.filter(pc.equal(s.table.column("lang"), lang))
    return t.sort_by([("layer", "ascending"), ("neuron", "ascending")])


def _pairs(s, lang):
    t = _rows(s, lang)
    return list(zip(t.column("layer").to_pylist(), t.column("neuron").to_pylist()))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), size=st.integers(1, 60), n_langs=st.integers(2, 6), method=st.sampled_from(["lape", "ovr"]))
def test_size_and_ovr_equal_reference(tmp_path_factory, seed, size, n_langs, method):
    root = make_atlas(tmp_path_factory.mktemp("b"), n_layers=3, ffn_width=24, langs=LANGS[:n_langs], tokens=200, seed=seed)
    atlas = na.open(root)
    langs = sorted(LANGS[:n_langs])
    s = atlas.neurons("toy", size=size, method=method)
    dense = _dense(atlas, "toy", langs)
    ref = reference_sized_sets(*dense, size, 0.95, 0.95) if method == "lape" else reference_ovr_sets(*dense, size)
    for k, lang in enumerate(langs):
        want, qualifying = ref[k]
        assert _pairs(s, lang) == sorted(want)
        assert s.sizes()[lang] == min(size, qualifying)
        assert (lang in s.notices) == (qualifying < size)
        if method == "ovr":  # rank is the position by score
            t = _rows(s, lang).sort_by("rank")
            assert list(zip(t.column("layer").to_pylist(), t.column("neuron").to_pylist())) == want


def test_size_as_share_and_subset(toy_atlas):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy", lang=["tl", "en"], size="2%")  # 2% of 4·96 = 8
    ref = reference_sized_sets(*_dense(atlas, "toy", ALL), 8, 0.95, 0.95)
    for lang in ("tgl_Latn", "eng_Latn"):
        assert _pairs(s, lang) == sorted(ref[ALL.index(lang)][0])
    assert s.params["size"] == 8 and s.params["method"] == "lape"


@pytest.mark.parametrize("kw", [{}, {"size": 20}, {"size": 20, "method": "ovr"}, {"among": ["tl", "id", "en"]}])
def test_reach_columns_list_languages_above_bar(toy_atlas, kw):
    atlas = na.open(toy_atlas)
    pool = sorted(resolve(x, ALL) for x in kw["among"]) if "among" in kw else ALL
    s = atlas.neurons("toy", lang="tl", **({} if "size" in kw else {"top": "5%"}), **kw)
    t = s.table
    neurons = list(zip(t.column("layer").to_pylist(), t.column("neuron").to_pylist()))
    _, per = reference_above_bar(*_dense(atlas, "toy", pool), neurons, 0.95)
    dense_p = _dense(atlas, "toy", pool)[0] / np.maximum(_dense(atlas, "toy", pool)[1], 1)
    for (layer, neuron), n, tops in zip(neurons, t.column("n_langs").to_pylist(), t.column("top_langs").to_pylist()):
        above = per[(layer, neuron)]
        assert n == len(above)
        by_p = sorted(above, key=lambda k: -dense_p[layer, neuron, k])[:5]
        assert sorted(tops.split(",") if tops else []) == sorted(pool[k] for k in by_p)


@pytest.mark.parametrize("kw", [{}, {"size": 15}, {"size": 15, "method": "ovr"}, {"among": ["tl", "id", "en", "fr"]}])
def test_coverage_lists_exactly_languages_above_bar(toy_atlas, kw):
    atlas = na.open(toy_atlas)
    pool = [resolve(x, ALL) for x in kw["among"]] if "among" in kw else ALL
    top = {} if "size" in kw else {"top": "5%"}
    s = atlas.neurons("toy", lang="tl", **top, **kw)
    cov = atlas.coverage("toy", "tl", **top, **kw)
    neurons = list(zip(s.table.column("layer").to_pylist(), s.table.column("neuron").to_pylist()))
    langs, per = reference_above_bar(*_dense(atlas, "toy", pool), neurons, 0.95)
    expected = {pool[k]: sum(k in ks for ks in per.values()) for k in langs if pool[k] != "tgl_Latn"}
    assert dict(zip(cov.column("lang").to_pylist(), cov.column("n_neurons").to_pylist())) == expected
    assert cov.column("n_neurons").to_pylist() == sorted(expected.values(), reverse=True)


def test_among_panel_equals_its_languages(tmp_path):
    seed12 = [na.languages.tags.parse(code).tag for code in panel("seed-12")]
    root = make_atlas(tmp_path, n_layers=3, ffn_width=40, langs=seed12 + ["eng_Latn", "fra_Latn"], tokens=300, seed=4)
    atlas = na.open(root)
    by_name = atlas.neurons("toy", among="seed-12", top="5%")
    by_list = atlas.neurons("toy", among=panel("seed-12"), top="5%")
    assert len(seed12) == 12 and sorted(by_name.langs) == sorted(seed12)
    assert by_name.table.equals(by_list.table)
    assert by_name.params["panel"] == "seed-12"
    sized = atlas.neurons("toy", among="seed-12", size=10, method="ovr")
    assert sized.table.equals(atlas.neurons("toy", among=seed12, size=10, method="ovr").table)


def test_panel_missing_languages_noticed_and_unknown_panel(toy_atlas):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy", among="tang-7", top="5%")  # toy has en, zh, fr, id of tang-7
    assert sorted(s.langs) == ["cmn_Hans", "eng_Latn", "fra_Latn", "ind_Latn"]
    assert "es, vi, ja not in" in s.notices["among"]
    with pytest.raises(InvalidParameterError, match="tang-7"):
        atlas.neurons("toy", among="tang7")
    assert "seed-12" in atlas.panels().column("panel").to_pylist()


def test_tiny_sets_get_a_notice(toy_atlas):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy", top="1%")  # 4 neurons kept over 9 languages: every set is tiny
    tiny = [lang for lang, n in s.sizes().items() if n < 10]
    assert sorted(s.notices) == sorted(tiny) and tiny
    assert all("size=" in s.notices[lang] and "method='ovr'" in s.notices[lang] for lang in tiny)
    assert not atlas.neurons("toy", lang="tl", size=5).notices


def test_bad_method_and_size(toy_atlas):
    atlas = na.open(toy_atlas)
    with pytest.raises(InvalidParameterError, match="method"):
        atlas.neurons("toy", method="entropy")
    with pytest.raises(InvalidParameterError, match="size="):
        atlas.neurons("toy", method="ovr")
    with pytest.raises(InvalidParameterError, match="size"):
        atlas.neurons("toy", size=0)
    with pytest.raises(InvalidParameterError, match="not both"):  # top would be silently ignored
        atlas.neurons("toy", lang="tl", size=5, top="2%")


def test_masks_carry_size_and_method(toy_atlas):
    atlas = na.open(toy_atlas)
    s = atlas.neurons("toy", lang="tl", size=12, method="ovr")
    mask = neuron_mask(s)
    assert len(mask) == 12 and mask.params["method"] == "ovr" and mask.params["size"] == 12
    assert np.array_equal(mask.dense(), s.mask())
