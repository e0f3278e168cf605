"""One language, one tag, whatever the source: Swahili built from UDHR (``swh``) and imported from CLaS-Bench's
published sets (``sw``) merge into one atlas holding one Swahili."""
from __future__ import annotations

from tiny_models import tiny

import neuron_atlas as na
from neuron_atlas.builder.run import build
from neuron_atlas.corpus import open_corpus
from neuron_atlas.importers import import_neuron_sets, known
from neuron_atlas.modeling.load import LoadedModel, load_packaged_tokenizer
from neuron_atlas.format.verify import verify
from neuron_atlas.maintenance.merge import merge_atlas


def test_udhr_swh_and_imported_sw_merge_into_one_language(tmp_path, reference):
    tokenizer = load_packaged_tokenizer("gemma-3-270m")
    loaded = LoadedModel(tiny("gemma3", vocab_size=len(tokenizer)).double(), tokenizer, "test/tiny-gemma3", "sha256:0")
    built = tmp_path / "built"
    report = build(loaded, open_corpus("udhr"), "swh,en", out=built, slug="tiny", tokens_per_language=64,
                   seq_len=16, batch_size=4, progress=False)
    assert sorted(report.built) == ["eng_Latn", "swh_Latn"]

    entry = known("clas-bench/llama-3.1-8b-instruct")
    assert "sw" in entry.languages  # the file's order names Swahili 'sw' (the macrolanguage code)
    imported = tmp_path / "imported"
    sizes = import_neuron_sets(reference / "clas-bench" / "llama-1", imported, entry.model, list(entry.languages),
                               top_rate=entry.top_rate, source=entry.source, n_layers=entry.n_layers,
                               ffn_width=entry.ffn_width, hidden_size=entry.hidden_size, hf_repo=entry.hf_repo,
                               architecture=entry.architecture, licence=entry.licence)
    assert "swh_Latn" in sizes and "swa_Latn" not in sizes

    merged = tmp_path / "merged"
    merge_atlas(built, merged)
    merge_atlas(imported, merged)
    atlas = na.open(merged)
    swahili = atlas.sql("SELECT lang, name FROM languages WHERE iso639_3 IN ('swa', 'swh') OR name LIKE 'Swahili%'")
    assert swahili.column("lang").to_pylist() == ["swh_Latn"]
    both = atlas.sql("SELECT DISTINCT model FROM lape_stored WHERE lang = 'swh_Latn' ORDER BY model")
    assert both.column("model").to_pylist() == ["llama-3.1-8b-instruct", "tiny"]
    for model in ("tiny", "llama-3.1-8b-instruct"):  # every spelling finds it in both models
        assert {atlas.neurons(model, lang=spelling).langs[0] for spelling in ("sw", "swa", "swh", "Swahili")} == {"swh_Latn"}
    assert len(atlas.neurons("llama-3.1-8b-instruct", lang="sw")) == sizes["swh_Latn"]
    assert verify(merged) == []
