"""`neuron-atlas export ATLAS DIR`: the Hub layout in a local folder, exactly what `push` commits, loadable offline
with `datasets`; the card links only real Hub repos and states the sources' licence, never an assumed one."""
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import neuron_atlas as na
from neuron_atlas import hub
from neuron_atlas.cli import app
from neuron_atlas.hub.card import atlas_licence, hub_link, licence_id
from neuron_atlas.format.schema import ModelRow
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.writer import write_imported_sets

LANGS = ["eng_Latn", "fra_Latn", "tgl_Latn", "swh_Latn"]


def _imported(root: Path, slug: str, licence: str, rate: float = 0.05) -> None:
    row = ModelRow(model=slug, hf_repo="./my-model", architecture="LlamaForCausalLM", n_layers=2, ffn_width=8,
                   hidden_size=4, activation="silu", corpus="wiki", source="import:org/sets@1",
                   created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    write_imported_sets(root, row, {"sw": [np.array([1, 3]), np.array([2])], "en": [np.array([4]), np.array([])]},
                        top_rate=rate, source="org/sets@1", params={"licence": licence})


def _card(folder: Path) -> tuple[dict, str]:
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1]), text


def test_export_is_the_push_commit_and_loads_offline_with_datasets(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    root = make_atlas(tmp_path / "atlas", model="alpha", n_layers=3, ffn_width=80, langs=LANGS, seed=1)
    make_atlas(root, model="beta", n_layers=2, ffn_width=60, langs=LANGS[:3], seed=2)
    _imported(root, "pub", "MIT")
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["export", str(root), str(out), "--repo", "org/atlas"])
    assert result.exit_code == 0, result.output
    ops, card = hub.plan_commit(root, "org/atlas")
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted(op.path_in_repo for op in ops)  # exactly the commit, card included
    assert (out / "README.md").read_text() == card
    for op in ops:
        src = op.path_or_fileobj
        assert (out / op.path_in_repo).read_bytes() == (src if isinstance(src, bytes) else Path(src).read_bytes())

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    atlas = na.open(root)
    for model in ("alpha", "beta", "pub"):
        loaded = datasets.load_dataset(str(out), model, split="train", cache_dir=str(tmp_path / "cache"))
        want = atlas.neurons(model)
        assert set(loaded["lang"]) == {lang for lang, n in want.sizes().items() if n}
        for lang in want.langs:  # per language, the very rows neurons(model) answers
            rows = loaded.filter(lambda r, lang=lang: r["lang"] == lang)
            want_lang = want.to_arrow().filter(want.to_arrow().column("lang").to_numpy(zero_copy_only=False) == lang)
            assert rows.to_list() == want_lang.to_pylist()
    default = next(c for c in _card(out)[0]["configs"] if c.get("default"))
    assert default["config_name"] == "alpha"
    assert na.open(out).neurons("alpha").table.equals(atlas.neurons("alpha").table)  # still an atlas too


def test_export_refuses_a_non_empty_folder_and_writes_nothing_half(tmp_path):
    root = make_atlas(tmp_path / "atlas", langs=LANGS, seed=1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    result = CliRunner().invoke(app, ["export", str(root), str(tmp_path / "full")])
    assert result.exit_code != 0 and (tmp_path / "full" / "x").read_text() == "mine"
    assert not list(tmp_path.glob(".*export-tmp"))


def test_card_links_only_hub_repos_and_licence_comes_from_the_sources(tmp_path):
    assert hub_link("org/model") == "[org/model](https://huggingface.co/org/model)"
    for local in ("./my-model", "/abs/model", "pypi:gemma3-270m==1.0", "my-model", "../x/y", ""):
        assert "huggingface.co" not in hub_link(local)
    assert [licence_id(x) for x in ("MIT", "Apache-2.0", "none stated", "", None)] == [
        "mit", "apache-2.0", "unknown", "unknown", "unknown"]
    assert atlas_licence([{"licence": "mit"}, {"licence": "mit"}]) == "mit"
    assert atlas_licence([{"licence": "mit"}, {"licence": "apache-2.0"}]) == "other"
    assert atlas_licence([{"licence": "mit"}, {"licence": "unknown"}]) == "unknown"

    only_mit = tmp_path / "mit"
    _imported(only_mit, "pub", "MIT")
    hub.export(only_mit, tmp_path / "e1")
    front, text = _card(tmp_path / "e1")
    assert front["license"] == "mit" and "https://huggingface.co/./my-model" not in text and "`./my-model`" in text
    none_stated = tmp_path / "none"
    _imported(none_stated, "pub", "none stated")
    hub.export(none_stated, tmp_path / "e2")
    assert _card(tmp_path / "e2")[0]["license"] == "unknown"
    built = make_atlas(tmp_path / "built", langs=LANGS, seed=1)  # statistics built here: no one stated a licence
    hub.export(built, tmp_path / "e3")
    assert _card(tmp_path / "e3")[0]["license"] == "unknown"
    hub.export(built, tmp_path / "e4", license="cc-by-4.0")  # unless the publisher says
    assert _card(tmp_path / "e4")[0]["license"] == "cc-by-4.0"
