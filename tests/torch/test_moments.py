"""The v2 statistics of the Recorder (act(gate) mean and variance per neuron, mean hidden state per
``output_hidden_states`` point) against a dense float64 reference: an ordinary forward per sequence, no padding."""
import numpy as np
import pytest
import torch
from test_record import ACTS, TEXTS
from tiny_models import tiny

from neuron_atlas.builder.record import Recorder, sequences, token_ids
from neuron_atlas.modeling.ffn import find_ffns
from neuron_atlas.modeling.load import load_packaged_tokenizer
from neuron_atlas.moments import merge_moments


@pytest.fixture(scope="module")
def tokenizer():
    return load_packaged_tokenizer("smollm2-135m")


def fresh_seqs(tokenizer, rng, seq_len=None):
    """Random UDHR lines in a random order, cut into sequences of a random length (the last one shorter)."""
    texts = [TEXTS[i] for i in rng.integers(0, len(TEXTS), 12)]
    return sequences(token_ids(tokenizer, texts), seq_len or int(rng.integers(7, 25)), bos_id=1)


def reference(model, arch, seqs, skip_first):
    """act(gate) per layer recomputed by hand from each MLP's input, and transformers' own ``output_hidden_states``,
    one unpadded sequence at a time, reduced in float64 numpy."""
    ffns = find_ffns(model)
    inputs = {i: [] for i in range(len(ffns))}
    hooks = [f.module.register_forward_pre_hook(lambda m, a, i=i: inputs[i].append(a[0][0])) for i, f in enumerate(ffns)]
    hidden = []
    with torch.no_grad():
        for s in seqs:
            out = model(torch.tensor([s]), output_hidden_states=True)
            hidden.append(np.stack([h[0, int(skip_first):].double().numpy() for h in out.hidden_states]))
    for h in hooks:
        h.remove()
    acts = []
    for i, f in enumerate(ffns):
        x = torch.cat([t[int(skip_first):] for t in inputs[i]]).double()
        if arch == "gpt2":  # Conv1D: weight is [in, out]
            pre = x @ f.up.weight.double() + f.up.bias.double()
        else:
            weight = (f.gate.weight if f.kind == "gated" else f.up.weight).double()
            bias = f.up.bias.double() if f.up.bias is not None and f.kind == "plain" else 0
            pre = x @ weight[: f.width].T + bias
        acts.append(ACTS[arch](pre).detach().numpy())
    acts = np.stack(acts)  # [layers, tokens, width]
    states = np.concatenate(hidden, axis=1)  # [layers + 1, tokens, hidden]
    return acts.mean(1), acts.var(1), states.mean(1), acts


@pytest.mark.parametrize("arch", sorted(ACTS))
def test_moments_and_residual_means_equal_dense_reference(arch, tokenizer):
    rng = np.random.default_rng()
    seqs = fresh_seqs(tokenizer, rng)
    skip_first = bool(rng.integers(2))
    model = tiny(arch, vocab_size=len(tokenizer), seed=int(rng.integers(2**31))).double()
    got = Recorder(model).count(seqs, batch_size=int(rng.integers(2, 5)), pad_id=int(rng.integers(len(tokenizer))),
                                skip_first=skip_first)
    mean, var, residual, _ = reference(model, arch, seqs, skip_first)
    assert got.tokens == sum(len(s) - skip_first for s in seqs)
    assert got.mean.dtype == got.var.dtype == got.residual.dtype == np.float64
    assert got.residual.shape == (model.config.num_hidden_layers + 1, find_ffns(model)[0].hidden)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.var, var, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.residual, residual, rtol=1e-9, atol=1e-12)
    assert var.max() > 1e-6 and np.ptp(mean) > 1e-6  # not trivially constant


def test_float32_model_sums_stay_within_float32_tolerance(tokenizer):
    """A float32 model's per-batch float32 sums merged in float64 agree with the float64 reduction of the same acts."""
    rng = np.random.default_rng()
    seqs = fresh_seqs(tokenizer, rng, seq_len=31)
    model = tiny("llama", vocab_size=len(tokenizer), seed=int(rng.integers(2**31)))
    got = Recorder(model).count(seqs, batch_size=3)
    mean, var, residual, _ = reference(model, "llama", seqs, True)
    scale = np.sqrt(var) + np.abs(mean)
    assert np.abs(got.mean - mean).max() <= 1e-5 * scale.max()
    np.testing.assert_allclose(got.var, var, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(got.residual, residual, rtol=1e-4, atol=1e-6)


def test_halves_merge_to_the_whole(tokenizer):
    """Two halves of a language's sequences recorded apart and merged equal the whole (mergeable statistics)."""
    rng = np.random.default_rng()
    seqs = fresh_seqs(tokenizer, rng)
    model = tiny("gemma3", vocab_size=len(tokenizer), seed=int(rng.integers(2**31))).double()
    recorder = Recorder(model)
    cut = int(rng.integers(1, len(seqs)))
    whole, a, b = (recorder.count(part, batch_size=2) for part in (seqs, seqs[:cut], seqs[cut:]))
    tokens, mean, var = merge_moments(np.array([a.tokens, b.tokens]), np.stack([a.mean, b.mean]),
                                      np.stack([a.var, b.var]))
    assert tokens == whole.tokens
    np.testing.assert_allclose(mean, whole.mean, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(var, whole.var, rtol=1e-10, atol=1e-13)
    residual = (a.tokens * a.residual + b.tokens * b.residual) / whole.tokens
    np.testing.assert_allclose(residual, whole.residual, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(a.fired + b.fired, whole.fired)


def test_counting_alone_stops_at_the_last_gate_and_stats_never_run_the_head(tokenizer):
    model = tiny("llama", vocab_size=len(tokenizer))
    seqs = fresh_seqs(tokenizer, np.random.default_rng(0))
    calls = []
    model.lm_head.register_forward_hook(lambda *a: calls.append("head"))
    model.model.norm.register_forward_hook(lambda *a: calls.append("norm"))
    alone = Recorder(model, stats=False).count(seqs, batch_size=2)
    assert calls == [] and alone.mean is None and alone.residual is None
    both = Recorder(model).count(seqs, batch_size=2)
    assert "head" not in calls and "norm" in calls
    np.testing.assert_array_equal(alone.fired, both.fired)  # the statistics never change the counts
