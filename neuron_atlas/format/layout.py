"""Where atlas files live (the folder layout), and reading/writing its Parquet tables against their documented schemas."""
from __future__ import annotations

import glob
import json
import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import fingerprint
from .containment import confined
from .._utils.files import write_atomically
from ..errors import AtlasError, AtlasFormatError
from .schema import ARROW_SCHEMAS, MANIFEST, META_KEY, TABLE, TAG_PATTERN

# Parquet encodings per column: sorted keys delta-encode to almost nothing and counts byte-stream-split
# before zstd, so a count costs about the entropy of its value (benchmarks/query.py measures it).
_ENCODINGS = {"neuron": "DELTA_BINARY_PACKED", "fired": "BYTE_STREAM_SPLIT", "rank": "DELTA_BINARY_PACKED",
              "mean": "BYTE_STREAM_SPLIT", "var": "BYTE_STREAM_SPLIT", "mean.list.element": "BYTE_STREAM_SPLIT",
              "score": "BYTE_STREAM_SPLIT"}


@dataclass(frozen=True)
class Layout:
    """Paths of every table of the atlas rooted at ``root``, from the tables' descriptions (``schema.TABLES``).

    ``fs`` is an fsspec filesystem for remote atlases (``hf://``); None means the local disk.
    """

    root: str
    fs: Any = None

    def path(self, *parts: str) -> str:
        return posixpath.join(str(self.root), *parts)

    @property
    def manifest(self) -> str:
        return self.path(MANIFEST)

    def file(self, table: str, **keys: str) -> str:
        """The path of one file of ``table`` (a name in ``schema.TABLES``) at the given partition keys."""
        return self.path(TABLE[table].path.format(**keys))

    def size(self, path: str) -> int:
        """Bytes of one file (local or on the filesystem ``fs``)."""
        return int(self.fs.size(path)) if self.fs is not None else os.path.getsize(path)

    def files(self, table: str, **fixed: str) -> list[tuple[dict[str, str], str]]:
        """Every file of ``table`` present (those of the ``fixed`` partition keys), with its keys, sorted by path; a
        ``lang=`` folder whose name is no canonical tag holds no file of the atlas."""
        spec = TABLE[table]
        pattern = spec.path.format(**{k: fixed.get(k, "*") for k in spec.keys})
        if self.fs is not None:
            found = self.glob_files(self.path(pattern))
        else:
            found = [f.replace(os.sep, "/") for f in glob.glob(posixpath.join(glob.escape(str(self.root)), pattern))]
        shape = re.compile("(?:^|/)" + re.escape(spec.path).replace(r"\{", "{").replace(r"\}", "}").format(
            **{k: f"(?P<{k}>[^/]+)" for k in spec.keys}) + "$")
        out = []
        for path in sorted(found):
            match = shape.search(path)
            if match and re.match(TAG_PATTERN, match.groupdict().get("lang", "aaa_Aaaa")):  # lang=EVIL is no shard
                out.append((match.groupdict(), path))
        return out

    def counts_dir(self, model: str) -> str:
        return self.path("counts", f"model={model}")

    def stats_langs(self, model: str, kind: str) -> list[str]:
        """Language tags of the model's ``activations`` or ``residual`` files (whether or not their shard exists)."""
        return [keys["lang"] for keys, _ in self.files(kind, model=model)]

    def exists(self, path: str) -> bool:
        return self.fs.exists(path) if self.fs is not None else os.path.exists(path)

    def read_text(self, path: str) -> str:
        if self.fs is not None:
            with self.fs.open(path, "r") as f:
                return f.read()
        return Path(path).read_text()

    def glob_files(self, pattern: str) -> list[str]:
        found = self.fs.glob(pattern) if self.fs is not None else glob.glob(pattern)
        return [f.replace(os.sep, "/") for f in found]

    def _partitions(self, folder: str, key: str, file: str) -> list[str]:
        """Values of the ``key=value`` subfolders of ``folder`` that hold ``file``, sorted."""
        if self.fs is not None:
            found = self.glob_files(posixpath.join(folder, f"{key}=*", file))
            return sorted(f.split("/")[-2][len(key) + 1:] for f in found)
        try:
            entries = [e.name for e in os.scandir(folder) if e.name.startswith(key + "=")]
        except FileNotFoundError:
            return []
        return sorted(e[len(key) + 1:] for e in entries if os.path.isfile(os.path.join(folder, e, file)))

    def model_slugs(self) -> list[str]:
        return self._partitions(self.path("models"), "model", "model.parquet")

    def count_langs(self, model: str) -> list[str]:
        """Language tags of the model's shards; a folder whose name is no canonical tag (``lang=EVIL``) is no shard."""
        return [t for t in self._partitions(self.counts_dir(model), "lang", "counts.parquet") if re.match(TAG_PATTERN, t)]

    def stray_langs(self, model: str) -> list[str]:
        """``lang=`` folders of the model holding a counts file under a name that is not a canonical tag."""
        return [t for t in self._partitions(self.counts_dir(model), "lang", "counts.parquet") if not re.match(TAG_PATTERN, t)]


LOCK_NAME = ".atlas.lock"


