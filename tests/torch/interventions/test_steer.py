"""Steering (CLaS-Bench's neuron method): the hooks set exactly the values asked for, and calibration means equal a
dense mean of the captured FFN activations."""
import numpy as np
import pytest

import pyarrow as pa
import torch
from tiny_models import L, V, W, tiny

from neuron_atlas.interventions.hooks import mean_activations, steer
from neuron_atlas.modeling.ffn import find_ffns
from neuron_atlas.neuronset import SCHEMA, NeuronSet

SETS = {"eng_Latn": {0: [1, 2, 3], 2: [5, 9]}, "tgl_Latn": {0: [3, 4], 1: [7, 40], 2: [9, 11]}}


def captured(model, ids):
    """The down projections' inputs (FFN activations) per layer, after any earlier hooks."""
    got = {}
    handles = [f.down.register_forward_pre_hook(lambda m, a, i=f.layer: got.__setitem__(i, a[0].detach().clone()))
               for f in find_ffns(model)]
    with torch.no_grad():
        model(input_ids=ids)
    for h in handles:
        h.remove()
    return got


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_steer_sets_exactly_the_values_asked(arch):
    model = tiny(arch)
    ids = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(1))
    values = np.random.default_rng(2).normal(size=(L, W)).astype(np.float32)
    before = captured(model, ids)
    with steer(model, SETS, to="tgl_Latn", source="eng_Latn", values=values):
        after = captured(model, ids)
    for layer in range(L):
        target = SETS["tgl_Latn"].get(layer, [])
        source = [n for n in SETS["eng_Latn"].get(layer, []) if n not in target]
        assert torch.equal(after[layer][..., target], torch.from_numpy(values[layer, target]).expand(2, 9, -1))
        assert torch.equal(after[layer][..., source], torch.zeros(2, 9, len(source)))
    untouched = [n for n in range(W) if n not in (1, 2, 3, 4)]
    assert torch.equal(after[0][..., untouched], before[0][..., untouched])  # layer 0's input is not yet edited
    assert torch.equal(captured(model, ids)[1], before[1])  # hooks gone after the block


def test_without_source_only_the_target_changes():
    model = tiny()
    ids = torch.randint(0, V, (1, 7), generator=torch.Generator().manual_seed(3))
    before = captured(model, ids)
    with steer(model, SETS, to="tl", values=0.5):
        after = captured(model, ids)
    assert torch.equal(after[0][..., [3, 4]], torch.full((1, 7, 2), 0.5))
    assert torch.equal(after[0][..., [1, 2]], before[0][..., [1, 2]])


@pytest.mark.parametrize("skip_first", [False, True])
def test_calibration_means_equal_dense_mean(skip_first):
    model = tiny("llama")
    rng = np.random.default_rng(4)
    windows = [rng.integers(0, V, size=n).tolist() for n in (6, 9, 4)]
    got = mean_activations(model, windows, SETS["tgl_Latn"], skip_first=skip_first)
    acts = [captured(model, torch.tensor([w])) for w in windows]
    start = int(skip_first)
    for layer in range(L):
        dense = torch.cat([a[layer][0, start:] for a in acts]).double().mean(0).numpy()
        idx = SETS["tgl_Latn"].get(layer, [])
        np.testing.assert_allclose(got[layer, idx], dense[idx], rtol=1e-6, atol=1e-7)
        assert not np.delete(got[layer], idx).any()
    # steer(text=ids) calibrates on the unsteered model over the same tokens and sets those means
    expected = mean_activations(model, [sum(windows, [])], SETS["tgl_Latn"])
    with steer(model, SETS, to="tgl_Latn", text=sum(windows, []), seq_len=64) as hooks:
        assert hooks.active
        after = captured(model, torch.tensor([windows[0]]))
        assert torch.equal(after[1][..., [7, 40]], torch.from_numpy(expected[1, [7, 40]]).expand(1, 6, -1))


def test_empty_source_set_switches_nothing_off():
    rows = [(layer, n) for layer, idx in SETS["tgl_Latn"].items() for n in idx]
    table = pa.table({"model": ["tiny"] * len(rows), "lang": ["tgl_Latn"] * len(rows),
                      "layer": [r[0] for r in rows], "neuron": [r[1] for r in rows]})
    table = table.append_column("p", pa.array([0.5] * len(rows), pa.float64()))
    for name in SCHEMA.names[5:]:
        table = table.append_column(name, pa.nulls(len(rows), SCHEMA.field(name).type))
    english_empty = NeuronSet(table.cast(SCHEMA), "tiny", ["eng_Latn", "tgl_Latn"], L, W)
    model = tiny()
    ids = torch.randint(0, V, (1, 5), generator=torch.Generator().manual_seed(5))
    before = captured(model, ids)
    with steer(model, english_empty, to="tgl_Latn", source="eng_Latn", values=1.5):
        after = captured(model, ids)
    assert torch.equal(after[0][..., [3, 4]], torch.full((1, 5, 2), 1.5))
    assert torch.equal(after[0][..., [1, 2]], before[0][..., [1, 2]])


def test_steer_needs_values_or_text():
    with pytest.raises(ValueError, match="values= or calibration text="):
        steer(tiny(), SETS, to="tgl_Latn")
