"""The calls README shows for the format-v2 statistics, on the embedded atlas (skipped while it is still v1)."""
import numpy as np
import pytest

import neuron_atlas as na
from neuron_atlas.atlas import EMBEDDED

V2 = all((EMBEDDED / kind / "model=gemma-3-270m").is_dir() for kind in ("activations", "residual"))


@pytest.mark.skipif(not V2, reason="the embedded atlas is still format v1 (counts only) until it is rebuilt as v2")
def test_readme_calls_on_the_embedded_atlas():
    atlas = na.open()
    s = atlas.neurons("gemma-3-270m", lang="tl", method="mean_diff", size="0.5%")
    assert len(s) == round(18 * 2048 * 0.005) and s.langs == ["tgl_Latn"]
    assert (np.diff(s.to_pandas().sort_values("rank")["score"].to_numpy()) <= 0).all()
    t = atlas.neurons("gemma-3-270m", lang="tl", method="t", size="0.5%")
    assert len(t) == len(s)
    v = atlas.steering_vector("gemma-3-270m", "tl", layer=12)
    assert v.shape == (640,) and v.dtype == np.float32 and np.isfinite(v).all() and np.abs(v).max() > 0
    assert atlas.activation_means("gemma-3-270m", "tl").shape == (18, 2048)
