"""``neuron-atlas push``: publish an atlas folder to a Hugging Face dataset repo, or show the commit (dry run)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

LicenseOpt = Annotated[Optional[str], typer.Option(
    help="licence of the data, a Hub licence id (default: the sources' own; 'unknown' where one states none)")]


def push_command(
    atlas: Annotated[str, typer.Argument(help="atlas folder to publish, or 'embedded' (the atlas installed with the package)")],
    repo: Annotated[str, typer.Option("--repo", help="dataset repo id, e.g. org/name")],
    revision: Annotated[str, typer.Option(help="branch to commit to")] = "main",
    create_pr: Annotated[bool, typer.Option("--create-pr", help="open a pull request instead of committing")] = False,
    token: Annotated[str | None, typer.Option(help="Hub token (default: HF_TOKEN or the saved login)")] = None,
    private: Annotated[bool, typer.Option("--private", help="create the repo private if it does not exist")] = False,
    license: LicenseOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the commit's files and sizes; send nothing")] = False,
) -> None:
    """Publish ATLAS to the Hugging Face dataset repo REPO as one commit with a generated data card."""
    from ..hub.publish import plan_commit, push

    atlas = _folder(atlas)
    console = Console()
    if dry_run:
        ops, _ = plan_commit(atlas, repo, license=license)
        table = Table("path in repo", "bytes", title=f"commit to {repo}@{revision} (dry run: nothing sent)")
        for op in ops:
            table.add_row(op.path_in_repo, f"{op.upload_info.size:,}")
        console.print(table)
        return
    info = push(atlas, repo, revision=revision, create_pr=create_pr, token=token, private=private or None,
                license=license)
    console.print(f"published {atlas} to {info.commit_url}" + (f" (pull request {info.pr_url})" if info.pr_url else ""))


def export_command(
    atlas: Annotated[str, typer.Argument(help="atlas folder to export, or 'embedded' (the atlas installed with the package)")],
    folder: Annotated[str, typer.Argument(help="new (or empty) folder to write the Hub layout into")],
    repo: Annotated[Optional[str], typer.Option("--repo", help="dataset repo id the card names (default: local/<folder name>)")] = None,
    license: LicenseOpt = None,
) -> None:
    """Write ATLAS in the Hub layout into FOLDER: exactly the files `push` would commit, data card included, so
    `datasets.load_dataset(FOLDER, config)` works offline."""
    from ..hub.publish import export

    atlas = _folder(atlas)
    paths = export(atlas, folder, repo, license=license)
    Console(stderr=True).print(f"exported {len(paths)} files of {atlas} to {folder}", highlight=False)


def _folder(atlas: str) -> Path:
    """The local atlas folder ATLAS names: a path, or 'embedded' for the atlas installed with the package."""
    from ..atlas import EMBEDDED
    from ..errors import InvalidParameterError

    if atlas == "embedded":
        return EMBEDDED
    path = Path(atlas)
    if not path.is_dir():
        raise InvalidParameterError(f"atlas {atlas!r} is not a folder; give an atlas folder, or 'embedded' for the "
                                    "atlas installed with the package")
    return path
