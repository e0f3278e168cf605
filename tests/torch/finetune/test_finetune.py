"""Subnetwork fine-tuning against an independent dense reference: the same model with every weight trainable.

Gradients of the deltas must equal the dense gradient restricted to the subnetwork's rows/columns; training
must leave every other weight bit-identical; merging must not change outputs; files must refuse the wrong
model or neuron set without touching anything.
"""
import copy

import numpy as np
import pytest

import torch
import transformers
from tiny_models import H, L, V, W, tiny

from neuron_atlas.errors import AtlasError, AtlasFormatError
from neuron_atlas.finetune import (
    DeltaMismatchError,
    SubnetworkConfig,
    ffn_only,
    get_subnetwork_model,
    load_subnetwork,
    lora,
    random_subnetwork,
    subnetwork,
)
from neuron_atlas.finetune.layer import NeuronDelta
from neuron_atlas.masks import MaskError, NeuronMask
from neuron_atlas.modeling.ffn import find_ffns


def random_mask(seed=0, p=0.15, width=W):
    dense = np.random.default_rng(seed).random((L, width)) < p
    dense[1] = False
    return NeuronMask.from_dense(dense)


def batch(seed=1, b=2, t=8):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


def dense_weight(module):
    """A projection's weight as [out, in] (Conv1D stores [in, out])."""
    return module.weight.T if type(module).__name__ == "Conv1D" else module.weight


def subnetwork_slice(ffn, proj, idx, tensor):
    """Rows (gate/up; fused: [gate; up] rows) or columns (down) of an [out, in] tensor owned by neurons ``idx``."""
    if proj == "down":
        return tensor[:, idx]
    if ffn.kind == "fused_gated":
        idx = np.concatenate([idx, idx + ffn.width])
    return tensor[idx]


ARCHS = ["llama", "gemma3", "phi3", "gpt2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_trainable_parameters_are_exactly_the_subnetwork(arch):
    model = tiny(arch)
    mask = random_mask()
    sub = get_subnetwork_model(model, SubnetworkConfig(mask))
    per_neuron = {"llama": 3, "gemma3": 3, "phi3": 3, "gpt2": 2}[arch]  # gate+up+down, or fc_in+fc_out
    assert sub.num_trainable_parameters() == per_neuron * H * len(mask)
    assert all(isinstance(p, torch.nn.Parameter) for p in sub.trainable_parameters())
    assert {id(p) for p in sub.trainable_parameters()} == {id(d.weight) for d in sub.deltas.values()}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("start", ["zero", "trained"])
def test_gradients_equal_masked_dense_gradients(arch, start):
    """Delta gradients == dense gradients of the (merged) weights on the subnetwork's rows/columns, ≤ 1e-5 rel."""
    model = tiny(arch)
    reference = copy.deepcopy(model).requires_grad_(True)
    mask = random_mask(seed=3)
    sub = subnetwork(model, mask)
    if start == "trained":  # deltas away from zero: the reference carries base + delta, written by hand
        with torch.no_grad():
            for ffn in find_ffns(reference):
                for proj in ("gate", "up", "down"):
                    key = f"layers.{ffn.layer}.{proj}"
                    if key not in sub.deltas:
                        continue
                    delta = sub.deltas[key].weight
                    delta.normal_(0, 0.05, generator=torch.Generator().manual_seed(delta.numel()))
                    w = dense_weight(getattr(ffn, proj))  # a view: writes go to the weight
                    idx = torch.from_numpy(mask.indices[ffn.layer].copy())
                    if proj == "down":
                        w[:, idx] += delta
                    else:
                        w[torch.cat([idx, idx + W]) if ffn.kind == "fused_gated" else idx] += delta
    x = batch()
    sub.model(x, labels=x).loss.backward()
    reference(x, labels=x).loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if "neuron_delta" not in n)  # no dense grads
    for ffn, ref_ffn in zip(find_ffns(model), find_ffns(reference)):
        idx = mask.indices[ffn.layer]
        for proj in ("gate", "up", "down"):
            module = getattr(ffn, proj)
            if module is None:
                continue
            ref_grad = _grad_as_out_in(getattr(ref_ffn, proj))
            if not idx.size:
                assert not hasattr(module, "neuron_delta")
                continue
            got = module.neuron_delta.weight.grad
            want = subnetwork_slice(ffn, proj, idx, ref_grad)
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())


def _grad_as_out_in(module):
    grad = module.weight.grad
    return grad.T if type(module).__name__ == "Conv1D" else grad


