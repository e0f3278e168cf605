"""What every command shares: the stderr console, common options, list splitting and opening an atlas."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .output import Format

err = Console(stderr=True)

AtlasOpt = Annotated[Optional[str], typer.Option("--atlas", "-a", help="atlas folder or hf://datasets/org/name[@rev]; default: the embedded atlas")]
FormatOpt = Annotated[Optional[Format], typer.Option("--format", "-f", metavar="<format>", help="table (terminal default), csv (pipe default), json (an array), jsonl (a row per line) or parquet")]
LangOpt = Annotated[Optional[list[str]], typer.Option("--lang", "--langs", "-l", help="language(s): tl, tgl, tgl_Latn, Tagalog; repeat or comma-separate; default all")]
WideOpt = Annotated[bool, typer.Option("--wide", help="on a terminal, keep every column in the table, wrapped at spaces however narrow, where by default the widest go under each row")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="write to this file instead of stdout")]


def split_list(values: str | list[str] | None) -> list[str] | None:
    """Comma-separated and/or repeated option values as one list (None when nothing was given)."""
    if not values:
        return None
    items = [values] if isinstance(values, str) else values
    return [v.strip() for item in items for v in item.split(",") if v.strip()] or None


def open_atlas(path: str | None):
    """The atlas at ``path`` (a folder or hf:// address), or the embedded one."""
    from .. import atlas

    return atlas.open(path)
