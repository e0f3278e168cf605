"""One tag per language in an atlas: find the tags written before ``data/language_tags.csv`` (``swa_Latn`` where the
canonical tag is ``swh_Latn``) and migrate an atlas to the canonical tags in one atomic swap.

The migration builds the migrated atlas beside the old one (unchanged files hard-linked, so it costs little disk),
re-derives the LAPE tables of models whose languages were renamed, then swaps the two folders; an interrupted
migration leaves the old atlas as it was, and a rerun finishes or restarts it.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..languages import tags as langs_mod
from ..errors import AtlasError
from ..format.layout import Layout, file_metadata, read_parquet, write_parquet
from ..format.verify import atlas_tags

_KEYED = re.compile(r"^(lang|pair)=(.+)$")  # hive folders holding language tags


def _canonical_pair(pair: str) -> str:
    return "-".join(langs_mod.noncanonical([t]).get(t, t) for t in pair.split("-"))


def migrate_tags(root: str | os.PathLike) -> dict[str, str]:
    """Rename every non-canonical language tag of the local atlas ``root`` to its canonical tag; returns old -> new.

    Atomic: the migrated atlas is written beside ``root`` and swapped in at the end, so readers see the old atlas or
    the new. A model holding one language under both tags (two shards) is refused: its counts cannot be merged.

    Args:
        root: the local atlas folder to migrate in place.

    Returns:
        dict[str, str]: each non-canonical tag found and the canonical tag it was renamed to (empty when every tag
        is canonical: nothing is written).

    Raises:
        AtlasNotFoundError: ``root`` holds no atlas.
        AtlasFormatError: a file of the atlas (manifest, ``lape`` or languages table) is corrupt.
        AtlasError: a model holds shards of one language under both tags.
    """
    from ..format.reader import read_manifest

    root = Path(root).resolve()
    staging, old_copy = root.parent / f".{root.name}.retag-new", root.parent / f".{root.name}.retag-old"
    _recover(root, staging, old_copy)
    layout = Layout(str(root))
    read_manifest(layout)  # not an atlas: raises
    mapping = langs_mod.noncanonical(list(atlas_tags(layout)))  # what verify's tag_problems names
    if not mapping:
        return {}
    _refuse_clashes(layout, mapping)
    if staging.is_symlink() or (staging.exists() and not staging.is_dir()):
        raise AtlasError(f"{staging}: in the way of the migration, and not a folder migrate-tags made; remove it")
    if staging.exists():
        shutil.rmtree(staging)  # an earlier run that stopped before its swap
    try:
        rederive = _copy(root, staging, mapping)
        _rederive(staging, rederive)
        (staging / ".retag-complete").write_text("")
    except BaseException as exc:  # a full disk, a Ctrl-C: nothing of the half-made copy stays behind
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise AtlasError(f"migrate-tags could not write its copy of {root} ({exc.strerror or exc}); the atlas is "
                             "unchanged") from None
        raise
    os.replace(root, old_copy)
    os.replace(staging, root)
    (root / ".retag-complete").unlink()
    shutil.rmtree(old_copy)
    return mapping


def _recover(root: Path, staging: Path, old_copy: Path) -> None:
    """Finish or undo a migration interrupted between its two renames (or before removing the old copy)."""
    if old_copy.exists() and not root.exists():
        os.replace(staging if (staging / ".retag-complete").exists() else old_copy, root)
        (root / ".retag-complete").unlink(missing_ok=True)
    if old_copy.exists():
        shutil.rmtree(old_copy)


def _refuse_clashes(layout: Layout, mapping: dict[str, str]) -> None:
    for slug in layout.model_slugs():
        present = layout.count_langs(slug)
        both = [(a, b) for a, b in mapping.items() if a in present and b in present]
        if both:
            listing = ", ".join(f"{a} and {b}" for a, b in both)
            raise AtlasError(f"model {slug!r} in {layout.root} has shards for one language under two tags ({listing}); "
                             f"remove one of the two counts/model={slug}/lang=<tag> folders, then rerun migrate-tags")


def _copy(root: Path, staging: Path, mapping: dict[str, str]) -> dict[str, dict]:
    """Copy ``root`` into ``staging`` under the canonical tags; returns the built models whose shards were renamed,
    with the metadata of their old LAPE tables (derived again afterwards). Files that keep their content are
    hard-linked (copied where links are refused)."""
    from ..format.reader import read_derived

    layout = Layout(str(root))
    rederive = {slug: getattr(read_derived(layout, slug), "meta", {}) for slug in layout.model_slugs()
                if set(layout.count_langs(slug)) & set(mapping)}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or any(part.startswith(".") for part in rel.parts):
            continue  # folders are made as needed; lock and temporary files stay behind
        parts = [_retag_part(p, mapping) for p in rel.parts]
        target = staging.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() == "languages.parquet":
            _write_languages(path, target)
        elif rel.parts[0] == "lape" and rel.parts[1].removeprefix("model=") in rederive:
            continue  # derived again from the renamed shards
        elif rel.name == "lape.parquet":
            table = read_parquet(str(path), "lape")
            meta = file_metadata(table, str(path))
            if meta.get("imported") and langs_mod.noncanonical(meta.get("languages", [])):
                table, meta = retag_imported(table, meta)
                write_parquet(table, target, meta)
            else:
                _link(path, target)
        elif parts != list(rel.parts) and path.suffix == ".parquet":  # a shard under a renamed lang= or pair= folder
            table = pq.read_table(path)
            meta = file_metadata(table, str(path))
            for key in ("lang", "pair"):
                if key in meta:
                    meta[key] = _canonical_pair(meta[key])
            write_parquet(table, target, meta or None)
        else:
            _link(path, target)
    return rederive


def _retag_part(part: str, mapping: dict[str, str]) -> str:
    match = _KEYED.match(part)
    if not match:
        return part
    key, value = match.groups()
    return f"{key}={_canonical_pair(value) if key == 'pair' else mapping.get(value, value)}"


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_languages(source: Path, target: Path) -> None:
    """The languages table with one row per canonical tag (names and codes as ``langs.parse`` gives them)."""
    from ..format.schema import ARROW_SCHEMAS, LanguageRow

    rows = {}
    for tag in read_parquet(str(source), "languages").column("lang").to_pylist():
        info = langs_mod.parse(tag)
        rows[info.tag] = LanguageRow(lang=info.tag, iso639_3=info.iso639_3, script=info.script, name=info.name).model_dump()
    write_parquet(pa.Table.from_pylist([rows[t] for t in sorted(rows)], schema=ARROW_SCHEMAS["languages"]), target)


def _rederive(staging: Path, models: dict[str, dict]) -> None:
    """Derive the LAPE tables of the renamed built models again, with the rates they were derived with."""
    from ..stats.lape import LapeParams
    from ..format.writer import AtlasWriter

    writer = AtlasWriter(staging)
    for slug, meta in sorted(models.items()):
        writer.finalize(slug, LapeParams(filter_rate=meta.get("filter_rate", LapeParams.filter_rate),
                                         bar_ratio=meta.get("bar_ratio", LapeParams.bar_ratio)))


def retag_imported(table: pa.Table, meta: dict) -> tuple[pa.Table, dict]:
    """An imported ``lape`` table and its metadata with every language under its canonical tag.

    Args:
        table: an imported model's ``lape`` table (a ``lang`` column of tags).
        meta: its neuron-atlas metadata (``languages`` and ``missing`` list tags).

    Returns:
        tuple[pyarrow.Table, dict]: ``table`` and ``meta`` themselves when every tag is canonical, else copies
        with the ``lang`` column and ``meta``'s ``languages`` and ``missing`` under the canonical tags.
    """
    tags = list(dict.fromkeys(table.column("lang").to_pylist()))
    fixed = langs_mod.noncanonical(tags + list(meta.get("languages", [])) + list(meta.get("missing", [])))
    if not fixed:
        return table, meta
    lang = pa.array([fixed.get(t, t) for t in table.column("lang").to_pylist()], pa.string())
    table = table.set_column(table.column_names.index("lang"), "lang", lang)
    meta = {**meta, "languages": [fixed.get(t, t) for t in meta.get("languages", [])],
            "missing": [fixed.get(t, t) for t in meta.get("missing", [])]}
    return table, meta