@pytest.mark.parametrize("arch", ["llama", "phi3", "gpt2"])
def test_training_touches_only_the_subnetwork_and_merge_keeps_outputs(arch):
    model = tiny(arch)
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask = random_mask(seed=4)
    sub = subnetwork(model, mask)
    opt = torch.optim.AdamW(sub.trainable_parameters(), lr=1e-2)
    for step in range(3):
        x = batch(seed=step)
        sub.model(x, labels=x).loss.backward()
        opt.step()
        opt.zero_grad()
    for name, p in model.named_parameters():
        if "neuron_delta" not in name:
            assert torch.equal(p, original[name]), name  # frozen base: bit-identical while training
    x = batch(seed=9)
    with torch.no_grad():
        unmerged = sub.model(x).logits
    merged_model = sub.merge_and_unload()
    assert not any(isinstance(m, NeuronDelta) for m in merged_model.modules())
    with torch.no_grad():
        merged = merged_model(x).logits
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
    owned = {}
    for ffn, wm in zip(find_ffns(model), mask.weight_masks(model)):
        for proj, w in wm.items():
            owned[id(getattr(ffn, proj).weight)] = torch.from_numpy(w.dense())
    for name, p in merged_model.named_parameters():
        assert p.requires_grad  # restored
        keep = ~owned[id(p)] if id(p) in owned else torch.ones_like(p, dtype=torch.bool)
        assert torch.equal(p[keep], original[name][keep]), name  # bit-identical outside the subnetwork
        if id(p) in owned and owned[id(p)].any():
            assert not torch.equal(p[owned[id(p)]], original[name][owned[id(p)]])


def test_trainer_runs_and_trains_only_deltas(tmp_path):
    model = tiny()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sub = subnetwork(model, random_mask(seed=5))
    data = [{"input_ids": batch(seed=i, b=1)[0], "labels": batch(seed=i, b=1)[0]} for i in range(8)]
    args = transformers.TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=2,
                                          learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True,
                                          logging_strategy="no")
    transformers.Trainer(model=sub.model, args=args, train_dataset=data).train()
    assert all(d.weight.abs().sum() > 0 for d in sub.deltas.values())
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if "neuron_delta" not in n)


@pytest.mark.parametrize("delta_dtype", [None, "float32"])
def test_bfloat16(delta_dtype):
    model = tiny(dtype=torch.bfloat16)
    sub = subnetwork(model, random_mask(seed=6), dtype=delta_dtype)
    want = torch.float32 if delta_dtype else torch.bfloat16
    assert all(d.weight.dtype == want for d in sub.deltas.values())
    x = batch()
    loss = sub.model(x, labels=x).loss
    loss.backward()
    assert loss.dtype == torch.bfloat16 or loss.dtype == torch.float32
    assert all(d.weight.grad is not None and d.weight.grad.dtype == want for d in sub.deltas.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gradients_match_dense():
    model = tiny().cuda()
    mask = random_mask(seed=3)
    reference = copy.deepcopy(model)
    sub = subnetwork(model, mask)
    x = batch().cuda()
    sub.model(x, labels=x).loss.backward()
    reference(x, labels=x).loss.backward()
    for ffn, ref in zip(find_ffns(model), find_ffns(reference)):
        if mask.indices[ffn.layer].size:
            want = ref.up.weight.grad[torch.from_numpy(mask.indices[ffn.layer]).cuda()]
            torch.testing.assert_close(ffn.up.neuron_delta.weight.grad, want, rtol=1e-4, atol=1e-6)


def trained_subnetwork(model, mask, seed=0):
    sub = subnetwork(model, mask)
    with torch.no_grad():
        for i, d in enumerate(sub.deltas.values()):
            d.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(seed + i))
    return sub


def test_save_and_load_the_delta_only(tmp_path):
    model = tiny()
    mask = random_mask(seed=7)
    sub = trained_subnetwork(model, mask)
    path = tmp_path / "delta.safetensors"
    sub.save(path)
    assert path.stat().st_size < 4 * sub.num_trainable_parameters() + 4096  # the deltas, not the model
    x = batch()
    with torch.no_grad():
        want = sub.model(x).logits
    fresh = load_subnetwork(tiny(), path)  # same weights (same seed), neuron set read from the file
    assert fresh.mask == mask
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(x).logits, want, rtol=0, atol=0)
    again = subnetwork(tiny(), mask)
    again.load(path)
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(again.deltas.values(), sub.deltas.values()))
    assert NeuronMask.load(path) == mask  # a delta file is also a mask file


