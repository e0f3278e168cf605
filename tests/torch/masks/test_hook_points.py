"""Masks and steering vectors where other tools hook them. TransformerLens and nnsight are not installed here, so
the round trip is the documented plain-torch recipe: pre-hooks on the modules `module_inputs` names, zeroing the
indices it gives, change the model exactly as `deactivate` does; the TransformerLens names follow its layout."""
import numpy as np
import pytest
import torch
from tiny_models import L, V, W, tiny

from neuron_atlas.interventions import deactivate
from neuron_atlas.masks import NeuronMask, module_inputs, residual_hook, transformer_lens_hooks


def _mask(seed=3):
    return NeuronMask.from_dense(np.random.default_rng(seed).random((L, W)) < 0.2)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_the_plain_torch_recipe_equals_deactivate(arch):
    model, mask = tiny(arch), _mask()
    x = torch.randint(0, V, (2, 5), generator=torch.Generator().manual_seed(0))

    def zero(idx):
        def hook(module, args):
            act = args[0].clone()
            act[..., torch.from_numpy(idx)] = 0
            return (act, *args[1:])
        return hook

    with torch.no_grad():
        with deactivate(model, mask):
            want = model(x).logits
        handles = [model.get_submodule(name).register_forward_pre_hook(zero(idx))
                   for name, idx in module_inputs(mask, model).items()]
        got = model(x).logits
        for h in handles:
            h.remove()
    torch.testing.assert_close(got, want)
    assert len(module_inputs(mask, model)) == len(mask.layers())


def test_transformer_lens_names():
    mask = _mask()
    hooks = transformer_lens_hooks(mask)
    assert list(hooks) == [f"blocks.{layer}.mlp.hook_post" for layer in mask.layers()]
    assert all(np.array_equal(hooks[f"blocks.{layer}.mlp.hook_post"], mask.indices[layer]) for layer in mask.layers())
    assert residual_hook(0, 4) == "blocks.0.hook_resid_pre" and residual_hook(4, 4) == "ln_final.hook_normalized"
    with pytest.raises(ValueError, match="0..4"):
        residual_hook(5, 4)
