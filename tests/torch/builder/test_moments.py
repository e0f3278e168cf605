"""The v2 statistics of the Recorder (act(gate) mean and variance per neuron, mean hidden state per
``output_hidden_states`` point) against a dense float64 reference: an ordinary forward per sequence, no padding."""
import numpy as np
import pytest
import torch
from test_record import ACTS, TEXTS
from tiny_models import tiny

from reference_moments import merge_moments

from neuron_atlas.builder.record import Recorder
from neuron_atlas.modeling.tokens import sequences, token_ids
from neuron_atlas.modeling.ffn import find_ffns
from neuron_atlas.modeling.load import load_packaged_tokenizer


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


def test_without_the_activation_modules_output_the_act_is_recomputed_alike(tokenizer, monkeypatch):
    """The moments come from the model's own act(gate) (its activation module's output) when that module reports it,
    else from act recomputed on the gate output: both give the same statistics."""
    rng = np.random.default_rng()
    seqs = fresh_seqs(tokenizer, rng)
    model = tiny("llama", vocab_size=len(tokenizer), seed=int(rng.integers(2**31))).double()
    seen = []
    hook = Recorder._act_hook

    def counted(self, *args):
        seen.append(self._pending is not None)
        hook(self, *args)

    monkeypatch.setattr(Recorder, "_act_hook", counted)
    reported = Recorder(model).count(seqs, batch_size=3)
    assert seen and all(seen)  # every act module ran on a pending gate output
    monkeypatch.setattr(Recorder, "_act_hook", lambda self, *a: None)
    recomputed = Recorder(model).count(seqs, batch_size=3)
    for name in ("fired", "mean", "var", "residual"):
        np.testing.assert_allclose(getattr(recomputed, name), getattr(reported, name), rtol=1e-12, atol=1e-15)


@pytest.mark.slow
def test_real_smollm2_build_over_three_languages_equals_dense_reference(tmp_path):
    """smollm2-135m built on UDHR tl/ru/zh: the atlas' activations and residual files equal a float64 numpy reduction of
    an ordinary forward per sequence (gate outputs hooked, act(gate) = SiLU in numpy; ``output_hidden_states``)."""
    from neuron_atlas.builder.run import build
    from neuron_atlas.corpus import open_corpus
    from neuron_atlas.modeling.load import load_packaged
    from neuron_atlas.format.reader import load_moments, load_residual, read_model
    from neuron_atlas.format.layout import Layout

    loaded = load_packaged("smollm2-135m")
    langs = ["tgl_Latn", "rus_Cyrl", "cmn_Hans"]
    build(loaded, open_corpus("udhr"), langs, out=tmp_path, slug="smollm2-135m", tokens_per_language=96, seq_len=40,
          batch_size=2, progress=False)
    layout = Layout(str(tmp_path))
    row = read_model(layout, "smollm2-135m")
    mean, var, tokens = load_moments(layout, row, langs)
    residual, _ = load_residual(layout, row, langs)
    gates = [f.gate for f in find_ffns(loaded.model)]
    for k, lang in enumerate(langs):
        ids = token_ids(loaded.tokenizer, open_corpus("udhr").texts(lang), 96)
        pre, states = [[] for _ in gates], []
        hooks = [g.register_forward_hook(lambda m, a, out, i=i, pre=pre: pre[i].append(out[0].double().numpy()))
                 for i, g in enumerate(gates)]
        with torch.no_grad():
            for seq in sequences(ids, 40, None):  # SmolLM2 has no BOS: every token counts
                out = loaded.model.base_model(torch.tensor([seq]), output_hidden_states=True)
                states.append(np.stack([h[0].double().numpy() for h in out.hidden_states]))
        for h in hooks:
            h.remove()
        acts = np.stack([np.concatenate(p) for p in pre])
        acts = acts / (1 + np.exp(-acts))  # SiLU in float64
        assert tokens[k] == acts.shape[1] == 96
        scale = np.abs(acts).max()
        np.testing.assert_allclose(mean[k], acts.mean(1), rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_allclose(var[k], acts.var(1), rtol=1e-3, atol=1e-5 * scale**2)
        hidden = np.concatenate(states, axis=1).mean(1)
        np.testing.assert_allclose(residual[k], hidden, rtol=1e-4, atol=1e-4 * np.abs(hidden).max())
