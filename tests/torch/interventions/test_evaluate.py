"""Perplexity against a per-window float64 numpy reference, and the deactivation matrix against perplexities
of weight-edited model copies (down-projection columns of the deactivated neurons set to zero)."""
import copy
import math

import numpy as np
import pyarrow as pa
import pytest

import torch
from tiny_models import L, V, W, tiny

from neuron_atlas.interventions.evaluate import (
    DeactivationMatrix,
    deactivation_matrix,
    perplexities,
    perplexity,
    token_windows,
)
from neuron_atlas.modeling.tokens import bos_id, sequences
from neuron_atlas.errors import InvalidParameterError
from neuron_atlas.masks import NeuronMask
from neuron_atlas.modeling.ffn import find_ffns


def reference_ppl(model, windows):
    """exp(mean NLL) from one unbatched forward per window, log-softmax in float64 numpy."""
    total, count = 0.0, 0
    for w in windows:
        with torch.no_grad():
            logits = model(torch.tensor([w])).logits[0].double().numpy()
        logp = logits - logits.max(-1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
        total -= sum(logp[t, w[t + 1]] for t in range(len(w) - 1))
        count += len(w) - 1
    return math.exp(total / count)


class FakeTokenizer:
    """Characters -> ids 3..; BOS = 1, which starts its encodings (as Gemma's tokenizer does)."""

    bos_token_id = 1
    starts_with_bos = True

    def __call__(self, text, add_special_tokens=True):
        head = [self.bos_token_id] if add_special_tokens and self.starts_with_bos else []
        return {"input_ids": head + [3 + (ord(c) % (V - 3)) for c in text]}


class ChatTokenizer(FakeTokenizer):
    """A BOS id its encodings never start with (SmolLM2's is <|im_start|>): windows get no BOS, as in builds."""

    starts_with_bos = False


def test_windows():
    ids = list(range(10))
    assert token_windows(ids, seq_len=4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert token_windows(list(range(9)), seq_len=4) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # a lone token predicts nothing
    assert token_windows(ids, seq_len=4, max_tokens=6) == [[0, 1, 2, 3], [4, 5]]
    text = token_windows("abcdefg", FakeTokenizer(), seq_len=4)
    assert [w[0] for w in text] == [1, 1, 1] and sum(len(w) - 1 for w in text) == 7
    chat = token_windows("abcdefg", ChatTokenizer(), seq_len=4)
    assert chat == [FakeTokenizer()("abcd", False)["input_ids"], FakeTokenizer()("efg", False)["input_ids"]]
    ids = FakeTokenizer()("abcdefg", False)["input_ids"]  # the windows the builder counts, for both tokenizers
    for tok in (FakeTokenizer(), ChatTokenizer()):
        assert token_windows("abcdefg", tok, seq_len=4) == sequences(ids, 4, bos_id(tok))
    with pytest.raises(InvalidParameterError, match="without a tokenizer"):
        token_windows("abc")


@pytest.mark.parametrize("batch_size", [1, 3])
def test_perplexity_matches_reference(batch_size):
    model = tiny()
    ids = torch.randint(0, V, (61,), generator=torch.Generator().manual_seed(2)).tolist()
    got = perplexity(model, ids, seq_len=16, batch_size=batch_size)  # ragged last window: padding must not count
    assert got == pytest.approx(reference_ppl(model, token_windows(ids, seq_len=16)), rel=1e-5)
    text = "the quick brown fox jumps over the lazy dog"
    got = perplexities(model, {"eng_Latn": text}, FakeTokenizer(), seq_len=8)["eng_Latn"]
    assert got == pytest.approx(reference_ppl(model, token_windows(text, FakeTokenizer(), 8)), rel=1e-5)


def zeroed_copy(model, mask):
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for ffn in find_ffns(ref):
            ffn.down.weight[:, torch.from_numpy(mask.indices[ffn.layer].copy())] = 0
    return ref


def test_deactivation_matrix_matches_weight_edits(tmp_path):
    model = tiny()
    rng = np.random.default_rng(0)
    masks = {lang: NeuronMask.from_dense(rng.random((L, W)) < 0.2, languages=[lang])
             for lang in ("aaa_Latn", "bbb_Latn")}
    masks["ccc_Latn"] = NeuronMask([[], [], []], W)  # a language with no neurons: unchanged perplexity
    texts = {lang: torch.randint(0, V, (40,), generator=torch.Generator().manual_seed(i)).tolist()
             for i, lang in enumerate(["aaa_Latn", "bbb_Latn", "ddd_Latn"])}
    result = deactivation_matrix(model, masks, texts, seq_len=12, batch_size=2)
    assert result.deactivated == ["aaa_Latn", "bbb_Latn", "ccc_Latn"]
    assert result.evaluated == ["aaa_Latn", "bbb_Latn", "ddd_Latn"]
    for b, lang in enumerate(result.evaluated):
        windows = token_windows(texts[lang], seq_len=12)
        assert result.base[b] == pytest.approx(reference_ppl(model, windows), rel=1e-5)
        for a, off in enumerate(result.deactivated):
            want = reference_ppl(zeroed_copy(model, masks[off]), windows)
            assert result.ppl[a, b] == pytest.approx(want, rel=1e-5)
    assert all(not f.down._forward_pre_hooks for f in find_ffns(model))
    table = result.to_arrow()
    assert table.num_rows == 9 and table.column_names == ["deactivated", "evaluated", "n_neurons", "base_ppl", "ppl",
                                                          "delta", "relative"]
    np.testing.assert_allclose(table.column("delta").to_numpy(), (result.ppl - result.base).ravel())
    assert "| off \\ eval | aaa_Latn | bbb_Latn | ddd_Latn |" in result.to_markdown()
    png = result.heatmap(tmp_path / "matrix.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_deactivation_matrix_from_a_neuron_table():
    model = tiny()
    table = pa.table({"lang": ["eng_Latn", "eng_Latn", "fra_Latn"], "layer": [0, 2, 1], "neuron": [3, 4, 5]})
    texts = {"eng_Latn": list(range(3, 30)), "fra_Latn": list(range(30, 60))}
    result = deactivation_matrix(model, table, texts, seq_len=10)
    assert result.sizes.tolist() == [2, 1]


def test_deactivation_matrix_labels_both_axes_by_canonical_tag():
    """Neurons from a set (canonical tags) and texts keyed as users write languages give one label per language,
    so the diagonal is found; a key that is no language stays as written, and one language twice is an error."""
    model = tiny()
    table = pa.table({"lang": ["tgl_Latn", "tgl_Latn", "eng_Latn"], "layer": [0, 2, 1], "neuron": [3, 4, 5]})
    texts = {"tl": list(range(3, 30)), "English": list(range(30, 60)), "held-out": list(range(5, 40))}
    result = deactivation_matrix(model, table, texts, seq_len=10, progress=False)
    assert result.deactivated == ["eng_Latn", "tgl_Latn"]
    assert result.evaluated == ["tgl_Latn", "eng_Latn", "held-out"]
    assert set(result.to_arrow().column("evaluated").to_pylist()) == {"tgl_Latn", "eng_Latn", "held-out"}
    masks = {"tl": NeuronMask([[3], [], [4]], W)}
    assert deactivation_matrix(model, masks, {"tgl_Latn": texts["tl"]}, seq_len=10, progress=False).deactivated == [
        "tgl_Latn"]
    with pytest.raises(InvalidParameterError, match="texts name one language twice: 'tl' and 'tgl' are both tgl_Latn"):
        deactivation_matrix(model, table, {"tl": texts["tl"], "tgl": texts["tl"]}, seq_len=10, progress=False)


def test_diagonal_dominance():
    langs = ["a", "b", "c"]
    ppl = np.array([[20.0, 11.0, 10.0], [10.5, 15.0, 10.0], [10.0, 30.0, 10.1]])
    result = DeactivationMatrix(langs, langs, np.array([10.0, 10.0, 10.0]), ppl, np.array([1, 1, 1]))
    assert result.diagonal_dominant() == ["a", "b"]  # c hurts b more than itself
    assert result.diagonal_dominant("column") == ["a", "c"]  # b is hurt more by c's neurons than by its own
    np.testing.assert_allclose(result.relative[0], [1.0, 0.1, 0.0])
