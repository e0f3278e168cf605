"""What every command shares: the stderr console, common options, list splitting and opening an atlas."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .output import Format


class _Stderr:
    """The stderr console, made on first use: rich loads only when something is printed through it."""

    def __init__(self) -> None:
        self._console = None

    @property
    def console(self):
        """The rich Console itself (for what needs one: progress bars)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.console, name)


err = _Stderr()


def say(label: str, style: str, text: str, *, wrap: bool = True) -> None:
    """``label: text`` on stderr: through rich on a terminal (``label`` in ``style``; ``wrap``: at its width), and
    as one plain line where stderr is a file or a pipe, as a log wants it (rich is not even loaded then)."""
    if not (sys.stderr.isatty() or os.environ.get("FORCE_COLOR")):
        sys.stderr.write(f"{label}: {text}\n")
        return
    from rich.markup import escape

    err.print(f"[{style}]{label}:[/] {escape(text)}", highlight=False, soft_wrap=not wrap)


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
