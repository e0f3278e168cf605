"""One tag per language: atlases written before data/language_tags.csv (swa_Latn, est_Latn) are flagged by verify and
migrated atomically by `neuron-atlas migrate-tags`; the migrated atlas answers every query as before."""
import hashlib
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import neuron_atlas as na
from neuron_atlas.languages import tags as langs
from neuron_atlas.maintenance import retag
from neuron_atlas.cli import app
from neuron_atlas.errors import AtlasError
from neuron_atlas.format.schema import ModelRow
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.verify import verify
from neuron_atlas.format.writer import write_imported_sets
from neuron_atlas.maintenance.merge import merge_atlas

OLD = ["eng_Latn", "swa_Latn", "est_Latn", "tgl_Latn", "zho_Hans"]
NEW = {"swa_Latn": "swh_Latn", "est_Latn": "ekk_Latn", "zho_Hans": "cmn_Hans"}


@contextmanager
def old_tags():
    """Write as neuron-atlas did before the table: every code as the text names it."""
    saved, langs._canonical_codes = langs._canonical_codes, dict
    langs.parse.cache_clear()
    try:
        yield
    finally:
        langs._canonical_codes = saved
        langs.parse.cache_clear()


def _imported_row(slug: str) -> ModelRow:
    import datetime as dt

    return ModelRow(model=slug, hf_repo="org/published", revision="", architecture="LlamaForCausalLM", n_layers=4,
                    ffn_width=96, hidden_size=24, activation="silu", corpus="", corpus_version="", tokens_per_language=0,
                    seq_len=0, dtype="", builder_version="", source="import:org/sets@1",
                    created=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))


def _old_atlas(root: Path) -> Path:
    with old_tags():
        _write_old(root)
    return root


def _write_old(root: Path) -> None:
    make_atlas(root, model="toy", n_layers=4, ffn_width=96, langs=OLD, tokens=3000, seed=3)
    sets = {"sw": [np.array([1, 5]), np.array([]), np.array([7]), np.array([2, 3])],
            "en": [np.array([0]), np.array([4]), np.array([]), np.array([9])]}
    write_imported_sets(root, _imported_row("pub"), sets, top_rate=0.05, source="org/sets@1")


def _tagless(table):
    """A query's neurons and ranks exactly, its statistics to 12 digits (the languages' order changes float sums)."""
    return table.select(["layer", "neuron", "rank", "n_langs"]), np.round(table.select(["p", "entropy"]).to_pandas(), 12)


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_verify_flags_and_migrate_fixes_old_tags(tmp_path):
    root = _old_atlas(tmp_path / "atlas")
    atlas = na.open(root)
    assert sorted(atlas.langs_of("toy")) == sorted(OLD)
    before = {lang: _tagless(atlas.neurons("toy", lang=lang, top="2%").table) for lang in ("sw", "et", "zh", "en")}
    before_pub = atlas.neurons("pub", lang="sw", top="5%").table.drop_columns(["lang"])  # an old atlas still answers 'sw'

    problems = [str(p) for p in verify(root)]
    assert any("lang=swa_Latn" in p and "swh_Latn" in p and "migrate-tags" in p for p in problems)
    assert any("languages.parquet" in p and "est_Latn" in p for p in problems)
    assert any("model=pub/lape.parquet" in p and "swa_Latn" in p for p in problems)

    result = CliRunner().invoke(app, ["migrate-tags", str(root)])
    assert result.exit_code == 0, result.output
    assert "swa_Latn -> swh_Latn" in result.output
    assert verify(root) == []
    atlas = na.open(root)
    assert sorted(atlas.langs_of("toy")) == sorted(NEW.get(t, t) for t in OLD)
    assert atlas.langs_of("pub") == ["swh_Latn", "eng_Latn"]
    for lang, table in before.items():  # the same neurons, now under the canonical tag
        got = atlas.neurons("toy", lang=lang, top="2%")
        assert got.langs == [langs.canonical(lang)]
        assert _tagless(got.table)[0].equals(table[0]) and _tagless(got.table)[1].equals(table[1])
    assert atlas.neurons("pub", lang="swa", top="5%").table.drop_columns(["lang"]).equals(before_pub)
    tags = atlas.sql("SELECT DISTINCT lang FROM languages ORDER BY lang").column("lang").to_pylist()
    assert tags == sorted({NEW.get(t, t) for t in OLD})
    again = CliRunner().invoke(app, ["migrate-tags", str(root)])
    assert again.exit_code == 0 and "already" in again.output


def test_interrupted_migration_leaves_the_atlas_as_it_was(tmp_path, monkeypatch):
    root = _old_atlas(tmp_path / "atlas")
    files = _digest(root)

    def killed(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(retag, "_rederive", killed)
    with pytest.raises(KeyboardInterrupt):
        retag.migrate_tags(root)
    assert _digest(root) == files  # untouched
    monkeypatch.undo()
    assert retag.migrate_tags(root) == NEW
    assert verify(root) == [] and not list(tmp_path.glob(".atlas.retag-*"))


def test_one_language_under_two_tags_is_refused(tmp_path):
    with old_tags():
        root = make_atlas(tmp_path / "atlas", langs=["eng_Latn", "swa_Latn", "fra_Latn"], seed=1)
    (root / "counts" / "model=toy" / "lang=swh_Latn").mkdir()
    shutil.copy(root / "counts" / "model=toy" / "lang=swa_Latn" / "counts.parquet",
                root / "counts" / "model=toy" / "lang=swh_Latn" / "counts.parquet")
    with pytest.raises(AtlasError, match="one language under two tags"):
        retag.migrate_tags(root)


def test_merge_of_an_old_imported_atlas_writes_canonical_tags(tmp_path):
    src = tmp_path / "src"
    with old_tags():
        write_imported_sets(src, _imported_row("pub"), {"sw": [np.array([1])] * 4, "et": [np.array([2])] * 4},
                            top_rate=0.01, source="org/sets@1")
    merge_atlas(src, tmp_path / "out")
    merged = na.open(tmp_path / "out")
    assert merged.langs_of("pub") == ["swh_Latn", "ekk_Latn"]
    assert verify(tmp_path / "out") == []


def test_migration_on_a_full_disk_leaves_no_copy_behind(tmp_path, monkeypatch):
    root = _old_atlas(tmp_path / "atlas")
    files = _digest(root)

    def full(*args, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retag, "_rederive", full)
    with pytest.raises(AtlasError, match="No space left on device.*unchanged"):
        retag.migrate_tags(root)
    assert _digest(root) == files and not list(tmp_path.glob(".atlas.retag-*"))


def test_a_planted_staging_link_is_refused_and_left_alone(tmp_path):
    root = _old_atlas(tmp_path / "atlas")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".atlas.retag-new").symlink_to(elsewhere)
    with pytest.raises(AtlasError, match="in the way of the migration"):
        retag.migrate_tags(root)
    assert elsewhere.is_dir() and not any(elsewhere.iterdir())
