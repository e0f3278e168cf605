"""Where atlas files live (the folder layout) and how they are written: atomically, never in place."""
from __future__ import annotations

import glob
import hashlib
import json
import os
import posixpath
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import AtlasError, AtlasFormatError
from .schema import ARROW_SCHEMAS, TAG_PATTERN

# Parquet encodings per column: sorted keys delta-encode to almost nothing and counts byte-stream-split
# before zstd, so a count costs about the entropy of its value (benchmarks/query.py measures it).
_ENCODINGS = {"neuron": "DELTA_BINARY_PACKED", "fired": "BYTE_STREAM_SPLIT", "rank": "DELTA_BINARY_PACKED",
              "mean": "BYTE_STREAM_SPLIT", "var": "BYTE_STREAM_SPLIT", "mean.list.element": "BYTE_STREAM_SPLIT"}


@dataclass(frozen=True)
class Layout:
    """Paths of every table of the atlas rooted at ``root`` (see ``schema`` for the tree).

    ``fs`` is an fsspec filesystem for remote atlases (``hf://``); None means the local disk.
    """

    root: str
    fs: Any = None

    def path(self, *parts: str) -> str:
        return posixpath.join(str(self.root), *parts)

    @property
    def manifest(self) -> str:
        return self.path("atlas.json")

    @property
    def languages(self) -> str:
        return self.path("languages.parquet")

    def model(self, model: str) -> str:
        return self.path("models", f"model={model}", "model.parquet")

    def counts_dir(self, model: str) -> str:
        return self.path("counts", f"model={model}")

    def counts(self, model: str, lang: str) -> str:
        return self.path("counts", f"model={model}", f"lang={lang}", "counts.parquet")

    def activations(self, model: str, lang: str) -> str:
        return self.path("activations", f"model={model}", f"lang={lang}", "activations.parquet")

    def residual(self, model: str, lang: str) -> str:
        return self.path("residual", f"model={model}", f"lang={lang}", "residual.parquet")

    def stats_langs(self, model: str, kind: str) -> list[str]:
        """Language tags of the model's ``activations`` or ``residual`` files (whether or not their shard exists)."""
        found = self._partitions(self.path(kind, f"model={model}"), "lang", f"{kind}.parquet")
        return [t for t in found if re.match(TAG_PATTERN, t)]

    def ranking(self, model: str) -> str:
        return self.path("lape", f"model={model}", "ranking.parquet")

    def lape(self, model: str) -> str:
        return self.path("lape", f"model={model}", "lape.parquet")

    def features(self, model: str, pair: str) -> str:
        return self.path("features", f"model={model}", f"pair={pair}", "features.parquet")

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


_TMP_PREFIX, _TMP_SUFFIX = ".", ".tmp"  # write_atomically's ".<name>.<pid>-<random>.tmp"
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


def remove_stale_temporaries(root: str | Path, max_age: float = 3600.0) -> list[Path]:
    """Delete the hidden ``.*.tmp`` files that killed writers left under ``root``; returns them.

    A file goes when the process named in it is gone or it is older than ``max_age`` seconds (another host's writer),
    so a concurrent writer's file in flight survives.
    """
    import time

    removed = []
    for path in Path(root).rglob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
        match = re.search(r"\.(\d+)-[0-9a-f]+\.tmp$", path.name)
        try:
            orphan = match is None or not _alive(int(match.group(1)))
            if not path.is_file() or not (orphan or time.time() - path.stat().st_mtime > max_age):
                continue
            path.unlink()
            removed.append(path)
        except FileNotFoundError:  # its writer renamed it meanwhile
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def write_atomically(path: str | Path, write) -> None:
    """Run ``write(tmp_path)`` then rename over ``path``: readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f"{_TMP_PREFIX}{path.name}.{os.getpid()}-{secrets.token_hex(6)}{_TMP_SUFFIX}")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # 0666 minus the umask, unlike mkstemp's 0600
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(table: pa.Table, path: str | Path, metadata: dict | None = None, row_group_size: int = 1 << 20) -> None:
    """Write ``table`` to ``path`` atomically (zstd; delta encoding for sorted integer keys); ``row_group_size``
    rows per row group (1: each row readable alone, as a residual file's layers are)."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"neuron_atlas": json.dumps(metadata)})
    encodings = {c: e for c, e in _ENCODINGS.items()
                 if c in table.column_names and not pa.types.is_list(table.schema.field(c).type)}
    encodings |= {f"{c}.list.element": _ENCODINGS[f"{c}.list.element"] for c in table.column_names
                  if f"{c}.list.element" in _ENCODINGS and pa.types.is_list(table.schema.field(c).type)}
    write_atomically(
        path,
        lambda tmp: pq.write_table(
            table, tmp, compression="zstd", compression_level=9,
            use_dictionary=[c for c in table.column_names if c not in encodings and f"{c}.list.element" not in encodings],
            column_encoding=encodings or None, row_group_size=row_group_size, write_page_checksum=True,
        ),
    )


def write_text(text: str, path: str | Path) -> None:
    """Write a small text file atomically."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def write_bytes(data: bytes, path: str | Path) -> None:
    """Write a binary file (safetensors, PNG) atomically."""
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


def read_parquet(path: str, kind: str, columns: list[str] | None = None, fs: Any = None) -> pa.Table:
    """Read one atlas table, checking it against the documented schema; errors name the file."""
    try:
        table = open_parquet(path, fs).read(columns=columns)
    except FileNotFoundError:
        raise AtlasFormatError(f"{path}: missing; the atlas is incomplete (expected a '{kind}' table)") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AtlasFormatError(f"{path}: not a readable Parquet file ({reason}); expected a '{kind}' table") from None
    check_schema(table.schema, kind, path, columns)
    return table


def open_parquet(path: str, fs: Any = None) -> pq.ParquetFile:
    """A ParquetFile on the local disk or an fsspec filesystem (avoids pyarrow.dataset, which imports pandas);
    pages written with a CRC are checked against it, so a flipped byte is an error rather than a wrong count."""
    return pq.ParquetFile(fs.open(path, "rb") if fs is not None else path, page_checksum_verification=True)


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
    raw = (schema.metadata or {}).get(b"neuron_atlas")
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError as exc:  # JSONDecodeError and bad UTF-8 alike
        raise AtlasFormatError(f"{path}: its neuron-atlas metadata is not valid JSON ({exc}); the file is corrupt") from None
    if not isinstance(meta, dict):
        raise AtlasFormatError(f"{path}: its neuron-atlas metadata is not a JSON object; the file is corrupt")
    return meta


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (weights, downloads, published neuron sets)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where downloads and converted models are cached: ``$NEURON_ATLAS_CACHE``, else ``~/.cache/neuron-atlas``."""
    return Path(os.environ.get("NEURON_ATLAS_CACHE") or Path.home() / ".cache" / "neuron-atlas")
