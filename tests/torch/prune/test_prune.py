"""Wanda / translation-calibrated pruning against dense references on tiny random-weight models."""
from __future__ import annotations

import numpy as np
import pytest

import torch
import transformers

from neuron_atlas.errors import AtlasError, InvalidParameterError
from neuron_atlas.languages.tags import parse_pair
from neuron_atlas.prune import calibration as cal
from neuron_atlas.prune.calibration import CalibrationSet
from neuron_atlas.prune.stats import input_norms, prunable_linears
from neuron_atlas.prune.wanda import (
    Masks, magnitude, magnitude_masks, monolingual, sequential_wanda_masks, translation_calibrated, wanda_masks,
)

VOCAB = 97


def tiny_model(kind: str, seed: int = 0):
    """A 2-3 block random-weight causal LM built from a config (Llama, or Gemma 3 with sliding-window layers)."""
    torch.manual_seed(seed)
    if kind == "llama":
        cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2)
        model = transformers.LlamaForCausalLM(cfg)
    else:
        cfg = transformers.Gemma3TextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                            num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=1,
                                            head_dim=8, sliding_window=4)
        model = transformers.Gemma3ForCausalLM(cfg)
    with torch.no_grad():  # spread the weights so that scores are far from ties
        for p in model.parameters():
            p.normal_(0.0, 0.3 if p.ndim > 1 else 1.0)
    return model.eval()


def random_set(seed: int, n: int = 7, padding_side: str = "right") -> CalibrationSet:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(3, VOCAB, rng.integers(3, 20)).tolist() for _ in range(n)]
    return CalibrationSet(seqs, pad_id=0, kind="random", padding_side=padding_side)


def dense_inputs(model, calib: CalibrationSet) -> dict[str, np.ndarray]:
    """Reference: every linear layer's input on every token, stored densely, each sample run alone without padding."""
    stored: dict[str, list[np.ndarray]] = {}
    modules = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".layers." in name}
    handles = [m.register_forward_hook(lambda mod, a, o, name=name: stored.setdefault(name, []).append(
        a[0].reshape(-1, a[0].shape[-1]).double().numpy())) for name, m in modules.items()]
    with torch.no_grad():
        for seq in calib.sequences:
            model.model(input_ids=torch.tensor([seq]))
    for h in handles:
        h.remove()
    return {name: np.concatenate(parts) for name, parts in stored.items()}


def reference_row_mask(scores: np.ndarray, sparsity: float) -> np.ndarray:
    mask = np.zeros(scores.shape, dtype=bool)
    k = int(scores.shape[1] * sparsity)
    for r in range(scores.shape[0]):
        mask[r, np.argsort(scores[r], kind="stable")[:k]] = True
    return mask


@pytest.mark.parametrize("kind", ["llama", "gemma3"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_norms_equal_dense_reference(kind, side):
    model, calib = tiny_model(kind), random_set(1, padding_side=side)
    norms = input_norms(model, calib, batch_size=3)
    ref = dense_inputs(model, calib)
    assert set(norms.sumsq) == set(ref) == set(prunable_linears(model))
    assert norms.tokens == sum(len(s) for s in calib.sequences) == next(iter(ref.values())).shape[0]
    for name, x in ref.items():
        np.testing.assert_allclose(norms.norm(name).numpy(), np.sqrt((x ** 2).sum(0)), rtol=1e-5, atol=1e-6)


def test_padding_excluded_padded_equals_unpadded():
    model, calib = tiny_model("gemma3"), random_set(2, n=6)
    assert len({len(s) for s in calib.sequences}) > 1  # the batches really are padded
    padded, alone = input_norms(model, calib, batch_size=6), input_norms(model, calib, batch_size=1)
    for name in padded.sumsq:
        np.testing.assert_allclose(padded.sumsq[name].numpy(), alone.sumsq[name].numpy(), rtol=1e-5)
    assert padded.tokens == alone.tokens


def test_hooks_removed_after_collection():
    model = tiny_model("llama")
    input_norms(model, random_set(3), batch_size=2)
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_prunable_linears_skip_embeddings_and_head():
    model = tiny_model("gemma3")
    names = prunable_linears(model)
    assert len(names) == 3 * 7  # q, k, v, o, gate, up, down in each of 3 blocks
    assert all(name.startswith("model.layers.") for name in names)


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.77])
def test_wanda_scores_and_masks_equal_reference(sparsity):
    model, calib = tiny_model("llama", seed=4), random_set(5)
    masks = wanda_masks(model, input_norms(model, calib, batch_size=4), sparsity=sparsity)
    ref = dense_inputs(model, calib)
    modules = prunable_linears(model)
    for name, x in ref.items():
        w = modules[name].weight.detach().double().numpy()
        scores = np.abs(w) * np.sqrt((x ** 2).sum(0))[None, :]
        expected = reference_row_mask(scores, sparsity)
        np.testing.assert_array_equal(masks.masks[name].numpy(), expected, err_msg=name)
        assert (masks.masks[name].sum(1) == int(w.shape[1] * sparsity)).all()  # the exact fraction of every row
    assert masks.metadata["sparsity"] == sparsity


