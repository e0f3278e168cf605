"""The catalog of published sources, models named the way users write them, and what the atlas answers about a
model it lacks, or has without some table."""
import re
from pathlib import Path

import pyarrow as pa
import pytest

import neuron_atlas as na
from neuron_atlas import catalog
from neuron_atlas.errors import InvalidParameterError, UnknownModelError
from neuron_atlas.hub.address import hub_address
from neuron_atlas.hub.card import example_lang
from neuron_atlas.importers.registry import KNOWN


def test_headline_call_for_a_model_we_do_not_have_says_where_it_lives():
    """A short first line, then one route per line: no import of sets without the language asked (they are named
    on one line), and the build of that language only, at the cost model's price for one language."""
    atlas = na.open()
    with pytest.raises(UnknownModelError) as info:
        atlas.neurons("llama-3.1-8b", lang="tl")
    text = str(info.value)
    first, build, also = text.splitlines()
    assert first == (f"model 'llama-3.1-8b' is not in the atlas at {atlas.layout.root} (it has gemma-3-270m, "
                     "smollm2-135m). To get it:")
    minutes = round(catalog.gpu_hours(catalog.shape_of("meta-llama/Llama-3.1-8B"), languages=1) * 60)
    assert build.startswith(f"  - build Tagalog (tl) only (about {minutes} GPU-minutes on one H100 SXM; modelled, "
                            "assuming 1 language × 10M tokens")
    assert build.endswith("`neuron-atlas build --model meta-llama/Llama-3.1-8B --corpus hf:HuggingFaceFW/fineweb-2 "
                          "--lang tl --tokens-per-language 10000000 --seq-len 2048 --dtype bfloat16 --device cuda "
                          "--batch-size 0 --out ATLAS`")
    assert "import" not in text and "--lang all" not in text  # neither published set has Tagalog
    assert also == ("  also published, without Tagalog (tl): subnetwork/llama-3.1-8b "
                    "(d-gurgurov/Language-Subnetwork-Enhancement-LLMs@087cbf9), clas-bench/llama-3.1-8b-instruct "
                    "(d-gurgurov/CLaS-Bench@b3d0062)")


def test_sets_with_a_language_asked_are_routes_each_named_by_the_commit_it_is_downloaded_at():
    with pytest.raises(UnknownModelError) as info:
        na.open().neurons("llama-3.1-8b", lang=["mt", "tl"])
    first, *routes = str(info.value).splitlines()
    imports = [r for r in routes if r.startswith("  - import ")]
    assert len(imports) == 2 and len(routes) == 3 and routes[-1].startswith("  - build Maltese (mt), Tagalog (tl) only")
    for line, name in zip(imports, ["subnetwork/llama-3.1-8b", "clas-bench/llama-3.1-8b-instruct"]):
        entry = next(k for k in catalog.published_sets() if k.name == name)
        repo, commit = entry.source.split("@")
        assert line.startswith(f"  - import {name}, neuron sets of {entry.hf_repo} from {entry.source} ")
        assert "has Maltese (mt); lacks Tagalog (tl)" in line and f"github.com/{repo}/raw/{commit}" in line
    assert "--lang mt,tl " in routes[-1] and "2 languages × 10M tokens" in routes[-1]


@pytest.mark.parametrize("entry", catalog.published_sets(), ids=lambda k: k.name)
def test_each_published_set_is_downloaded_at_the_commit_it_is_named_by(entry):
    repo, commit = entry.source.split("@")
    prefix = f"https://github.com/{repo}/raw/"
    assert entry.url.startswith(prefix) and entry.url[len(prefix):].startswith(commit), (entry.source, entry.url)


def test_without_languages_every_set_is_a_route_and_the_build_is_of_every_language():
    with pytest.raises(UnknownModelError) as info:
        na.open().model("meta-llama/Llama-3.1-8B")
    routes = str(info.value).splitlines()[1:]
    assert [r.split(",")[0] for r in routes[:2]] == ["  - import subnetwork/llama-3.1-8b",
                                                     "  - import clas-bench/llama-3.1-8b-instruct"]
    hours = catalog.gpu_hours(catalog.shape_of("llama-3.1-8b"))
    assert routes[2].startswith(f"  - build every language of the corpus (about {hours:,.0f} GPU-hours")
    assert "assuming 200 languages" in routes[2] and "--lang all " in routes[2] and len(routes) == 3


