"""Stored rankings of the moment methods stand in for the moments: an atlas without act(gate) moments but with its
`method_ranks` table answers neurons(method=..., size<=depth) exactly as the atlas with the moments does."""
import shutil

import pyarrow as pa
import pytest

import neuron_atlas as na
from neuron_atlas.format.layout import Layout
from neuron_atlas.methods.stored import depth_of, ranked_methods, write_method_ranks
from neuron_atlas.testing import make_atlas

from toy_langs import LANGS


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(full atlas with moments, the same atlas with its moments replaced by stored rankings)."""
    base = tmp_path_factory.mktemp("ranks")
    full = make_atlas(base / "full", model="toy", n_layers=4, ffn_width=300, langs=LANGS, tokens=400, seed=11,
                      stats=True)
    slim = base / "slim"
    shutil.copytree(full, slim)
    shutil.rmtree(slim / "activations")
    assert write_method_ranks(Layout(str(full)), Layout(str(slim)), "toy") > 0
    return na.open(full), na.open(slim)


def test_every_moment_method_is_ranked():
    assert set(ranked_methods()) >= {"mean_diff", "t"} and "lape" not in ranked_methods()


@pytest.mark.parametrize("method", ["mean_diff", "t"])
@pytest.mark.parametrize("size", [1, 7, "1%"])
def test_stored_rankings_answer_as_the_moments_do(pair, method, size):
    full, slim = pair
    for lang in LANGS:
        want = full.neurons("toy", lang=lang, method=method, size=size)
        got = slim.neurons("toy", lang=lang, method=method, size=size)
        assert got.to_arrow().equals(want.to_arrow()), (method, size, lang)
        assert got.notices == want.notices
    both = slim.neurons("toy", lang=LANGS[:3], method=method, size=size).to_arrow()
    assert both.equals(full.neurons("toy", lang=LANGS[:3], method=method, size=size).to_arrow())


def test_beyond_the_stored_depth_or_among_needs_the_moments(pair):
    _, slim = pair
    depth = depth_of(4, 300)
    with pytest.raises(na.MissingStatisticsError, match="rankings of each language against all"):
        slim.neurons("toy", lang="tl", method="mean_diff", size=depth + 1)
    with pytest.raises(na.MissingStatisticsError, match="neuron-atlas build"):
        slim.neurons("toy", lang="tl", method="t", size=5, among=LANGS[:3])
    assert pa.table(slim.sql("SELECT count(*) AS n FROM method_ranks")).column("n")[0].as_py() > 0