def test_loading_a_delta_for_another_model_or_set_is_refused_without_writes(tmp_path):
    path = tmp_path / "delta.safetensors"
    mask = random_mask(seed=8)
    trained_subnetwork(tiny(), mask).save(path)
    other_set = subnetwork(tiny(), random_mask(seed=9))
    snapshot = [d.weight.clone() for d in other_set.deltas.values()]
    with pytest.raises(DeltaMismatchError, match="another neuron set"):
        other_set.load(path)
    assert all(torch.equal(a, d.weight) for a, d in zip(snapshot, other_set.deltas.values()))
    other_weights = subnetwork(tiny(seed=1), mask)
    with pytest.raises(DeltaMismatchError, match="another model: weights"):
        other_weights.load(path)
    assert all(d.weight.abs().sum() == 0 for d in other_weights.deltas.values())
    with pytest.raises(DeltaMismatchError, match="another model: architecture 'LlamaForCausalLM'"):
        load_subnetwork(tiny("gemma3"), path)
    wider = tiny(width=64)
    with pytest.raises(DeltaMismatchError, match="width 48 there vs 64 here"):
        load_subnetwork(wider, path)
    assert not any(isinstance(m, NeuronDelta) for m in wider.modules())  # nothing left behind
    partial = subnetwork(tiny(), mask, projections=("gate", "up"))
    with pytest.raises(DeltaMismatchError, match="shapes differ"):
        partial.load(path)
    mask.save(tmp_path / "mask.safetensors")
    with pytest.raises(AtlasFormatError, match="not a subnetwork delta"):
        load_subnetwork(tiny(), tmp_path / "mask.safetensors")


def test_unload_restores_the_model():
    model = tiny()
    model.lm_head.requires_grad_(False)
    x = batch()
    with torch.no_grad():
        before = model(x).logits
    sub = trained_subnetwork(model, random_mask())
    plain = sub.unload()
    assert plain is model and not any(isinstance(m, NeuronDelta) for m in model.modules())
    assert all(not f.up._forward_hooks for f in find_ffns(model))
    assert not model.lm_head.weight.requires_grad and model.model.embed_tokens.weight.requires_grad
    with torch.no_grad():
        assert torch.equal(model(x).logits, before)


def test_projection_subset_and_errors():
    model = tiny()
    mask = random_mask()
    sub = subnetwork(model, mask, projections=("down",))
    assert sub.num_trainable_parameters() == H * len(mask)
    with pytest.raises(AtlasError, match="already carries a subnetwork"):
        subnetwork(model, mask)
    sub.unload()
    with pytest.raises(MaskError, match="empty subnetwork"):
        subnetwork(model, NeuronMask([[], [], []], W))
    with pytest.raises(MaskError, match="4 layers but the model has 3"):
        subnetwork(model, NeuronMask([[1]] * 4, W))
    with pytest.raises(MaskError, match="select no weights"):
        subnetwork(tiny("gpt2"), mask, projections=("gate",))
    with pytest.raises(ValueError, match="projections must be"):
        SubnetworkConfig(mask, projections=("q_proj",))
    with pytest.raises(AtlasError, match="no nn.ModuleList of decoder layers"):
        subnetwork(torch.nn.Sequential(torch.nn.Linear(4, 4)), mask)
    assert all(p.requires_grad for p in model.parameters())  # failed calls froze nothing


def test_random_baseline_has_the_same_size():
    mask = random_mask(seed=10)
    per_layer = random_subnetwork(tiny(), mask, seed=1)
    assert np.array_equal(per_layer.mask.counts(), mask.counts()) and per_layer.mask != mask
    overall = random_subnetwork(tiny(), mask, per_layer=False, seed=1)
    assert len(overall.mask) == len(mask)
    assert per_layer.num_trainable_parameters() == overall.num_trainable_parameters() == 3 * H * len(mask)


def test_ffn_only_baseline(tmp_path):
    model = tiny()
    ffn = ffn_only(model)
    assert ffn.num_trainable_parameters() == L * 3 * H * W
    x = batch()
    ffn.model(x, labels=x).loss.backward()
    assert model.model.embed_tokens.weight.grad is None
    with torch.no_grad():
        find_ffns(model)[0].down.weight.add_(1.0)
    ffn.save(tmp_path / "ffn.safetensors")
    fresh = ffn_only(tiny())
    fresh.load(tmp_path / "ffn.safetensors")
    assert torch.equal(find_ffns(fresh.model)[0].down.weight, find_ffns(model)[0].down.weight)
    with pytest.raises(DeltaMismatchError, match="another model"):
        ffn_only(tiny(seed=2)).load(tmp_path / "ffn.safetensors")
    assert ffn.merge_and_unload() is model


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_lora_baseline(tmp_path, arch):
    pytest.importorskip("peft")
    model = tiny(arch)
    adapter = lora(model, r=4)
    per_layer = (2 * 4 * (H + W) + 4 * (W + H)) if arch == "llama" else 2 * 4 * (H + W)
    assert adapter.num_trainable_parameters() == L * per_layer
    x = batch()
    adapter.model(x, labels=x).loss.backward()
    with torch.no_grad():
        for p in adapter.trainable_parameters():
            p.add_(0.01)
        want = adapter.model(x).logits
    adapter.save(tmp_path / "lora")
    fresh = lora(tiny(arch), r=4)
    fresh.load(tmp_path / "lora")
    with torch.no_grad():
        torch.testing.assert_close(fresh.model(x).logits, want)
        merged = fresh.merge_and_unload()
        torch.testing.assert_close(merged(x).logits, want, rtol=1e-5, atol=1e-5)
