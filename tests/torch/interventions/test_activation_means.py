"""atlas.activation_means of a tiny model built into a tmp atlas: equal to steer()'s calibration over the same tokens
(an FFN whose down projection reads act(fc_in)), and to a dense mean of act(gate) captured by hooks (gated FFNs)."""
import numpy as np
import pytest

import torch
from tiny_models import L, W, tiny

import neuron_atlas as na
from neuron_atlas.modeling.tokens import bos_id, sequences, token_ids
from neuron_atlas.builder.run import build
from neuron_atlas.corpus.base import Corpus
from neuron_atlas.interventions.hooks import mean_activations
from neuron_atlas.masks import NeuronMask
from neuron_atlas.modeling.ffn import find_ffns
from neuron_atlas.modeling.load import LoadedModel, load_packaged_tokenizer

TEXTS = {"tgl_Latn": "Ang lahat ng tao ay isinilang na malaya at pantay-pantay sa karangalan at mga karapatan.",
         "deu_Latn": "Alle Menschen sind frei und gleich an Würde und Rechten geboren."}
BUDGET, SEQ_LEN = 50, 16


class Texts(Corpus):
    name, version = "tiny", "1"

    def languages(self):
        return sorted(TEXTS)

    def _texts(self, tag):
        return iter([TEXTS[tag]] * 8)

    def _describe(self, tag):
        return {}


@pytest.fixture(scope="module")
def tokenizer():
    return load_packaged_tokenizer("gemma-3-270m")  # prepends BOS, which neither the build nor the calibration counts


def built(arch, tokenizer, out):
    model = tiny(arch, vocab_size=len(tokenizer)).double()
    build(LoadedModel(model, tokenizer, f"test/tiny-{arch}", "sha256:0"), Texts(), "all", out=out, slug="tiny",
          tokens_per_language=BUDGET, seq_len=SEQ_LEN, batch_size=2, progress=False)
    ids = token_ids(tokenizer, [TEXTS["tgl_Latn"]] * 8, BUDGET)
    return model, sequences(ids, SEQ_LEN, bos_id(tokenizer))


def test_equal_to_the_calibration_of_steer(tokenizer, tmp_path):
    model, windows = built("gpt2", tokenizer, tmp_path / "a")  # plain FFN: steer edits act(fc_in) itself
    got = na.open(tmp_path / "a").activation_means("tiny", "tl")
    calibrated = mean_activations(model, windows, NeuronMask.from_dense(np.ones((L, W), bool)), skip_first=True)
    assert got.shape == (L, W) and got.dtype == np.float32
    np.testing.assert_allclose(got, calibrated, rtol=1e-5, atol=1e-6)


def test_gated_means_are_act_of_gate(tokenizer, tmp_path):
    model, windows = built("gemma3", tokenizer, tmp_path / "b")
    got = na.open(tmp_path / "b").activation_means("tiny", "tl")
    sums, count = np.zeros((L, W)), 0
    ffns = find_ffns(model)
    captured = {}
    hooks = [f.gate.register_forward_hook(lambda m, a, out, i=f.layer: captured.__setitem__(i, out)) for f in ffns]
    with torch.no_grad():
        for window in windows:
            model(input_ids=torch.tensor([window]))
            for f in ffns:
                sums[f.layer] += f.act(captured[f.layer][0, 1:]).sum(0).numpy()
            count += len(window) - 1
    for h in hooks:
        h.remove()
    np.testing.assert_allclose(got, sums / count, rtol=1e-5, atol=1e-6)
