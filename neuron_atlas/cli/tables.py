"""Arrow tables as rich renderables that read at the terminal's width: no column is dropped and no word is cut.

Columns whose (short) value is the same on every row move into the title; numbers are formatted for what they
mean. A table that fits is a table; one that fits once its text columns wrap at spaces (never inside a word) is a
table with wrapped columns; otherwise a table of a few rows is shown one record per block (field, value), and a
longer one keeps the columns that fit and lists the others under each row. A value holding a word wider than the
terminal (a long URL) is printed whole on a line of its own, unwrapped, so the terminal's own wrapping keeps it one
line to copy or click. ``wide`` keeps every column in the table, wrapped narrower, wherever the longest words allow.
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
_GAP = 2  # spaces between columns where there is no border
_FOLD_WIDTH = 24  # a long text column may wrap down to this width (its longest word, if wider) in a table
_RECORDS_UP_TO = 5  # rows up to which a too-wide table is shown as records rather than as rows with fields under
_TITLE_VALUE_UP_TO = 40  # a constant column moves into the title only if its value is at most this long
_LABEL = "bold cyan"


def render(table: pa.Table, title: str, width: int, *, max_rows: int = 200, wide: bool = False) -> RenderableType:
    """``table`` as a renderable of at most ``width`` columns (but for words wider than that, printed whole)."""
    rows = table.slice(0, max_rows).to_pylist()
    names = [n for n in table.column_names if not rows or any(r[n] is not None for r in rows)]  # all-null: no news
    constant = [n for n in names if len(rows) > 1 and _constant(rows, n)
                and len(_fmt(n, rows[0][n])) <= _TITLE_VALUE_UP_TO] if len(names) > 1 else []
    if constant:
        fixed = ", ".join(f"{n} {_fmt(n, rows[0][n])}" for n in constant if _fmt(n, rows[0][n]) not in title)
        title = f"{title} ({fixed})" if title and fixed else title or fixed
        names = [n for n in names if n not in constant]
    cells = {n: [_fmt(n, r[n]) for r in rows] for n in names}
    numeric = {n: _numeric(table.schema.field(n).type) for n in names}
    need = {n: max([len(n)] + [len(c) for c in cells[n]]) + _PAD for n in names}
    notes = [f"{max_rows} of {table.num_rows} rows shown; use --format csv|json|parquet for all"] \
        if table.num_rows > max_rows else []
    if sum(need.values()) + 1 <= width:
        return _titled(title, _table(names, numeric, cells, len(rows), notes, None, need))
    words = {n: max([len(n)] + [len(w) for c in cells[n] for w in c.split()]) + _PAD for n in names}
    floor = {n: need[n] if numeric[n] else words[n] if wide else max(words[n], min(need[n], _FOLD_WIDTH))
             for n in names}
    if sum(floor.values()) + 1 <= width:
        widths = _spread(floor, need, width - 1)
        return _titled(title, _table(names, numeric, cells, len(rows), notes, widths, need))
    if not rows:
        return _titled(title, Group(Text(f"no rows; columns: {', '.join(names)}"), *_notes(notes)))
    if len(rows) <= _RECORDS_UP_TO:
        return _titled(title, _records(names, cells, len(rows), notes, width))
    return _titled(title, _under(names, numeric, cells, len(rows), notes, need, width))


def _titled(title: str, body: RenderableType) -> RenderableType:
    """The title on its own line(s) above the table, so a narrow table does not squeeze it."""
    return Group(Text(title, style="italic"), body) if title else body


def _spread(floor: dict[str, int], need: dict[str, int], total: int) -> dict[str, int]:
    """Column widths from ``floor`` up towards ``need``, one character at a time in turn, within ``total``."""
    widths, spare = dict(floor), total - sum(floor.values())
    while spare > 0:
        short = [n for n in widths if widths[n] < need[n]]
        if not short:
            break
        for n in short[:spare]:
            widths[n] += 1
        spare -= min(len(short), spare)
    return widths


def _table(names: list[str], numeric: dict[str, bool], cells: dict, n_rows: int, notes: list[str],
           widths: dict[str, int] | None, need: dict[str, int]) -> Table:
    """A bordered table; with ``widths``, each column that needs more than its width wraps at spaces."""
    out = Table(caption="\n".join(notes) or None, show_lines=False, header_style=_LABEL, caption_justify="left")
    for n in names:
        wraps = widths is not None and widths[n] < need[n]
        out.add_column(n, justify="right" if numeric[n] else "left", no_wrap=not wraps,
                       overflow="fold" if wraps else "ellipsis",
                       width=None if widths is None else widths[n] - _PAD, min_width=None if wraps else len(n))
    for i in range(n_rows):
        out.add_row(*(Text(cells[n][i]) for n in names))
    return out


def _records(names: list[str], cells: dict, n_rows: int, notes: list[str], width: int) -> RenderableType:
    """One (field, value) block per row: wide provenance rows stay readable at 80 columns."""
    label = max(len(n) for n in names)
    lines: list[Text] = []
    for i in range(n_rows):
        if i:
            lines.append(Text(""))
        for n in names:
            lines.extend(_field(n, cells[n][i], label, 0, width))
    return Group(*lines, *_notes(notes))


def _under(names: list[str], numeric: dict[str, bool], cells: dict, n_rows: int, notes: list[str],
           need: dict[str, int], width: int) -> RenderableType:
    """The columns that fit as aligned rows; the others (the widest text columns first, then from the right) under
    each row."""
    size = {n: need[n] - _PAD for n in names}
    kept = list(names)
    while kept and sum(size[n] for n in kept) + _GAP * (len(kept) - 1) > width:
        text = [n for n in kept[1:] if not numeric[n]]  # the first column names the row: it goes last
        kept.remove(max(reversed(text), key=lambda n: size[n]) if text else kept[-1])  # the widest, or the last
    if not kept:  # not even one column fits beside nothing: each row a block of fields
        return _records(names, cells, n_rows, notes, width)
    moved = [n for n in names if n not in kept]

    def line(values: list[str], style: str = "") -> Text:
        parts = [v.rjust(size[n]) if numeric[n] else v.ljust(size[n]) for n, v in zip(kept, values)]
        return _line((" " * _GAP).join(parts).rstrip(), style)

    lines = [line(kept, _LABEL), line(["─" * size[n] for n in kept], "dim")]
    for i in range(n_rows):
        lines.append(line([cells[n][i] for n in kept]))
        lines.extend(_packed([(n, cells[n][i]) for n in moved], _GAP, width))
    return Group(*lines, *_notes(notes))


def _packed(fields: list[tuple[str, str]], indent: int, width: int) -> list[Text]:
    """Fields as ``name  value``, several to a line where they fit; one that needs lines of its own gets them."""
    lines: list[Text] = []
    for name, value in fields:
        single = _field(name, value, len(name), 0, width - indent)
        if len(single) == 1 and lines and len(lines[-1]) + 2 * _GAP + len(single[0]) <= width and lines[-1].plain.strip():
            lines[-1].append(" " * (2 * _GAP))
            lines[-1].append_text(single[0])
        elif len(single) == 1 and len(single[0]) <= width - indent:
            lines.append(Text(" " * indent, no_wrap=True, overflow="ignore") + single[0])
        else:
            lines.extend(_field(name, value, len(name), indent, width))
            lines.append(_line(""))  # nothing joins a field that took lines of its own
    return [line for line in lines if line.plain]


def _field(name: str, value: str, label: int, indent: int, width: int) -> list[Text]:
    """``name`` then ``value``, wrapped at spaces under itself; where a word does not fit beside the name, the value
    goes on the lines below, indented (or from the left margin); a word wider than the terminal puts the whole value
    on one line of its own."""
    prefix = " " * indent + name.ljust(label) + " " * _GAP
    beside = _wrap(value, width - len(prefix))
    if beside:
        return [_labelled(prefix + beside[0], name, indent)] + [_line(" " * len(prefix) + rest) for rest in beside[1:]]
    head = _labelled(prefix.rstrip(), name, indent)
    if beside is not None:  # no value
        return [head]
    for pad in (indent + _GAP, 0):  # under the name, indented; else from the left margin
        below = _wrap(value, width - pad)
        if below is not None:
            return [head] + [_line(" " * pad + part) for part in below]
    return [head, _line(value)]  # a word wider than the terminal: the value whole on one line, for the terminal to wrap


def _labelled(text: str, name: str, indent: int) -> Text:
    line = _line(text)
    line.stylize(_LABEL, indent, indent + len(name))
    return line


def _line(text: str, style: str = "") -> Text:
    """One line as it is: never wrapped or cut by rich (the layouts above keep it within the width, but for a word
    wider than the terminal, which the terminal wraps and keeps whole)."""
    return Text(text, style=style, no_wrap=True, overflow="ignore")


def _wrap(text: str, width: int) -> list[str] | None:
    """``text`` in lines of at most ``width`` characters, broken at spaces only; None if a word is wider."""
    lines: list[str] = []
    for word in text.split():
        if len(word) > width:
            return None
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _notes(notes: list[str]) -> list[Text]:
    return [Text(note, style="italic") for note in notes]


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
