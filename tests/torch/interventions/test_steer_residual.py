"""steer_residual adds its vector exactly where transformers' output_hidden_states reads the residual stream: the
steered entry moves by strength · vector, the earlier ones do not, and the hook is gone after the block."""
import numpy as np
import pytest
import torch
from tiny_models import H, L, V, tiny

from neuron_atlas.errors import InvalidParameterError
from neuron_atlas.interventions.hooks import steer_residual
from neuron_atlas.modeling.residual import residual_points

ARCHS = ["llama", "gemma3", "phi3", "qwen3", "gpt2", "opt", "gpt_neox", "bloom"]


def hidden_states(model, ids):
    """output_hidden_states, with entry 0 taken as block 0 sees it: BLOOM's transformers code records that entry
    before calling block 0, so its hooks' edits of the block's input are not in what it returns."""
    block0 = residual_points(model)[0].module
    seen = []
    handle = block0.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True).hidden_states
    handle.remove()
    return (seen[0], *out[1:])


@pytest.mark.parametrize("arch", ARCHS)
def test_adds_at_the_hidden_states_points(arch):
    model = tiny(arch)
    ids = torch.randint(0, V, (2, 6), generator=torch.Generator().manual_seed(0))
    before = hidden_states(model, ids)
    assert len(residual_points(model)) == len(before) == L + 1
    vector = np.random.default_rng(1).normal(size=H).astype(np.float32)
    for layer in range(L + 1):
        with steer_residual(model, vector, layer, strength=2.5) as hook:
            assert hook.active
            after = hidden_states(model, ids)
        for j in range(layer):
            assert torch.equal(after[j], before[j])
        torch.testing.assert_close(after[layer], before[layer] + 2.5 * torch.from_numpy(vector), rtol=1e-5, atol=1e-5)
        if layer < L:  # later entries follow from the edited stream
            assert not torch.allclose(after[layer + 1], before[layer + 1], atol=1e-4)
        assert all(torch.equal(a, b) for a, b in zip(hidden_states(model, ids), before))  # removed cleanly


def test_last_layer_is_after_the_final_norm():
    model = tiny("llama")
    ids = torch.randint(0, V, (1, 5), generator=torch.Generator().manual_seed(2))
    vector = torch.ones(H)
    with torch.no_grad():
        base = model(input_ids=ids).logits
        with steer_residual(model, vector, L, strength=0.5):
            got = model(input_ids=ids).logits
    # after the norm, nothing but the LM head follows: the logits move by head(0.5 · vector)
    torch.testing.assert_close(got, base + model.lm_head(0.5 * vector), rtol=1e-5, atol=1e-5)


def test_all_layers_vector_and_generate():
    model = tiny("gpt2")
    vectors = np.random.default_rng(3).normal(size=(L + 1, H)).astype(np.float32)
    ids = torch.randint(0, V, (1, 4), generator=torch.Generator().manual_seed(4))
    before = hidden_states(model, ids)
    with steer_residual(model, vectors, 2, strength=1.0):
        after = hidden_states(model, ids)
        out = model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
    torch.testing.assert_close(after[2], before[2] + torch.from_numpy(vectors[2]), rtol=1e-5, atol=1e-5)
    assert out.shape == (1, 7)


@pytest.mark.parametrize("layer, vector", [(L + 1, np.zeros(H)), (-1, np.zeros(H)), (1, np.zeros(H + 1)),
                                           (1, np.zeros((L, H)))])
def test_bad_input_says_what_is_right(layer, vector):
    with pytest.raises(InvalidParameterError, match="layer must|shape"):
        steer_residual(tiny("llama"), vector, layer)
