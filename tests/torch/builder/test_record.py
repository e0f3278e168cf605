"""Recorder counts against an independent reference that recomputes every FFN activation by hand."""
import numpy as np
import pytest

import torch
import torch.nn.functional as F
from tiny_models import tiny

from neuron_atlas.builder.record import Recorder, sign_preserving
from neuron_atlas.modeling import tokens
from neuron_atlas.modeling.tokens import sequences, token_ids
from neuron_atlas.modeling.ffn import find_ffns
from neuron_atlas.modeling.load import load_packaged_tokenizer

TEXTS = [
    "Lahat ng tao'y isinilang na malaya at pantay-pantay sa karangalan at mga karapatan.",
    "Semua orang dilahirkan merdeka dan mempunyai martabat dan hak-hak yang sama.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
    "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "人人生而自由，在尊严和权利上一律平等。",
]
# activation of each architecture, written out independently of the model's own modules
ACTS = {
    "llama": F.silu,
    "gemma3": lambda x: F.gelu(x, approximate="tanh"),
    "phi3": F.silu,
    "gpt2": lambda x: F.gelu(x, approximate="tanh"),
    "gpt_neox": F.gelu,
}


@pytest.fixture(scope="module")
def tokenizer():
    return load_packaged_tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def seqs(tokenizer):
    ids = token_ids(tokenizer, TEXTS * 3)
    return sequences(ids, 23, bos_id=1)  # last sequence shorter: padded batches


def model_for(arch, vocab):
    model = tiny(arch, vocab_size=vocab).double()
    return model


def reference(model, arch, seqs, skip_first):
    """Fired counts from the MLP inputs of an ordinary full forward (one sequence at a time, no padding)."""
    ffns = find_ffns(model)
    inputs = {i: [] for i in range(len(ffns))}
    hooks = [f.module.register_forward_pre_hook(lambda m, a, i=i: inputs[i].append(a[0][0])) for i, f in enumerate(ffns)]
    with torch.no_grad():
        for s in seqs:
            model(torch.tensor([s]))
    for h in hooks:
        h.remove()
    fired = np.zeros((len(ffns), ffns[0].width), dtype=np.int64)
    for i, f in enumerate(ffns):
        x = torch.cat([t[int(skip_first):] for t in inputs[i]])  # [tokens, hidden]
        if arch == "gpt2":  # Conv1D: weight is [in, out]
            pre = x @ f.up.weight + f.up.bias
        else:
            weight = f.gate.weight if f.kind == "gated" else f.up.weight
            pre = x @ weight[: f.width].T + (f.up.bias if f.up.bias is not None and f.kind == "plain" else 0)
        fired[i] = (ACTS[arch](pre) > 0).sum(0).numpy()
    return fired


@pytest.mark.parametrize("arch", sorted(ACTS))
@pytest.mark.parametrize("skip_first", [True, False])
def test_counts_equal_reference(arch, skip_first, tokenizer, seqs):
    model = model_for(arch, len(tokenizer))
    counts = Recorder(model).count(seqs, batch_size=4, pad_id=0, skip_first=skip_first)
    expected = reference(model, arch, seqs, skip_first)
    assert counts.tokens == sum(len(s) - skip_first for s in seqs)
    assert counts.fired.shape == expected.shape and counts.fired.dtype == np.int64
    np.testing.assert_array_equal(counts.fired, expected)
    assert 0 < counts.fired.sum() < counts.tokens * counts.fired.size  # not trivially all or nothing


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_padding_never_counts(arch, tokenizer, seqs):
    """Each sequence alone (no padding) and all in one right-padded batch with odd pad ids give the same counts."""
    model = model_for(arch, len(tokenizer))
    recorder = Recorder(model)
    alone = [recorder.count([s], batch_size=1).fired for s in seqs]
    ragged = [s[: 5 + 3 * i] for i, s in enumerate(seqs)]
    for pad in (0, 7, len(tokenizer) - 1):
        batched = recorder.count(ragged, batch_size=len(ragged), pad_id=pad)
        single = sum(recorder.count([s], batch_size=1, pad_id=pad).fired for s in ragged)
        np.testing.assert_array_equal(batched.fired, single)
        assert batched.tokens == sum(len(s) - 1 for s in ragged)
    np.testing.assert_array_equal(sum(alone), recorder.count(seqs, batch_size=3).fired)


def test_decoder_only_never_runs_the_lm_head(tokenizer, seqs):
    model = model_for("llama", len(tokenizer))
    calls = []
    model.lm_head.register_forward_hook(lambda *a: calls.append(1))
    model.model.norm.register_forward_hook(lambda *a: calls.append(2))
    Recorder(model, stats=False).count(seqs, batch_size=2)
    assert calls == []  # the head never runs, and counting alone stops the forward after the last layer's gate


def test_out_of_memory_halves_the_batch_and_loses_nothing(tokenizer, seqs, monkeypatch):
    model = model_for("llama", len(tokenizer))
    recorder = Recorder(model)
    expected = recorder.count(seqs, batch_size=2)
    forward = Recorder._forward

    def fail_when_big(self, batch, pad_id, skip_first):
        if len(batch) > 2:
            forward(self, batch, pad_id, skip_first)  # counts a whole batch into the scratch accumulator, then fails
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(self, batch, pad_id, skip_first)

    monkeypatch.setattr(Recorder, "_forward", fail_when_big)
    messages = []
    got = recorder.count(seqs, batch_size=8, on_message=messages.append)
    np.testing.assert_array_equal(got.fired, expected.fired)
    assert got.tokens == expected.tokens and got.batch_size == 2
    assert len(messages) == 2 and "halved the batch size to 4" in messages[0]


