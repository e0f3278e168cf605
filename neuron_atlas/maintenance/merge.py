"""Merging atlases: add the models of an atlas built elsewhere (another machine, a half-build) to this one, with
their shards and statistics validated as they are read, and their LAPE tables derived again."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._utils.files import write_atomically
from ..errors import AtlasFormatError
from ..format import fingerprint
from ..format.layout import Layout, write_parquet
from ..format.reader import read_activations, read_derived, read_manifest, read_model, read_residual, read_shard
from ..format.schema import ModelRow
from ..format.writer import AtlasWriter
from ..languages import tags as langs_mod
from .retag import retag_imported


def merge_atlas(source: str | Path, out: str | Path) -> dict[str, int | None]:
    """Add every model of the atlas ``source`` that ``out`` lacks, with its shards, and derive its LAPE tables.

    A model ``out`` already holds from another build is left alone (two builds' provenance are never mixed): its
    entry is None. Otherwise the entry is the number of shards copied; a rerun after an interruption (the same
    build) copies only the missing ones.

    Args:
        source: the local atlas folder to take models from (read, never written).
        out: the local atlas folder to add them to (created if missing).

    Returns:
        dict[str, int | None]: per model slug of ``source``: the count shards copied (0 for imported neuron sets,
        whose ``lape`` table is copied instead, and for a model with every shard already in ``out``), or None
        for a model ``out`` holds from another build.

    Raises:
        AtlasNotFoundError: ``source`` holds no atlas.
        AtlasFormatError: a file of ``source`` is corrupt (named, not copied), a source model has neither count
            shards nor a ``lape`` table, a shard's statistics cover other tokens than its counts, or ``out`` is a
            non-empty folder without ``atlas.json``.
        InvalidParameterError: ``out`` is a file, or lies inside one.
        AtlasError: another writer holds ``out``'s lock.
    """
    src = Layout(str(source))
    read_manifest(src)  # the source is read, never written: a folder without atlas.json is refused here
    writer = AtlasWriter(out)
    present = set(writer.layout.model_slugs())
    copied: dict[str, int | None] = {}
    for slug in src.model_slugs():
        row = read_model(src, slug)
        if slug in present and not _same_build(writer.model(slug), row):
            copied[slug] = None
            continue
        writer.add_model(row)
        if not src.count_langs(slug):  # imported sets: no counts, the lape table is the data
            derived = read_derived(src, slug)
            if derived is None:
                raise AtlasFormatError(f"{src.file('models', model=slug)}: model {slug!r} has neither count shards nor a lape table; "
                                       "the source atlas is incomplete (`neuron-atlas verify` it)")
            table, meta = retag_imported(derived.table, derived.meta)  # one tag per language in the merged atlas
            writer.add_languages([langs_mod.parse(tag) for tag in meta["languages"]])
            if table is derived.table:  # nothing to rename: the file as it is, byte for byte
                _copy_stamped(Path(src.file("lape", model=slug)).read_bytes(), writer.layout.file("lape", model=slug))
            else:
                write_parquet(table, writer.layout.file("lape", model=slug), meta)
            copied[slug] = 0
            continue
        tags = [t for t in src.count_langs(slug) if not writer.has_counts(slug, t)]
        for tag in tags:
            fired, tokens = read_shard(src, row, tag)  # validated: a corrupt source shard is named, not copied
            moments, residual = _read_stats(src, row, tag, tokens)
            writer.add_counts(slug, tag, fired.reshape(row.n_layers, row.ffn_width), tokens, moments=moments,
                              residual=residual)
        writer.finalize(slug)
        copied[slug] = len(tags)
    return copied


def _copy_stamped(data: bytes, target: str) -> None:
    """Write a copied Parquet file atomically with its content fingerprint (a legacy source's file has none)."""
    def write(tmp: str) -> None:
        Path(tmp).write_bytes(data)
        fingerprint.stamp(tmp, fingerprint.identity(target))

    write_atomically(target, write)


def _read_stats(layout: Layout, row: ModelRow, lang: str, tokens: int) -> tuple[tuple | None, np.ndarray | None]:
    """The v2 statistics of a source shard, validated (None where the source has none: a v1 model)."""
    shape = (row.n_layers, row.ffn_width)
    moments = residual = None
    if layout.exists(layout.file("activations", model=row.model, lang=lang)):
        mean, var, got = read_activations(layout, row, lang)
        _same_tokens(layout.file("activations", model=row.model, lang=lang), got, tokens)
        moments = (mean.reshape(shape), var.reshape(shape))
    if layout.exists(layout.file("residual", model=row.model, lang=lang)):
        residual, got = read_residual(layout, row, lang)
        _same_tokens(layout.file("residual", model=row.model, lang=lang), got, tokens)
    return moments, residual


def _same_tokens(path: str, got: int, tokens: int) -> None:
    if got != tokens:
        raise AtlasFormatError(f"{path}: statistics over {got} tokens, but the language's counts shard has {tokens}; "
                               "files of two builds mixed?")


def _same_build(a: ModelRow, b: ModelRow) -> bool:
    """Whether two model rows describe one build (a merge interrupted earlier), not two builds to keep apart."""
    return a.model_dump(exclude={"created"}) == b.model_dump(exclude={"created"})
