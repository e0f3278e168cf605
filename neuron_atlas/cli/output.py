"""Rendering Arrow results for the CLI: rich tables on a terminal, CSV/JSON/Parquet for pipes and files."""
from __future__ import annotations

import io
import json
import sys
from enum import Enum
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from ..errors import InvalidParameterError
from .._files import write_text
from ..storage import write_parquet


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def emit(table: pa.Table, fmt: Format | None, output: Path | None, title: str = "", max_rows: int = 200) -> None:
    """Write ``table`` as ``fmt`` to ``output`` (or stdout); default: a rich table on a terminal, CSV otherwise."""
    if output is not None and output.is_dir():
        raise InvalidParameterError(f"--output {output} is a folder; give a file path such as {output / 'result.csv'}")
    if fmt is None:
        fmt = Format.table if output is None and sys.stdout.isatty() else Format.csv
    if fmt is Format.table:
        Console(file=sys.stdout).print(_rich(table, title, max_rows))
        return
    if fmt is Format.parquet:
        if output is None:
            if sys.stdout.isatty():
                raise InvalidParameterError("--format parquet writes binary: give --output FILE or redirect stdout")
            buf = io.BytesIO()
            pq.write_table(table, buf)
            sys.stdout.buffer.write(buf.getvalue())
        else:
            write_parquet(table, output)
        return
    if fmt is Format.csv:
        buf = io.BytesIO()
        pacsv.write_csv(table, buf)
        text = buf.getvalue().decode()
    else:
        text = "\n".join(json.dumps(r, default=str, ensure_ascii=False) for r in table.to_pylist()) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_text(text, output)


def _rich(table: pa.Table, title: str, max_rows: int) -> Table:
    out = Table(title=title or None, show_lines=False, header_style="bold cyan")
    for name in table.column_names:
        numeric = pa.types.is_integer(table.schema.field(name).type) or pa.types.is_floating(table.schema.field(name).type)
        out.add_column(name, justify="right" if numeric else "left")
    for row in table.slice(0, max_rows).to_pylist():
        out.add_row(*(_fmt(v) for v in row.values()))
    if table.num_rows > max_rows:
        out.caption = f"{max_rows} of {table.num_rows} rows shown; use --format csv|json|parquet for all"
    return out


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
