"""`neuron-atlas export ATLAS DIR`: the Hub layout in a local folder, exactly what `push` commits, loadable offline
with `datasets`; the card links only real Hub repos and states the sources' licence, never an assumed one."""
import datetime as dt
import json
import os
import stat
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
    assert not list(tmp_path.glob(".*export*"))


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


# -- what publishing may carry: the atlas' own files, no local path, no markup from the atlas ----------------------

def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_export_never_follows_a_planted_staging_link(pristine, tmp_path):
    parent, elsewhere = tmp_path / "P", tmp_path / "elsewhere"
    parent.mkdir()
    elsewhere.mkdir()
    (parent / ".out.export-tmp").symlink_to(elsewhere)  # the staging name an earlier version reused
    paths = hub.export(pristine, parent / "out")
    assert list(elsewhere.iterdir()) == []
    assert (parent / "out").is_dir() and not (parent / "out").is_symlink()
    assert _files(parent / "out") == sorted(paths)
    assert sorted(p.name for p in parent.iterdir()) == [".out.export-tmp", "out"]  # the link untouched, no leftovers
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((parent / "out").stat().st_mode) == 0o777 & ~umask  # not a private temporary folder's 0700

    (parent / "link").symlink_to(tmp_path / "empty", target_is_directory=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(na.InvalidParameterError, match="symlink"):
        hub.export(pristine, parent / "link")
    assert list((tmp_path / "empty").iterdir()) == []


def test_export_that_finds_its_folder_filled_meanwhile_writes_nothing(pristine, tmp_path, monkeypatch):
    from neuron_atlas.hub import publish

    plan = publish.plan_commit

    def racing(*args, **kwargs):
        ops = plan(*args, **kwargs)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "theirs.txt").write_text("theirs")
        return ops

    monkeypatch.setattr(publish, "plan_commit", racing)
    with pytest.raises(na.AtlasError, match="meanwhile"):
        hub.export(pristine, tmp_path / "out")
    assert _files(tmp_path / "out") == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_publishing_carries_only_the_atlas_files_and_no_local_path(pristine, atlas_copy, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    stray = ["notes/private.parquet", "private.parquet", "counts/model=toy/lang=tgl_Latn/backup.parquet",
             "lape/model=toy/old.parquet", "models/model=toy/notes.parquet", "counts/model=toy/lang=EVIL/counts.parquet"]
    for rel in stray:
        (atlas_copy / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"secret": ["TOPSECRET"]}), atlas_copy / rel)
    ops, _ = hub.plan_commit(atlas_copy, "org/atlas")
    own = {p for p in _files(pristine) if not p.startswith(".")}
    published = {op.path_in_repo for op in ops}
    extra = {p for p in published - own if not p.startswith(("default/", "figures/")) and p != "README.md"}
    assert own <= published and not extra, extra

    hub.export(atlas_copy, tmp_path / "out", "org/atlas")
    for rel in _files(tmp_path / "out"):
        data = (tmp_path / "out" / rel).read_bytes()
        assert b"TOPSECRET" not in data and str(tmp_path).encode() not in data, rel
    meta = json.loads(pq.read_schema(tmp_path / "out" / "default" / "toy.parquet").metadata[b"neuron_atlas"])
    assert meta["atlas"] == "hf://datasets/org/atlas"


HOSTILE = "<script>alert(1)</script>"


def test_card_escapes_every_value_from_the_atlas(tmp_path):
    from neuron_atlas.format.writer import AtlasWriter
    from neuron_atlas.testing import random_counts

    root = tmp_path / "atlas"
    row = ModelRow(model="toy", hf_repo="`x`<img src=x onerror=alert(1)>", revision="r|1", architecture=HOSTILE,
                   n_layers=2, ffn_width=8, hidden_size=4, activation="<b>silu</b>", corpus=HOSTILE,
                   corpus_version="[click](javascript:alert(1))", tokens_per_language=100, dtype="<i>",
                   source="a | b", builder_version="<svg onload=alert(1)>",
                   created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    writer = AtlasWriter(root)
    writer.add_model(row)
    fired = random_counts(np.random.default_rng(1), 2, 16, np.array([100, 100]))
    for k, tag in enumerate(LANGS[:2]):
        writer.add_counts("toy", tag, fired[k].reshape(2, 8), 100, replace=True)
    writer.finalize("toy")
    pub = ModelRow(**{**row.model_dump(), "model": "pub"})
    write_imported_sets(root, pub, {"sw": [np.array([1]), np.array([2])]}, top_rate=0.05, source=HOSTILE,
                        params={"licence": "<img src=x onerror=alert(1)>"})
    manifest = json.loads((root / "atlas.json").read_text())
    (root / "atlas.json").write_text(json.dumps({**manifest, "description": f"An atlas.\n{HOSTILE}\n![x](javascript:1)"}))

    _, card = hub.plan_commit(root, "org/atlas")
    body = card.split("---\n", 2)[2]
    for markup in ("<script", "<img", "<b>", "<i>", "<svg", "](javascript:"):
        assert markup not in body, markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "An atlas." in body
    rows = [line for line in body.splitlines() if line.startswith("| `toy`") or line.startswith("| `pub`")]
    assert len(rows) == 2 and all(line.count("|") == 9 for line in rows)  # no cell of a value's own
    assert _card_yaml(card)["license"] == "unknown"


def _card_yaml(card: str) -> dict:
    return yaml.safe_load(card.split("---\n")[1])


@pytest.mark.parametrize("licence", [HOSTILE, "MIT license", "", "mit\n---"])
def test_a_licence_that_is_no_hub_licence_id_is_refused(pristine, tmp_path, licence):
    with pytest.raises(na.InvalidParameterError, match="not a Hub licence id"):
        hub.export(pristine, tmp_path / "out", license=licence)
    assert not (tmp_path / "out").exists()
