"""Arrow tables as rich tables that read at the terminal's width: no column is ever cut to a few characters.

Columns whose value is the same on every row move into the title; numbers are formatted for what they mean;
what does not fit is left out with a caption saying so (``--wide`` wraps every column instead), and a table of a
few rows with many columns is shown one record per block (field, value), as ``models`` needs.
"""
from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

# Identifiers: shown as plain integers, never with thousands separators.
_ID_COLUMNS = {"layer", "neuron", "rank", "dim", "n_layers", "ffn_width", "hidden_size", "seq_len", "index", "seed"}
# Shares and probabilities: three decimals read better than four significant digits.
_SHARE_COLUMNS = {"p", "score", "share", "jaccard", "coverage", "top_rate", "rate", "overlap", "fraction"}
_PAD = 3  # a column's border and padding, in characters
_FOLD_WIDTH = 24  # a long text column may wrap down to this width before columns are dropped
_RECORDS_UP_TO = 5  # rows under which a too-wide table is shown as records instead of dropping columns


def render(table: pa.Table, title: str, width: int, *, max_rows: int = 200, wide: bool = False) -> RenderableType:
    """``table`` as a renderable of at most ``width`` columns (``wide``: every column, wrapped)."""
    rows = table.slice(0, max_rows).to_pylist()
    names = [n for n in table.column_names if not rows or any(r[n] is not None for r in rows)]  # all-null: no news
    constant = [n for n in names if len(rows) > 1 and _constant(rows, n)] if len(names) > 1 else []
    if constant:
        fixed = ", ".join(f"{n} {_fmt(n, rows[0][n])}" for n in constant if _fmt(n, rows[0][n]) not in title)
        title = f"{title} ({fixed})" if title and fixed else title or fixed
        names = [n for n in names if n not in constant]
    cells = {n: [_fmt(n, r[n]) for r in rows] for n in names}
    need = {n: max([len(n)] + [len(c) for c in cells[n]]) + _PAD for n in names}
    notes = [f"{max_rows} of {table.num_rows} rows shown; use --format csv|json|parquet for all"] \
        if table.num_rows > max_rows else []
    foldable = {n for n in names if not _numeric(table.schema.field(n).type) and need[n] > _FOLD_WIDTH}
    if wide or sum(need.values()) + 1 <= width:
        return _titled(title, _table(table, names, cells, len(rows), notes, set(names) if wide else set()))
    if sum(min(need[n], _FOLD_WIDTH) if n in foldable else need[n] for n in names) + 1 <= width:
        return _titled(title, _table(table, names, cells, len(rows), notes, foldable))
    if len(rows) <= _RECORDS_UP_TO:
        return _titled(title, _records(names, cells, len(rows)))
    shown, used = [], 1
    for n in names:
        if used + need[n] > width and shown:
            continue
        shown.append(n)
        used += need[n]
    hidden = [n for n in names if n not in shown]
    notes.append(f"not shown: {', '.join(hidden)} (--wide wraps them in; --format csv has every column)")
    return _titled(title, _table(table, shown, cells, len(rows), notes, set()))


def _titled(title: str, body: RenderableType) -> RenderableType:
    """The title on its own line(s) above the table, so a narrow table does not squeeze it."""
    return Group(Text(title, style="italic"), body) if title else body


def _table(table: pa.Table, names: list[str], cells: dict, n_rows: int, notes: list[str], fold: set[str]) -> Table:
    out = Table(caption="\n".join(notes) or None, show_lines=False, header_style="bold cyan", caption_justify="left")
    for n in names:
        numeric = _numeric(table.schema.field(n).type)
        out.add_column(n, justify="right" if numeric else "left", no_wrap=n not in fold,
                       overflow="fold" if n in fold else "ellipsis", min_width=None if n in fold else len(n))
    for i in range(n_rows):
        out.add_row(*(cells[n][i] for n in names))
    return out


def _records(names: list[str], cells: dict, n_rows: int) -> RenderableType:
    """One two-column (field, value) block per row: wide provenance rows stay readable at 80 columns."""
    blocks: list[RenderableType] = []
    for i in range(n_rows):
        block = Table(show_header=False, box=None, padding=(0, 1))
        block.add_column(style="bold cyan", no_wrap=True)
        block.add_column(overflow="fold")
        for n in names:
            block.add_row(n, cells[n][i])
        blocks.append(block)
        if i < n_rows - 1:
            blocks.append(Text(""))
    return Group(*blocks)


def _constant(rows: list[dict], name: str) -> bool:
    first = rows[0][name]
    return all(r[name] == first for r in rows)


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _fmt(name: str, value) -> str:
    """A cell as a person reads it: shares to 3 decimals, large counts with separators, times to the minute."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if name in _SHARE_COLUMNS or name.startswith(("p_", "share")):
            return f"{value:.3f}"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int):
        return str(value) if name in _ID_COLUMNS or abs(value) < 10_000 else f"{value:,}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    text = str(value)
    return text.replace(",", ", ") if "," in text and " " not in text else text  # tag lists wrap at commas
