"""Rendering Arrow results for the CLI: rich tables on a terminal, CSV/JSON/Parquet for pipes and files."""
from __future__ import annotations

import io
import json
import math
import sys
from enum import Enum
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .._utils.files import write_output
from ..errors import AtlasError, InvalidParameterError


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"  # one JSON array of row objects (json.load reads it)
    jsonl = "jsonl"  # one JSON object per line
    parquet = "parquet"


def emit(table: pa.Table, fmt: Format | None, output: Path | None, title: str = "", max_rows: int = 200,
         wide: bool = False) -> None:
    """Write ``table`` as ``fmt`` to ``output`` (or stdout); default: a rich table on a terminal, CSV otherwise.

    CSV, JSON and Parquet are written as UTF-8 bytes; a write that fails (disk full, /dev/full) is an AtlasError.
    """
    if output is not None and output.is_dir():
        raise InvalidParameterError(f"--output {output} is a folder; give a file path such as {output / 'result.csv'}")
    if fmt is None:
        fmt = Format.table if output is None and sys.stdout.isatty() else Format.csv
    if fmt is Format.table:  # rich, and the table layouts, only for tables
        from rich.console import Console

        from .tables import render
    if fmt is Format.table and output is None:
        console = Console(file=sys.stdout)
        # not cropped: a word wider than the terminal (a URL) is left whole for the terminal to wrap
        console.print(render(table, title, console.width, max_rows=max_rows, wide=wide), crop=False)
        return
    if fmt is Format.parquet and output is None and sys.stdout.isatty():
        raise InvalidParameterError("--format parquet writes binary: give --output FILE or redirect stdout")
    buf = io.BytesIO()
    if fmt is Format.table:  # a table into a file: as the terminal would show it, at full width
        text = io.StringIO()
        Console(file=text, width=200).print(render(table, title, 200, max_rows=max_rows, wide=wide), crop=False)
        buf.write(text.getvalue().encode())
    elif fmt is Format.parquet:
        pq.write_table(table, buf, compression="zstd")
    elif fmt is Format.csv:
        pacsv.write_csv(table, buf)
    elif fmt is Format.jsonl:
        buf.write("".join(_json(r) + "\n" for r in _json_rows(table)).encode())
    else:
        buf.write((_json(_json_rows(table)) + "\n").encode())
    data = buf.getvalue()
    where = "stdout" if output is None else str(output)
    try:
        if output is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            write_output(output, lambda f: f.write(data))
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise AtlasError(f"cannot write {where}: {exc.strerror or exc}") from None


# String columns that hold comma-joined lists (a NeuronSet's reach column, a method's statistics): kept as one string
# in CSV and Parquet, as the library's schema has them; JSON has lists, so there they are lists.
LIST_COLUMNS = frozenset({"top_langs", "needs"})


def _json_rows(table: pa.Table) -> list[dict]:
    """The rows with NaN and infinite floats as null: JSON has no such numbers (``NaN`` would make the file
    unreadable to strict parsers), as pandas' ``to_json`` writes them; comma-joined list columns as lists."""
    joined = [n for n in table.column_names if n in LIST_COLUMNS and pa.types.is_string(table.schema.field(n).type)]

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    rows = [clean(r) for r in table.to_pylist()]
    for row in rows:
        for name in joined:
            if row[name] is not None:
                row[name] = [item for item in row[name].split(",") if item]
    return rows


def _json(value) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)
