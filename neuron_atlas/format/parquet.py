"""Reading some row groups of a Parquet file and nothing else: its footer, then those row groups' bytes.

pyarrow fetches the last 64 kB of a file to find its footer, which for a small remote file is the whole file; here
the footer is read by its length (8 bytes, then the footer) and handed to pyarrow, and the file is opened without
read-ahead, so a lazy ``hf://`` query for one layer's residual means fetches that layer's row group and no more.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import AtlasFormatError
from .schema import PARQUET_MAGIC
from .containment import confined


def read_footer(f: Any, path: str) -> pq.FileMetaData:
    """The FileMetaData of the open Parquet file ``f``, read with two small reads from its end."""
    size = f.seek(0, 2)
    if size < 12:
        raise AtlasFormatError(f"{path}: {size} bytes, too short for a Parquet file")
    f.seek(size - 8)
    tail = f.read(8)
    (length,) = struct.unpack("<I", tail[:4])
    if tail[4:] != PARQUET_MAGIC or length + 12 > size:
        raise AtlasFormatError(f"{path}: not a readable Parquet file (no footer at its end)")
    f.seek(size - 8 - length)
    footer = f.read(length)
    return pq.read_metadata(pa.BufferReader(PARQUET_MAGIC + footer + tail))


def row_groups_where(metadata: pq.FileMetaData, column: str, values: Sequence[int]) -> list[int]:
    """Row groups whose statistics of integer ``column`` may hold one of ``values`` (all, without statistics)."""
    index = metadata.schema.names.index(column)
    wanted, out = sorted(set(values)), []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(index).statistics
        if stats is None or not stats.has_min_max or any(stats.min <= v <= stats.max for v in wanted):
            out.append(i)
    return out


def read_row_groups(path: str, fs: Any, key: str, values: Sequence[int], columns: list[str] | None = None
                    ) -> tuple[pa.Table, pq.FileMetaData]:
    """The rows of the row groups that may hold ``key`` in ``values`` (filter the rows after), and the footer.

    On an fsspec filesystem the file is opened without a read-ahead cache: the bytes fetched are the footer's and
    the chosen row groups' column chunks.
    """
    try:
        if fs is None:
            parquet = pq.ParquetFile(confined(path), page_checksum_verification=True)
            metadata = parquet.metadata
        else:
            f = fs.open(path, "rb", cache_type="none")
            metadata = read_footer(f, path)
            parquet = pq.ParquetFile(f, metadata=metadata, pre_buffer=False, page_checksum_verification=True)
        groups = row_groups_where(metadata, key, values)
        return parquet.read_row_groups(groups, columns=columns), metadata
    except FileNotFoundError:
        raise AtlasFormatError(f"{path}: missing; the atlas is incomplete") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, AtlasFormatError):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AtlasFormatError(f"{path}: not a readable Parquet file ({reason})") from None
