"""``neuron-atlas merge``: copy the models of one atlas (built elsewhere, side by side) into another."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import err


def merge_command(
    source: Annotated[Path, typer.Argument(help="atlas folder to copy models from", exists=True, file_okay=False)],
    out: Annotated[Path, typer.Argument(help="atlas folder to add them to (created if missing)")],
) -> None:
    """Add every model of SOURCE that OUT lacks, with its count shards, and derive its LAPE tables.

    A model OUT already holds from another build is kept as it is; rerunning after an interruption resumes.
    """
    from ..maintenance.merge import merge_atlas

    for slug, copied in merge_atlas(source, out).items():
        if copied is None:
            err.print(f"kept {slug}: {out} has its own build of it; not merged", highlight=False)
        else:
            err.print(f"merged {slug}: {copied} shards from {source} into {out}", highlight=False)
