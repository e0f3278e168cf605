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
    from ..hub.address import HF_SCHEME
    from ..format.layout import Layout
    from ..format.verify import verify

    # a local folder is checked as files, not opened: opening refuses what verify is to list (symlinks out of it)
    layout = open_atlas(atlas).layout if atlas.startswith(HF_SCHEME) else Layout(atlas)
    problems = verify(layout)
    for problem in problems:
        err.print(f"[red]problem:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)
    if problems:
        err.print(f"[red]{len(problems)} problems[/] in {layout.root}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    err.print(f"[green]ok:[/] {layout.root}: {len(layout.model_slugs())} models, every file checked", highlight=False, soft_wrap=True)


def migrate_tags_command(
    atlas: Annotated[str, typer.Argument(help="local atlas folder whose languages to store under their canonical tags")],
) -> None:
    """Rename languages stored under another code than their canonical tag (swa_Latn -> swh_Latn), atomically.

    The canonical tags are listed, with the rule, in neuron_atlas/data/language_tags.csv; `verify` names the atlases
    that need this. Built models are derived again from their renamed shards.
    """
    from ..maintenance.retag import migrate_tags

    mapping = migrate_tags(atlas)
    if not mapping:
        err.print(f"[green]ok:[/] {escape(atlas)}: every language is already under its canonical tag", highlight=False)
        return
    listing = ", ".join(f"{old} -> {new}" for old, new in sorted(mapping.items()))
    err.print(f"[green]migrated[/] {escape(atlas)}: {escape(listing)}", highlight=False, soft_wrap=True)
