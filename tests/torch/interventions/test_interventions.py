"""Interventions against an independent reference: the same edit written into a copy's down-projection weights.

Setting neuron j's activation to c equals zeroing column j of down and adding c·W[:, j] to its bias; adding
o equals adding o·W[:, j] to the bias. The reference copies carry those weights, with no hooks at all.
"""
import copy

import numpy as np
import pytest

import torch
from tiny_models import L, V, W, tiny

from neuron_atlas.errors import AtlasError
from neuron_atlas.interventions.hooks import add_offset, deactivate
from neuron_atlas.masks import MaskError, NeuronMask
from neuron_atlas.modeling.ffn import find_ffns


def random_mask(seed=0, p=0.2):
    rng = np.random.default_rng(seed)
    dense = rng.random((L, W)) < p
    dense[1] = False  # one untouched layer
    return NeuronMask.from_dense(dense)


def edited_copy(model, mask, values, op):
    """A copy whose down projections are plain nn.Linear(width, hidden, bias) with the edit folded in."""
    ref = copy.deepcopy(model)
    for ffn in find_ffns(ref):
        down = ffn.down
        weight = down.weight.detach().float()
        weight = weight.T if type(down).__name__ == "Conv1D" else weight  # -> [hidden, width]
        bias = down.bias.detach().float() if down.bias is not None else torch.zeros(weight.shape[0])
        idx = torch.from_numpy(mask.indices[ffn.layer].copy())
        vals = values[ffn.layer, idx]
        bias = bias + weight[:, idx] @ vals
        if op == "set":
            weight = weight.clone()
            weight[:, idx] = 0
        new = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=True).to(down.weight.dtype)
        with torch.no_grad():
            new.weight.copy_(weight)
            new.bias.copy_(bias)
        name = next(n for n, m in ffn.module.named_children() if m is down)
        setattr(ffn.module, name, new)
    return ref


ARCHS = ["llama", "gemma3", "phi3", "gpt2", "opt"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("op", ["zero", "constant", "per_neuron", "offset"])
def test_matches_weight_edited_reference(arch, op):
    model = tiny(arch)
    mask = random_mask()
    x = torch.randint(0, V, (2, 7), generator=torch.Generator().manual_seed(1))
    values = {"zero": torch.zeros(L, W), "constant": torch.full((L, W), 0.7),
              "per_neuron": torch.randn(L, W, generator=torch.Generator().manual_seed(2)),
              "offset": torch.randn(L, W, generator=torch.Generator().manual_seed(3))}[op]
    ref = edited_copy(model, mask, values, "add" if op == "offset" else "set")
    with torch.no_grad():
        original = model(x).logits
        expected = ref(x).logits
        if op == "zero":
            hooks = deactivate(model, mask)
        elif op == "constant":
            hooks = deactivate(model, mask, 0.7)
        elif op == "per_neuron":
            hooks = deactivate(model, mask, values.numpy())
        else:
            hooks = add_offset(model, mask, {i: values[i, mask.indices[i]] for i in mask.layers()})
        with hooks:
            got = model(x).logits
        after = model(x).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, original, atol=1e-4)
    assert torch.equal(after, original)  # removal is clean
    assert all(not f.down._forward_pre_hooks for f in find_ffns(model))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_generate(arch):
    model = tiny(arch)
    mask = random_mask(seed=4, p=0.5)
    ref = edited_copy(model, mask, torch.zeros(L, W), "set")
    prompt = torch.tensor([[1, 2, 3, 4]])
    kwargs = {"max_new_tokens": 12, "do_sample": False, "pad_token_id": 0}
    plain = model.generate(prompt, **kwargs)
    with deactivate(model, mask):
        got = model.generate(prompt, **kwargs)
    assert torch.equal(got, ref.generate(prompt, **kwargs))
    assert torch.equal(model.generate(prompt, **kwargs), plain)


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_backward_through_an_intervention(arch):
    """With autograd on, the edit is out of place (OPT's ReLU saves its output, so in place would break backward)."""
    model = tiny(arch)  # eval mode (no dropout) but autograd on
    mask = random_mask(seed=5)
    ref = edited_copy(model, mask, torch.full((L, W), 0.3), "set")
    x = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(6))
    with deactivate(model, mask, 0.3):
        loss = model(x, labels=x).loss
    loss.backward()
    ref_loss = ref(x, labels=x).loss
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss)
    got = model.get_input_embeddings().weight.grad
    torch.testing.assert_close(got, ref.get_input_embeddings().weight.grad, rtol=1e-4, atol=1e-6)