def test_other_errors_propagate_and_hooks_are_removed(tokenizer, seqs, monkeypatch):
    model = model_for("llama", len(tokenizer))
    recorder = Recorder(model)
    monkeypatch.setattr(Recorder, "_forward", lambda *a: (_ for _ in ()).throw(ValueError("boom")))
    with pytest.raises(ValueError, match="boom"):
        recorder.count(seqs, batch_size=2)
    assert all(not f.gate._forward_hooks for f in recorder.ffns)


def test_sign_preserving_activations():
    for act in (F.silu, F.gelu, F.relu, lambda x: F.gelu(x, approximate="tanh")):
        assert sign_preserving(act, torch.float32, "cpu")
    assert not sign_preserving(torch.sigmoid, torch.float32, "cpu")
    assert not sign_preserving(lambda x: F.relu(x - 0.5), torch.float32, "cpu")


def test_non_sign_preserving_activation_is_applied(tokenizer, seqs):
    """An activation with act(x) > 0 for some x <= 0 is computed, not replaced by x > 0."""
    class ShiftedSiLU(torch.nn.Module):
        def forward(self, x):
            return F.silu(x + 0.3)

    model = model_for("llama", len(tokenizer))
    for layer in model.model.layers:
        layer.mlp.act_fn = ShiftedSiLU()
    ffns = find_ffns(model)
    counts = Recorder(model, ffns).count(seqs, batch_size=4, skip_first=False)
    expected = np.stack([
        sum(((f.gate(x) + 0.3 > 0).sum((0, 1))).numpy() for x in _mlp_inputs(model, i, seqs)) for i, f in enumerate(ffns)
    ])
    np.testing.assert_array_equal(counts.fired, expected)


def _mlp_inputs(model, layer, seqs):
    got = []
    h = model.model.layers[layer].mlp.register_forward_pre_hook(lambda m, a: got.append(a[0]))
    with torch.no_grad():
        for s in seqs:
            model(torch.tensor([s]))
    h.remove()
    return got


def test_token_budget_and_sequences(tokenizer):
    ids = token_ids(tokenizer, TEXTS, budget=40)
    assert len(ids) == 40
    assert ids == token_ids(tokenizer, TEXTS)[:40]
    seqs = sequences(list(range(10)), 4, bos_id=99)
    assert seqs == [[99, 0, 1, 2], [99, 3, 4, 5], [99, 6, 7, 8], [99, 9]]
    assert sequences(list(range(5)), 4, bos_id=None) == [[0, 1, 2, 3], [4]]
    assert tokens.bos_id(tokenizer) is None  # SmolLM2 does not start encodings with BOS


@pytest.mark.parametrize("bos", [None, 5])
def test_packing_fills_every_sequence_and_counts_like_the_dense_reference(bos, tokenizer):
    """Documents are packed into one stream cut into full sequences: no padding but in the very last one, every
    token counted once, and the batched counts equal a one-sequence-at-a-time dense recomputation."""
    rng = np.random.default_rng()
    docs = [rng.integers(6, len(tokenizer), rng.integers(1, 30)).tolist() for _ in range(rng.integers(8, 16))]
    ids = [t for d in docs for t in d]
    seq_len = int(rng.integers(5, 20))
    seqs = sequences(ids, seq_len, bos)
    assert all(len(s) == seq_len for s in seqs[:-1]) and 0 < len(seqs[-1]) <= seq_len
    assert [t for s in seqs for t in s[bos is not None:]] == ids
    model = model_for("llama", len(tokenizer))
    counts = Recorder(model).count(seqs, batch_size=int(rng.integers(2, 6)), skip_first=bos is not None)
    assert counts.tokens == len(ids)
    np.testing.assert_array_equal(counts.fired, reference(model, "llama", seqs, bos is not None))


def test_token_budget_reads_only_what_it_needs(tokenizer):
    """A stream of texts is consumed only up to the budget (plus one tokenizer group), never to its end."""
    taken = []

    def endless():
        while True:
            taken.append(1)
            yield TEXTS[len(taken) % len(TEXTS)]

    ids = token_ids(tokenizer, endless(), budget=500, group=16)
    assert len(ids) == 500 and len(taken) <= 500 // 10 + 16


def test_device_map_auto_loads_and_counts_like_a_plain_load(tokenizer, seqs, tmp_path, monkeypatch):
    """device='auto' (accelerate's device_map, for models larger than one GPU) gives the same counts."""
    import transformers

    from neuron_atlas.modeling.load import load_causal_lm

    model_for("llama", len(tokenizer)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    plain = load_causal_lm(str(tmp_path), dtype="float64")
    asked = []
    original = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **kw: asked.append(kw.get("device_map")) or original(*a, **kw))
    spread = load_causal_lm(str(tmp_path), dtype="float64", device="auto")
    assert asked == ["auto"]
    np.testing.assert_array_equal(Recorder(spread.model).count(seqs, 3).fired, Recorder(plain.model).count(seqs, 3).fired)
