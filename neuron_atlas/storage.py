"""Where atlas files live (the folder layout) and how they are written: atomically, never in place."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import AtlasFormatError
from .schema import ARROW_SCHEMAS

# Parquet encodings per column: sorted keys delta/RLE-encode to almost nothing, so a count costs
# about the entropy of its value (see benchmarks/query.py for bytes per statistic).
_ENCODINGS = {"neuron": "DELTA_BINARY_PACKED", "fired": "DELTA_BINARY_PACKED", "rank": "DELTA_BINARY_PACKED"}


@dataclass(frozen=True)
class Layout:
    """Paths of every table of the atlas rooted at ``root`` (see ``schema`` for the tree)."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "atlas.json"

    @property
    def languages(self) -> Path:
        return self.root / "languages.parquet"

    def model(self, model: str) -> Path:
        return self.root / "models" / f"model={model}" / "model.parquet"

    def counts_dir(self, model: str) -> Path:
        return self.root / "counts" / f"model={model}"

    def counts(self, model: str, lang: str) -> Path:
        return self.counts_dir(model) / f"lang={lang}" / "counts.parquet"

    def ranking(self, model: str) -> Path:
        return self.root / "lape" / f"model={model}" / "ranking.parquet"

    def lape(self, model: str) -> Path:
        return self.root / "lape" / f"model={model}" / "lape.parquet"

    def model_slugs(self) -> list[str]:
        folder = self.root / "models"
        return sorted(p.name[6:] for p in folder.glob("model=*") if (p / "model.parquet").is_file())

    def count_langs(self, model: str) -> list[str]:
        folder = self.counts_dir(model)
        return sorted(p.name[5:] for p in folder.glob("lang=*") if (p / "counts.parquet").is_file())


def _replace_atomically(path: Path, write) -> None:
    """Run ``write(tmp_path)`` then rename over ``path``: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_parquet(table: pa.Table, path: Path, metadata: dict | None = None) -> None:
    """Write ``table`` to ``path`` atomically (zstd; delta encoding for sorted integer keys)."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"neuron_atlas": json.dumps(metadata)})
    encodings = {c: e for c, e in _ENCODINGS.items() if c in table.column_names}
    _replace_atomically(
        path,
        lambda tmp: pq.write_table(
            table, tmp, compression="zstd", compression_level=9,
            use_dictionary=[c for c in table.column_names if c not in encodings],
            column_encoding=encodings or None, row_group_size=1 << 20,
        ),
    )


def write_text(text: str, path: Path) -> None:
    """Write a small text file atomically."""
    _replace_atomically(path, lambda tmp: Path(tmp).write_text(text))


def read_parquet(path: Path, kind: str, columns: list[str] | None = None) -> pa.Table:
    """Read one atlas table, checking it against the documented schema; errors name the file."""
    try:
        table = pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise AtlasFormatError(f"{path}: missing; the atlas is incomplete (expected a '{kind}' table)") from None
    except (pa.ArrowException, OSError) as exc:
        raise AtlasFormatError(f"{path}: not a readable Parquet file ({exc}); expected a '{kind}' table") from None
    check_schema(table.schema, kind, path, columns)
    return table


def check_schema(schema: pa.Schema, kind: str, path: Path, columns: list[str] | None = None) -> None:
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


def file_metadata(table_or_schema: pa.Table | pa.Schema) -> dict:
    """The neuron-atlas JSON metadata stored in a Parquet file's schema, or {}."""
    schema = table_or_schema.schema if isinstance(table_or_schema, pa.Table) else table_or_schema
    raw = (schema.metadata or {}).get(b"neuron_atlas")
    return json.loads(raw) if raw else {}
