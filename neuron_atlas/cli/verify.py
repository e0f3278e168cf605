"""``neuron-atlas verify``: check every file of an atlas thoroughly; exit 1 if anything is wrong."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ._common import err


def verify_command(
    atlas: Annotated[str, typer.Argument(help="atlas folder (or hf://datasets/org/name[@rev]) to check")],
) -> None:
    """Read every file of ATLAS and check it: schemas, shard values, model rows, languages, derived tables."""
    from ..atlas import open as open_atlas
    from ..hf.address import HF_SCHEME
    from ..storage import Layout
    from ..validate import verify

    # a local folder is checked as files, not opened: opening refuses what verify is to list (symlinks out of it)
    layout = open_atlas(atlas).layout if atlas.startswith(HF_SCHEME) else Layout(atlas)
    problems = verify(layout)
    for problem in problems:
        err.print(f"[red]problem:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
    if problems:
        err.print(f"[red]{len(problems)} problems[/] in {layout.root}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    err.print(f"[green]ok:[/] {layout.root}: {len(layout.model_slugs())} models, every file checked", highlight=False, soft_wrap=True)
