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

from ..errors import InvalidParameterError
from .._files import write_text
from ..storage import write_parquet
from .tables import render


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def emit(table: pa.Table, fmt: Format | None, output: Path | None, title: str = "", max_rows: int = 200,
         wide: bool = False) -> None:
    """Write ``table`` as ``fmt`` to ``output`` (or stdout); default: a rich table on a terminal, CSV otherwise."""
    if output is not None and output.is_dir():
        raise InvalidParameterError(f"--output {output} is a folder; give a file path such as {output / 'result.csv'}")
    if fmt is None:
        fmt = Format.table if output is None and sys.stdout.isatty() else Format.csv
    if fmt is Format.table:
        console = Console(file=sys.stdout)
        console.print(render(table, title, console.width, max_rows=max_rows, wide=wide))
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
