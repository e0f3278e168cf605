"""A content fingerprint per atlas file, kept in its Parquet footer and checked at footer cost.

The fingerprint hashes the file's place in the atlas (``counts/model=m/lang=t/counts.parquet``), its neuron-atlas
metadata and its footer's description of the data (rows, column chunks' offsets and sizes, min/max statistics). A
shard copied into another language's folder, a file rewritten with other values or with its metadata stripped no
longer matches. Data pages themselves are covered by their Parquet CRCs, checked whenever pyarrow reads them
(``verify`` reads every page); the footer cannot see a flipped bit inside a page.
"""
from __future__ import annotations

import hashlib
import io
import os
import posixpath
import struct

import pyarrow.parquet as pq

from .schema import TABLES
from .schema import META_KEY, PARQUET_MAGIC

KEY = b"neuron_atlas_fingerprint"


def identity(path: str | os.PathLike) -> str | None:
    """The path of an atlas file below its root (``lape/model=m/lape.parquet``), or None for files of no described
    table (``schema.TABLES``: each file name says how many folders lie between it and the root)."""
    parts = str(path).replace(os.sep, "/").split("/")
    depth = {t.path.rsplit("/", 1)[-1]: t.path.count("/") for t in TABLES}.get(parts[-1])
    if depth is None or len(parts) <= depth:
        return None
    return posixpath.join(*parts[-depth - 1:])


def digest(md: pq.FileMetaData, ident: str) -> str:
    """The fingerprint of a file whose footer is ``md`` and whose place in the atlas is ``ident``."""
    parts: list = [ident, (md.metadata or {}).get(META_KEY, b""), md.num_rows, md.num_row_groups,
                   [md.schema.column(j).path for j in range(md.num_columns)]]
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        parts.append(rg.num_rows)
        for j in range(rg.num_columns):
            c, s = rg.column(j), rg.column(j).statistics
            parts += [c.physical_type, c.compression, c.data_page_offset, c.dictionary_page_offset,
                      c.total_compressed_size, c.total_uncompressed_size, c.num_values]
            parts += [s.min_raw, s.max_raw, s.null_count] if s is not None and s.has_min_max else [None]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def stored(md: pq.FileMetaData) -> str | None:
    """The fingerprint recorded in the footer, or None."""
    raw = (md.metadata or {}).get(KEY)
    return raw.decode("ascii", "replace") if raw is not None else None


def problem(md: pq.FileMetaData, path: str, required: bool) -> str | None:
    """What is wrong with the file's fingerprint, or None. Without one the file passes unless ``required``."""
    ident, got = identity(path), stored(md)
    if ident is None:
        return None
    if got is None:
        return ("has no content fingerprint (written by another tool, or its footer metadata stripped: a copied "
                "file?); rebuild it with neuron-atlas") if required else None
    if got != digest(md, ident):
        return ("content fingerprint does not match the file (copied from another model or language, or rewritten "
                "after it was written); rebuild it with neuron-atlas")
    return None


def stamp(path: str | os.PathLike, ident: str | None = None) -> None:
    """Record the fingerprint in the footer of the Parquet file at ``path`` (rewrites only the footer, in place).

    ``ident`` defaults to the file's place taken from ``path``; the data pages are left byte for byte as they are.
    """
    ident = ident or identity(path)
    if ident is None:
        return
    md = pq.read_metadata(path)
    schema = md.schema.to_arrow_schema()
    meta = {k: v for k, v in (schema.metadata or {}).items() if k not in (KEY, b"ARROW:schema")}
    meta[KEY] = digest(md, ident).encode()
    buf = io.BytesIO()
    pq.write_metadata(schema.with_metadata(meta), buf, metadata_collector=[md])
    footer = buf.getvalue()
    if footer[:4] != PARQUET_MAGIC:
        raise OSError(f"{path}: unexpected Parquet metadata layout")
    with open(path, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        length, magic = struct.unpack("<I4s", f.read(8))
        if magic != PARQUET_MAGIC:
            raise OSError(f"{path}: not a Parquet file")
        f.seek(-8 - length, os.SEEK_END)
        f.write(footer[4:])
        f.truncate()