def test_a_typo_of_a_model_we_have_gets_the_suggestion_only():
    with pytest.raises(UnknownModelError) as info:
        na.open().neurons("gema-3-270m", lang="tl")
    assert "Did you mean: gemma-3-270m?" in str(info.value) and "To get it" not in str(info.value)


@pytest.mark.parametrize("name", ["google/gemma-3-270m", "Gemma-3-270M", "GEMMA-3-270M"])
def test_models_are_matched_as_users_write_them(name):
    atlas = na.open()
    assert atlas.neurons(name, lang="tl").to_arrow().equals(atlas.neurons("gemma-3-270m", lang="tl").to_arrow())
    assert atlas.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2-135m"  # the weights it holds


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


def test_features_of_a_model_the_atlas_has_are_missing_not_an_unknown_model(toy_atlas):
    atlas = na.open(toy_atlas)
    with pytest.raises(InvalidParameterError) as info:
        atlas.features("toy", "sw-en")
    assert not isinstance(info.value, UnknownModelError)
    assert str(info.value) == (f"model 'toy' has no features table in {atlas.layout.root} (models with features: "
                               "none); `neuron-atlas features toy --pair sw-en --atlas FOLDER` builds it into a local "
                               "atlas folder")
    with pytest.raises(InvalidParameterError, match="model 'toy-b' has no features table"):
        atlas.feature_overlap("toy-b")
    with pytest.raises(UnknownModelError):  # a model the atlas lacks is still one
        atlas.features("llama-3.1-8b")


def test_the_data_cards_usage_example_asks_for_a_language_with_neurons():
    """The card's example language is picked from the data: one whose default set is not empty."""
    card = (Path(__file__).resolve().parents[1] / "data_cards" / "default-atlas.md").read_text()
    model, lang, top = re.search(r'atlas\.neurons\("([^"]+)", lang="([^"]+)", top="([^"]+)"\)', card).groups()
    assert len(na.open().neurons(model, lang=lang, top=top)) > 0
    assert f'split="{lang}"' in card  # the counts example loads the same language, whose shard exists


def test_card_example_language_skips_empty_sets_and_languages_without_a_shard():
    langs = ["aaa_Latn", "bbb_Latn", "ccc_Latn"]
    by_layer = pa.table({"lang": langs, "layer": [0, 0, 0], "n_neurons": [0, 5, 9]})
    item = {"langs": langs, "by_layer": by_layer, "count_langs": langs[:2]}
    assert example_lang(item) == "bbb_Latn"  # ccc has more neurons but no count shard to load as a split
    assert example_lang({**item, "count_langs": []}) == "ccc_Latn"  # imported sets: no shards, the largest set
    assert example_lang({**item, "by_layer": None}) == "aaa_Latn"  # no sets at all: the first language


def test_models_are_named_by_their_exact_weights():
    """The embedded smollm2-135m is the Instruct model (a Q4_1 GGUF), gemma-3-270m the base model (Q4_K_M): their
    own Hub ids resolve to them; the other variant's id is refused with the reason (other weights, other neurons)."""
    atlas = na.open()
    assert atlas.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2-135m"
    assert atlas.resolve_model("google/gemma-3-270m") == "gemma-3-270m"
    for other, slug in (("HuggingFaceTB/SmolLM2-135M", "smollm2-135m"), ("google/gemma-3-270m-it", "gemma-3-270m")):
        with pytest.raises(na.UnknownModelError, match=f"other weights than the ones model '{slug}'"):
            atlas.neurons(other, lang="tl")
    assert catalog.packaged("smollm2-135m")["variant"] == "instruct"
    assert catalog.packaged("gemma-3-270m")["file"] in atlas.model("gemma-3-270m").hf_repo
    assert catalog.packaged("smollm2-135m")["file"] in atlas.model("smollm2-135m").hf_repo
