"""The embedded default atlas that ships with the package (built by scripts/embedded_atlas/ from real models and UDHR text)."""
from pathlib import Path

import pytest

import neuron_atlas as na
from neuron_atlas.atlas import EMBEDDED
from neuron_atlas.format.reader import read_derived

pytestmark = pytest.mark.skipif(not (EMBEDDED / "atlas.json").exists(), reason="no embedded atlas in this checkout")


def test_default_query_answers():
    atlas = na.open()
    assert {"gemma-3-270m", "smollm2-135m"} <= set(atlas.model_slugs)
    s = atlas.neurons("gemma-3-270m", lang="tl", top="1%")
    assert s.langs == ["tgl_Latn"] and s.model == "gemma-3-270m"
    assert len(atlas.langs_of("gemma-3-270m")) >= 400


@pytest.mark.parametrize("model", ["gemma-3-270m", "smollm2-135m"])
def test_provenance_and_fresh_derived_tables(model):
    atlas = na.open()
    row = atlas.model(model)
    assert row.corpus == "udhr" and row.corpus_version == "6.0.0" and row.revision.startswith("sha256:")
    assert row.tokens_per_language > 0 and row.builder_version
    meta = read_derived(atlas.layout, model).meta
    assert meta["languages"] == atlas.langs_of(model)  # stored sets were derived from exactly these shards


def test_installed_size_within_budget():
    size = sum(p.stat().st_size for p in Path(EMBEDDED).rglob("*") if p.is_file())
    assert size <= 100 * 10**6, f"embedded atlas is {size / 1e6:.1f} MB; the package budget is 100 MB"
