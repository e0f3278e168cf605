"""The catalog of published sources, and models named the way users write them."""
import pytest

import neuron_atlas as na
from neuron_atlas import catalog
from neuron_atlas.errors import InvalidParameterError, UnknownModelError
from neuron_atlas.hub.address import hub_address
from neuron_atlas.importers.registry import KNOWN


def test_headline_call_for_a_model_we_do_not_have_says_where_it_lives():
    with pytest.raises(UnknownModelError) as info:
        na.open().neurons("llama-3.1-8b", lang="tl")
    text = str(info.value)
    assert "subnetwork/llama-3.1-8b" in text and "no Tagalog (tl)" in text  # the published sets lack Tagalog
    assert "neuron-atlas import llama-3.1-5 --atlas ATLAS" in text
    assert "raw/35e263a65bd2daf789b8ec96839e2bf6266d4a7b/enhancement/activation_mask/llama-3.1-5" in text
    assert "neuron-atlas build --model meta-llama/Llama-3.1-8B " in text and "GPU-hours" in text


def test_a_typo_of_a_model_we_have_gets_the_suggestion_only():
    with pytest.raises(UnknownModelError) as info:
        na.open().neurons("gema-3-270m", lang="tl")
    assert "Did you mean: gemma-3-270m?" in str(info.value) and "Build it" not in str(info.value)


@pytest.mark.parametrize("name", ["google/gemma-3-270m", "Gemma-3-270M", "GEMMA-3-270M"])
def test_models_are_matched_as_users_write_them(name):
    atlas = na.open()
    assert atlas.neurons(name, lang="tl").to_arrow().equals(atlas.neurons("gemma-3-270m", lang="tl").to_arrow())
    assert atlas.resolve_model("HuggingFaceTB/SmolLM2-135M") == "smollm2-135m"


def test_gpu_hours_follow_the_cost_model_of_results():
    llama = catalog.shape_of("meta-llama/Llama-3.1-8B")
    assert llama is not None and llama.n_layers == 32
    # RESULTS: 3.0e19 FLOP at 396 TFLOP/s is ~21 GPU-hours; the catalog's 2 x params estimate is within 10 %
    assert 19 < catalog.gpu_hours(llama) < 24
    assert catalog.gpu_hours(llama, languages=100) == pytest.approx(catalog.gpu_hours(llama) / 2)


def test_importer_registry_is_the_catalog():
    assert KNOWN == catalog.published_sets()
    assert all(k.url.startswith("https://") and k.sha256 for k in KNOWN)
    table = catalog.available()
    assert set(table.column("model").to_pylist()) >= {"gemma-3-270m", "llama-3.1-8b", "aya-expanse-8b"}


def test_hub_addresses_from_bare_repo_ids(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hub_address("org/name") == "hf://datasets/org/name"
    assert hub_address("org/name", "v1") == "hf://datasets/org/name@v1"
    assert hub_address("hf://datasets/org/name@v1", "v1") == "hf://datasets/org/name@v1"
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert hub_address("org/name") is None  # a local folder of that name wins, as in load_dataset
    with pytest.raises(InvalidParameterError):
        hub_address("org/name", "v1")
    with pytest.raises(InvalidParameterError):
        na.open(revision="v1")
