"""A language's text and its held-out windows in one call, against the corpus read and cut by hand."""
import pytest

import neuron_atlas as na
from neuron_atlas.corpus import UDHR
from neuron_atlas.modeling.load import load_packaged_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_packaged_tokenizer("smollm2-135m")


def test_text_is_the_corpus_text_under_any_spelling():
    whole = "\n".join(UDHR().texts("tgl_Latn"))
    assert na.corpus.text("tl") == na.corpus.text("Tagalog") == whole and len(whole) > 5000


def test_held_out_windows_are_the_tokens_after_the_atlas_budget(tokenizer):
    skip = na.open().model("smollm2-135m").tokens_per_language
    ids = tokenizer("\n".join(t for t in UDHR().texts("tgl_Latn") if t.strip()) + "\n",
                    add_special_tokens=False)["input_ids"]
    windows = na.corpus.held_out("tl", tokenizer, skip=skip, seq_len=64)
    assert windows and all(len(w) == 64 for w in windows)  # smollm2 adds no BOS: plain 64-token cuts
    assert windows[0] == ids[skip:skip + 64] and windows[1] == ids[skip + 64:skip + 128]
    assert na.corpus.held_out("tl", tokenizer, skip=skip, seq_len=64, n_windows=2) == windows[:2]
    with pytest.raises(na.InvalidParameterError, match="skip"):
        na.corpus.held_out("tl", tokenizer, skip=-1)