@contextmanager
def atlas_lock(root: str | Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the atlas-wide lock around a read-modify-write of a shared file (languages.parquet, model rows, manifest).

    Shards are written lock-free (one writer per file, atomic rename); only files several writers update need it.
    """
    from filelock import FileLock, Timeout

    Path(root).mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(os.path.join(root, LOCK_NAME), timeout=timeout):
            yield
    except Timeout:
        raise AtlasError(f"{root}: another writer has held {LOCK_NAME} for {timeout:.0f} s; is a build stuck?") from None


def write_parquet(table: pa.Table, path: str | Path, metadata: dict | None = None, row_group_size: int = 1 << 20,
                  compression_level: int = 9) -> None:
    """Write ``table`` to ``path`` atomically (zstd; delta encoding for sorted integer keys; page CRCs; for atlas
    files a content fingerprint in the footer); ``row_group_size`` rows per row group (1: each row readable alone,
    as a residual file's layers are); ``compression_level`` of zstd (19 for an atlas that ships: counts ~4 % smaller,
    writes ~7x slower)."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(metadata)})
    encodings = {c: e for c, e in _ENCODINGS.items()
                 if c in table.column_names and not pa.types.is_list(table.schema.field(c).type)}
    encodings |= {f"{c}.list.element": _ENCODINGS[f"{c}.list.element"] for c in table.column_names
                  if f"{c}.list.element" in _ENCODINGS and pa.types.is_list(table.schema.field(c).type)}
    ident = fingerprint.identity(path)

    def write(tmp: str) -> None:
        pq.write_table(table, tmp, compression="zstd", compression_level=compression_level,
                       use_dictionary=[c for c in table.column_names
                                       if c not in encodings and f"{c}.list.element" not in encodings],
                       column_encoding=encodings or None, row_group_size=row_group_size, write_page_checksum=True)
        if ident is not None:  # an atlas file: its content fingerprint goes into the footer (see fingerprint)
            fingerprint.stamp(tmp, ident)

    write_atomically(path, write)


def read_parquet(path: str, kind: str, columns: list[str] | None = None, fs: Any = None,
                 fingerprints: bool | None = None) -> pa.Table:
    """Read one atlas table, checking it against the documented schema; errors name the file.

    ``fingerprints`` (not None) also checks the footer as ``verify`` does: extra or clashing columns and the content
    fingerprint (required if True), at no extra read."""
    table, _, problems = read_checked(path, kind, columns, fs, fingerprints)
    if problems:  # the specific faults of a kind are checked by its reader; these are the generic ones
        raise AtlasFormatError(f"{path}: {problems[0]}")
    return table


def read_checked(path: str, kind: str, columns: list[str] | None = None, fs: Any = None,
                 fingerprints: bool | None = None) -> tuple[pa.Table, pq.FileMetaData, list[str]]:
    """``read_parquet`` returning the table, its footer and the footer's problems (extra or clashing columns, the
    content fingerprint) instead of raising on them, so callers can name a more specific fault first."""
    from .checks import column_problems

    try:
        pf = open_parquet(path, fs)
        table = pf.read(columns=columns)
    except FileNotFoundError:
        raise AtlasFormatError(f"{path}: missing; the atlas is incomplete (expected a '{kind}' table)") from None
    except AtlasFormatError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AtlasFormatError(f"{path}: not a readable Parquet file ({reason}); expected a '{kind}' table") from None
    check_schema(table.schema, kind, path, columns)
    problems: list[str] = []
    if fingerprints is not None:
        problems = column_problems(pf.schema_arrow, kind)
        wrong = fingerprint.problem(pf.metadata, path, fingerprints)
        problems += [wrong] if wrong else []
    return table, pf.metadata, problems


def open_parquet(path: str, fs: Any = None) -> pq.ParquetFile:
    """A ParquetFile on the local disk (``containment.confined`` as it is opened) or an fsspec filesystem (avoids
    pyarrow.dataset, which imports pandas); pages written with a CRC are checked against it, so a flipped byte is an
    error rather than a wrong count."""
    return pq.ParquetFile(fs.open(path, "rb") if fs is not None else confined(path), page_checksum_verification=True)


def check_schema(schema: pa.Schema, kind: str, path: str, columns: list[str] | None = None) -> None:
    """Raise AtlasFormatError unless ``schema`` has the documented columns and types of ``kind``."""
    expected = ARROW_SCHEMAS[kind]
    for field in expected:
        if columns is not None and field.name not in columns:
            continue
        if field.name not in schema.names:
            raise AtlasFormatError(
                f"{path}: column '{field.name}' is missing; a '{kind}' table has columns {expected.names}"
            )
        got = schema.field(field.name).type
        if got != field.type:
            raise AtlasFormatError(f"{path}: column '{field.name}' has type {got}, expected {field.type}")


def file_metadata(table_or_schema: pa.Table | pa.Schema | pq.FileMetaData, path: str = "a Parquet file") -> dict:
    """The neuron-atlas JSON metadata stored in a Parquet file's schema, or {}; AtlasFormatError if it is corrupt."""
    schema = table_or_schema.schema if isinstance(table_or_schema, pa.Table) else table_or_schema
    raw = (schema.metadata or {}).get(META_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError as exc:  # JSONDecodeError and bad UTF-8 alike
        raise AtlasFormatError(f"{path}: its neuron-atlas metadata is not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(meta, dict):
        raise AtlasFormatError(f"{path}: its neuron-atlas metadata is not a JSON object; the file is corrupt")
    return meta