def test_bfloat16():
    model = tiny("llama", dtype=torch.bfloat16)
    mask = random_mask(seed=7)
    ref = edited_copy(model, mask, torch.zeros(L, W), "set")
    x = torch.randint(0, V, (1, 5))
    with torch.no_grad(), deactivate(model, mask):
        got = model(x).logits
    torch.testing.assert_close(got, ref(x).logits.detach(), rtol=2e-2, atol=2e-2)


def test_neuron_sources_and_languages():
    model = tiny("llama")
    pairs = [(0, 3), (2, 40)]
    with deactivate(model, pairs) as hooks:
        assert hooks.mask == NeuronMask([[3], [], [40]], W) and hooks.active
    assert not hooks.active
    with deactivate(model, {"eng": {0: [1]}, "fra": {2: [2]}}, lang="fr") as hooks:
        assert hooks.mask == NeuronMask([[], [], [2]], W)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda():
    model = tiny("llama").cuda()
    mask = random_mask()
    ref = edited_copy(model, mask, torch.zeros(L, W), "set").cuda()
    x = torch.randint(0, V, (2, 7)).cuda()
    with torch.no_grad(), deactivate(model, mask):
        torch.testing.assert_close(model(x).logits, ref(x).logits, rtol=1e-4, atol=1e-4)


def test_errors():
    model = tiny("llama")
    with pytest.raises(MaskError, match="4 layers but the model has 3"):
        deactivate(model, NeuronMask([[1]] * 4, W))
    with pytest.raises(MaskError, match="neurons per layer but the model's FFN width is \\[48\\]"):
        deactivate(model, NeuronMask([[1]] * 3, 64))
    with pytest.raises(MaskError, match="empty"):
        deactivate(model, NeuronMask([[], [], []], W))
    with pytest.raises(MaskError, match="out of range"):
        deactivate(model, [(0, 48)])
    with pytest.raises(MaskError, match="per-neuron values must be"):
        deactivate(model, [(0, 1)], np.zeros(5))
    with pytest.raises(MaskError, match="no entry for layer 2"):
        add_offset(model, [(0, 1), (2, 3)], {0: [1.0]})
    with pytest.raises(AtlasError, match="no nn.ModuleList of decoder layers"):
        deactivate(torch.nn.Sequential(torch.nn.Linear(4, 4)), [(0, 1)])
    assert all(not f.down._forward_pre_hooks for f in find_ffns(model))  # failed calls leave no hooks


def test_an_intervention_acts_only_when_enabled_or_inside_with():
    """Creating one changes nothing (TransformerLens' `with model.hooks(...)`, PEFT's enable/disable): the model is
    edited inside `with`, or between enable() and disable(), and exactly as before otherwise."""
    model = tiny("llama")
    mask = random_mask(seed=5, p=0.5)
    x = torch.randint(0, V, (1, 6), generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        plain = model(x).logits
        hooks = deactivate(model, mask)
        assert not hooks.active and torch.equal(model(x).logits, plain)
        with hooks:
            edited = model(x).logits
        assert not torch.allclose(edited, plain, atol=1e-4)
        assert hooks.enable() is hooks and hooks.active
        hooks.enable()  # idempotent: one hook per layer, not two
        torch.testing.assert_close(model(x).logits, edited)
        hooks.disable()
        hooks.disable()
        assert not hooks.active and torch.equal(model(x).logits, plain)
        assert "inactive" in repr(hooks)
