"""The calls README shows for the format-v2 statistics, on the embedded atlas: each runs where the embedded atlas
holds the statistic it needs, and is refused with the rebuild command where it does not."""
import numpy as np
import pytest

import neuron_atlas as na
from neuron_atlas.atlas import EMBEDDED
from neuron_atlas.errors import MissingStatisticsError

HAS = {kind: (EMBEDDED / kind / "model=gemma-3-270m").is_dir() for kind in ("activations", "residual")}


def test_steering_vector_on_the_embedded_atlas():
    atlas = na.open()
    if not HAS["residual"]:
        with pytest.raises(MissingStatisticsError, match="neuron-atlas build --model gemma-3-270m"):
            atlas.steering_vector("gemma-3-270m", "tl", layer=12)
        return
    v = atlas.steering_vector("gemma-3-270m", "tl", layer=12)
    assert v.shape == (640,) and v.dtype == np.float32 and np.isfinite(v).all() and np.abs(v).max() > 0
    every = atlas.steering_vector("gemma-3-270m", "tl")
    assert every.shape == (19, 640) and np.array_equal(every[12], v)


def test_moment_methods_on_the_embedded_atlas():
    atlas = na.open()
    if not HAS["activations"]:  # the stored rankings answer the sets; the moments themselves need a rebuild
        with pytest.raises(MissingStatisticsError, match="gemma-3-270m-atlas-v2") as info:
            atlas.activation_means("gemma-3-270m", "tl")
        held = "counts and residual-stream means" if HAS["residual"] else "counts only"
        assert held in str(info.value) and ("size budget" in str(info.value)) == HAS["residual"]
    s = atlas.neurons("gemma-3-270m", lang="tl", method="mean_diff", size="0.5%")
    assert len(s) == round(18 * 2048 * 0.005) and s.langs == ["tgl_Latn"]
    assert (np.diff(s.to_pandas().sort_values("rank")["score"].to_numpy()) <= 0).all()
    t = atlas.neurons("gemma-3-270m", lang="tl", method="t", size="0.5%")
    assert len(t) == len(s)
    if HAS["activations"]:
        assert atlas.activation_means("gemma-3-270m", "tl").shape == (18, 2048)


RANKED = [m for m in ("gemma-3-270m", "smollm2-135m") if (EMBEDDED / "lape" / f"model={m}" / "method_ranks.parquet").exists()]


@pytest.mark.parametrize("model", RANKED)
def test_stored_rankings_answer_the_moment_methods_out_of_the_box(model):
    """The embedded atlas holds no act(gate) moments but the moment methods' rankings of every language (to 1 % of
    L·d, from the float64 rebuild; scripts/embedded_atlas/add_method_ranks.py checked them against it for every
    language): size= up to that depth answers, a larger size or among= says what it needs and what it costs."""
    atlas = na.open()
    row = atlas.model(model)
    depth = round(row.n_layers * row.ffn_width * 0.01)
    for method in ("mean_diff", "t"):
        for size in ("0.5%", "1%"):
            s = atlas.neurons(model, lang="tl", method=method, size=size)
            scores = s.to_pandas().sort_values("rank")["score"].to_numpy()
            assert len(s) == round(row.n_layers * row.ffn_width * float(size[:-1]) / 100)
            assert (np.diff(scores) <= 0).all() and s.params["method"] == method
        with pytest.raises(MissingStatisticsError, match=f"to size={depth}.*min on one CPU core") as info:
            atlas.neurons(model, lang="tl", method=method, size=depth + 1)
        assert "<" not in str(info.value)  # no placeholder: the real command