def test_sequential_masks_equal_blockwise_dense_reference():
    model, calib = tiny_model("llama", seed=15), random_set(16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = sequential_wanda_masks(model, calib, sparsity=0.5, batch_size=3)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # weights restored
    ref_model = tiny_model("llama", seed=15)
    modules = prunable_linears(ref_model)
    for i in range(2):  # reference: full dense passes over the model with blocks < i pruned by the reference masks
        x = dense_inputs(ref_model, calib)
        expected = {}
        for n in (n for n in modules if n.startswith(f"model.layers.{i}.")):
            w = modules[n].weight.detach().double().numpy()
            expected[n] = reference_row_mask(np.abs(w) * np.sqrt((x[n] ** 2).sum(0)), 0.5)
            np.testing.assert_array_equal(got.masks[n].numpy(), expected[n], err_msg=n)
        with torch.no_grad():
            for n, mask in expected.items():
                modules[n].weight[torch.from_numpy(mask)] = 0
    one_pass = wanda_masks(model, input_norms(model, calib), sparsity=0.5)
    assert all(torch.equal(one_pass.masks[n], got.masks[n]) for n in got.masks if ".layers.0." in n)
    assert any(not torch.equal(one_pass.masks[n], got.masks[n]) for n in got.masks if ".layers.1." in n)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_apply_zeroes_pruned_weights_and_leaves_the_rest():
    model = tiny_model("gemma3", seed=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = wanda_masks(model, input_norms(model, random_set(7)), sparsity=0.4)
    masks.apply(model)
    after = model.state_dict()
    for key, old in before.items():
        name = key.removesuffix(".weight")
        if name in masks.masks:
            m = masks.masks[name]
            assert (after[key][m] == 0).all() and torch.equal(after[key][~m], old[~m]), key
        else:  # embeddings, norms, LM head (tied or not) untouched
            assert torch.equal(after[key], old), key
    expected = sum(m.shape[0] * int(m.shape[1] * 0.4) for m in masks.masks.values())
    assert masks.sparsity() == expected / sum(m.numel() for m in masks.masks.values())


def test_apply_rejects_foreign_masks():
    model = tiny_model("llama")
    with pytest.raises(AtlasError, match="names no layer"):
        Masks({"model.layers.9.mlp.up_proj": torch.zeros(64, 32, dtype=torch.bool)}).apply(model)
    with pytest.raises(AtlasError, match="has shape"):
        Masks({"model.layers.0.mlp.up_proj": torch.zeros(32, 32, dtype=torch.bool)}).apply(model)


@pytest.mark.parametrize("pattern,n,m", [("2:4", 2, 4), ("4:8", 4, 8)])
def test_nm_masks_valid_and_lowest_in_each_group(pattern, n, m):
    model, calib = tiny_model("llama", seed=8), random_set(9)
    norms = input_norms(model, calib)
    masks = wanda_masks(model, norms, sparsity=None, pattern=pattern)
    for name, module in prunable_linears(model).items():
        mask = masks.masks[name].numpy()
        groups = mask.reshape(mask.shape[0], -1, m)
        assert (groups.sum(-1) == n).all(), name  # exactly N of every M consecutive inputs removed
        scores = (np.abs(module.weight.detach().double().numpy()) * norms.norm(name).numpy()[None, :])
        scores = scores.reshape(groups.shape)
        assert (scores.max(-1, where=groups, initial=-np.inf) <= scores.min(-1, where=~groups, initial=np.inf)).all()
    assert masks.sparsity() == n / m


def test_pattern_errors_are_explained():
    model, norms = tiny_model("llama"), None
    with pytest.raises(InvalidParameterError, match="removes 2/4"):
        wanda_masks(model, norms, sparsity=0.3, pattern="2:4")
    with pytest.raises(InvalidParameterError, match="'unstructured' or 'N:M'"):
        wanda_masks(model, norms, sparsity=0.5, pattern="4:2")
    with pytest.raises(InvalidParameterError, match=r"sparsity in \[0, 1\)"):
        magnitude_masks(model, sparsity=1.5)
    with pytest.raises(InvalidParameterError, match="divisible by 5"):
        magnitude_masks(model, sparsity=None, pattern="2:5")


@pytest.mark.parametrize("per", ["layer", "row"])
def test_magnitude_removes_exactly_the_smallest(per):
    model = tiny_model("gemma3", seed=10)
    masks = magnitude_masks(model, sparsity=0.35, per=per)
    for name, module in prunable_linears(model).items():
        w, mask = module.weight.detach().abs().numpy(), masks.masks[name].numpy()
        if per == "layer":
            assert mask.sum() == int(w.size * 0.35) and w[mask].max() <= w[~mask].min()
        else:
            np.testing.assert_array_equal(mask, reference_row_mask(w.astype(np.float64), 0.35))


def test_contrast_scale_is_rms_squared_over_contrast_rms():
    model, calib, contrast = tiny_model("llama", seed=11), random_set(12), random_set(13, n=5)
    a, b = input_norms(model, calib), input_norms(model, contrast)
    ra, rb = dense_inputs(model, calib), dense_inputs(model, contrast)
    masks = wanda_masks(model, a, sparsity=0.5, contrast=b)
    for name, module in prunable_linears(model).items():
        rms_a = np.sqrt((ra[name] ** 2).mean(0))
        rms_b = np.sqrt((rb[name] ** 2).mean(0))
        np.testing.assert_allclose(a.scale(name, b).numpy(), rms_a ** 2 / rms_b, rtol=1e-5)
        scores = np.abs(module.weight.detach().double().numpy()) * (rms_a ** 2 / rms_b)[None, :]
        np.testing.assert_array_equal(masks.masks[name].numpy(), reference_row_mask(scores, 0.5))


def test_masks_round_trip_through_safetensors(tmp_path):
    model = tiny_model("llama")
    masks = magnitude_masks(model, sparsity=0.5, pattern="2:4")
    path = tmp_path / "masks.safetensors"
    masks.save(path)
    back = Masks.load(path)
    assert back.metadata == masks.metadata and set(back.masks) == set(masks.masks)
    assert all(torch.equal(back.masks[k], masks.masks[k]) for k in masks.masks)
    assert [p.name for p in tmp_path.iterdir()] == ["masks.safetensors"]  # no temporary file left behind


# ---- calibration data -------------------------------------------------------------------------------------------

class CharTokenizer:
    """A character-level stand-in for a Hugging Face tokenizer (BOS 1, EOS 2, pad 0)."""

    eos_token, eos_token_id, pad_token_id, padding_side = "</s>", 2, 0, "right"

    def __call__(self, texts, truncation=True, max_length=512):
        ids = [[1] + [3 + ord(c) % (VOCAB - 3) for c in t] for t in texts]
        return {"input_ids": [s[:max_length] if truncation else s for s in ids]}


PARALLEL = {
    "swa_Latn": [f"sentensi ya {i} kwa Kiswahili" for i in range(9)],
    "eng_Latn": [f"sentence number {i} in English" for i in range(9)],
    "fra_Latn": [f"phrase numéro {i} en français" for i in range(9)],
}


def test_translation_prompts_follow_the_authors_format():
    prompts = cal.translation_prompts(PARALLEL["swa_Latn"], PARALLEL["eng_Latn"], "sw", "en", nsamples=5, shots=4)
    assert len(prompts) == 5
    for prompt in prompts:
        lines = prompt.split("\n")[:-1]
        assert len(lines) == 8
        for src, tgt in zip(lines[::2], lines[1::2]):
            i = int(src.split()[3])
            assert src == f"Swahili: {PARALLEL['swa_Latn'][i]}" and tgt == f"English: {PARALLEL['eng_Latn'][i]}"
        assert len({line.split()[3] for line in lines[::2]}) == 4  # no pair repeats inside a sample
    eos = cal.translation_set(CharTokenizer(), PARALLEL, ["sw-en"], nsamples=2).texts[0]
    assert eos.count("</s>") == 8 and "\n" not in eos


def test_parallel_texts_must_align():
    with pytest.raises(InvalidParameterError, match="has 3 sections and"):
        cal.parallel_texts({"swa_Latn": ["a", "b", "c"], "eng_Latn": ["a", "b"]}, "sw", "en")
    with pytest.raises(InvalidParameterError, match="not a language pair"):
        parse_pair("swahili>english")
    assert parse_pair("sr-Latn-en") == ("sr-Latn", "en")


def test_batches_pad_with_masks():
    calib = cal.tokenize(CharTokenizer(), ["ab", "abcde", "abc"], max_length=4)
    assert [len(s) for s in calib.sequences] == [3, 4, 4] and calib.tokens == 11
    (ids, mask), = list(calib.batches(3))
    assert ids.shape == (3, 4) and mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert ids[0, 3] == 0


def test_translation_calibrated_equals_wanda_on_its_set_and_baselines_share_the_interface():
    model, tok = tiny_model("llama", seed=14), CharTokenizer()
    got = translation_calibrated(model, tok, ["sw-en", ("fr", "en")], sparsity=0.3, corpus=PARALLEL,
                                 nsamples=6, max_length=64)
    calib = cal.translation_set(tok, PARALLEL, ["sw-en", "fr-en"], nsamples=6, max_length=64)
    assert len(calib) == 6 and sum(t.startswith("Swahili") for t in calib.texts) == 3
    want = wanda_masks(model, input_norms(model, calib), sparsity=0.3)
    assert all(torch.equal(got.masks[k], want.masks[k]) for k in want.masks)
    assert got.metadata["pairs"] == ["sw-en", "fr-en"] and got.metadata["calibration"] == "translation"
    contrasted = translation_calibrated(model, tok, ["sw-en"], sparsity=0.3, corpus=PARALLEL, nsamples=4,
                                        contrast="monolingual")
    assert contrasted.metadata["contrast"] == "monolingual"
    sequential = translation_calibrated(model, tok, ["sw-en"], sparsity=0.3, corpus=PARALLEL, nsamples=4,
                                        sequential=True)
    assert sequential.metadata["sequential"] and set(sequential.masks) == set(got.masks)
    for method in (monolingual, magnitude):
        masks = method(model, tok, ["sw-en"], sparsity=0.3, corpus=PARALLEL, nsamples=4)
        assert set(masks.masks) == set(got.masks) and abs(masks.sparsity() - 0.3) < 0.03
    mono = monolingual(model, tok, ["sw-en"], sparsity=0.3, corpus=PARALLEL, nsamples=4)
    assert mono.metadata["langs"] == ["sw"]
    assert any(not torch.equal(mono.masks[k], got.masks[k]) for k in got.masks)  # the calibration data matters


@pytest.mark.slow
def test_translation_calibrated_on_gemma_3_270m(tmp_path):
    from neuron_atlas.modeling.load import load_packaged
    from neuron_atlas._query.features import features
    from neuron_atlas.prune import feature_norms

    try:
        lm = load_packaged("gemma-3-270m")
    except AtlasError as exc:
        pytest.skip(str(exc))
    masks = translation_calibrated(lm.model, lm.tokenizer, ["sw-en"], sparsity=0.5, nsamples=2, max_length=64)
    assert len(masks.masks) == 18 * 7
    assert all((m.sum(1) == m.shape[1] // 2).all() for m in masks.masks.values())
    masks.save(tmp_path / "sw-en.safetensors")
    Masks.load(tmp_path / "sw-en.safetensors").apply(lm.model)
    linears = prunable_linears(lm.model)
    assert all((linears[n].weight[m] == 0).all() for n, m in masks.masks.items())
    feature_norms.build_features(lm.model, lm.tokenizer, tmp_path, "gemma-3-270m", ["sw-en"], nsamples=2, max_length=64)
    top = features(tmp_path, "gemma-3-270m", "sw-en", top=3)
    assert top.num_rows == 19 * 3 and top["pair"][0].as_py() == "swh_Latn-eng_Latn"
