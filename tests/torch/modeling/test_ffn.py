"""find_ffns on tiny random-weight models of several architectures: right modules, kind, width and activation."""
import pytest

import torch
from tiny_models import H, L, W, tiny

from neuron_atlas.errors import AtlasError
from neuron_atlas.modeling.ffn import find_ffns, linear_shape


EXPECTED = {  # kind, up-module name, down-module name
    "llama": ("gated", "gate_proj", "up_proj", "down_proj"),
    "mistral": ("gated", "gate_proj", "up_proj", "down_proj"),
    "qwen2": ("gated", "gate_proj", "up_proj", "down_proj"),
    "qwen3": ("gated", "gate_proj", "up_proj", "down_proj"),
    "gemma": ("gated", "gate_proj", "up_proj", "down_proj"),
    "gemma3": ("gated", "gate_proj", "up_proj", "down_proj"),
    "phi3": ("fused_gated", None, "gate_up_proj", "down_proj"),
    "gpt2": ("plain", None, "c_fc", "c_proj"),
    "gpt_neox": ("plain", None, "dense_h_to_4h", "dense_4h_to_h"),
    "bloom": ("plain", None, "dense_h_to_4h", "dense_4h_to_h"),
    "opt": ("plain", None, "fc1", "fc2"),
}


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_finds_every_layer_ffn(arch):
    model = tiny(arch)
    ffns = find_ffns(model)
    kind, gate, up, down = EXPECTED[arch]
    names = {id(m): n.rsplit(".", 1)[-1] for n, m in model.named_modules()}
    width = 4 * H if arch == "bloom" else W
    assert [f.layer for f in ffns] == list(range(L))
    for f in ffns:
        assert (f.kind, f.width, f.hidden) == (kind, width, H)
        assert (names[id(f.gate)] if f.gate is not None else None, names[id(f.up)], names[id(f.down)]) == (gate, up, down)
        assert linear_shape(f.down) == (width, H)


@pytest.mark.parametrize("arch", ["llama", "gemma3", "phi3", "gpt2", "gpt_neox"])
def test_ffn_recomputed_by_hand_equals_the_mlp(arch):
    """down(act(gate x) * up x) (or down(act(fc_in x))) reproduces the MLP's own output on fresh input."""
    model = tiny(arch)
    x = torch.randn(2, 5, H)
    for f in find_ffns(model):
        with torch.no_grad():
            if f.kind == "gated":
                mine = f.down(f.act(f.gate(x)) * f.up(x))
            elif f.kind == "fused_gated":
                g, u = f.up(x).chunk(2, dim=-1)
                mine = f.down(f.act(g) * u)
            else:
                mine = f.down(f.act(f.up(x)))
            theirs = f.module(x)
        torch.testing.assert_close(mine, theirs)


def test_gate_and_up_order_is_checked_not_guessed():
    """Renaming the projections (Mixtral-style w1/w3 swapped) still finds the gate by recomputation."""
    model = tiny("llama")
    for layer in model.model.layers:
        mlp = layer.mlp
        mlp.w_a, mlp.w_b = mlp.up_proj, mlp.gate_proj  # names carry no hint; 'w_a' is really up
        del mlp.gate_proj, mlp.up_proj
        mlp.forward = lambda x, mlp=mlp: mlp.down_proj(mlp.act_fn(mlp.w_b(x)) * mlp.w_a(x))
    for f in find_ffns(model):
        assert f.gate is f.module.w_b and f.up is f.module.w_a


def test_unrecognised_model_names_the_modules_found():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(H, H)

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block() for _ in range(2)])

    with pytest.raises(AtlasError, match=r"blocks\.0\.proj Linear\(32, 32\)"):
        find_ffns(Odd())
