"""Sets asked with size=/method= work unchanged in the torch helpers: subnetwork fine-tuning, its random baseline,
deactivation and steering take the NeuronSet as it is."""
import numpy as np
import torch
from tiny_models import H, L, V, W, tiny

import neuron_atlas as na
from neuron_atlas.finetune import random_subnetwork, subnetwork
from neuron_atlas.interventions.hooks import deactivate, steer
from neuron_atlas.masks import neuron_mask
from neuron_atlas.testing import make_atlas


def test_sized_sets_drive_the_torch_helpers(tmp_path):
    make_atlas(tmp_path, n_layers=L, ffn_width=W, langs=["eng_Latn", "tgl_Latn", "ind_Latn"], tokens=500, seed=7)
    atlas = na.open(tmp_path)
    for kw in ({"size": 10}, {"size": 10, "method": "ovr"}):
        s = atlas.neurons("toy", lang=["en", "tl"], **kw)
        tl = neuron_mask(s, lang="tl")
        assert len(tl) == s.sizes()["tgl_Latn"] > 0
        sub = subnetwork(tiny(), s, lang="tl")  # gate and up rows, down columns: 3 · |S| · H deltas
        assert sub.num_trainable_parameters() == 3 * len(tl) * H
        assert random_subnetwork(tiny(), s, lang="tl", seed=1).num_trainable_parameters() == 3 * len(tl) * H
        model = tiny()
        with deactivate(model, s, lang="tl") as hooks:
            assert len(hooks.mask) == len(tl)
        ids = np.random.default_rng(0).integers(0, V, size=40).tolist()
        with steer(model, s, to="tl", source="en", text=ids) as hooks:
            assert len(hooks.mask) == len(tl.union(neuron_mask(s, lang="en")))
            model(input_ids=torch.tensor([ids[:8]]))
