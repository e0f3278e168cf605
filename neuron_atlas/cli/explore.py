"""The explore command: write a static explorer site of an atlas (and open it in a browser)."""
from __future__ import annotations

from typing import Annotated

import typer

from ._common import err, split_list


def explore_command(
    out: Annotated[str, typer.Option("--out", help="folder to write the site into: new, empty, or a site explore wrote (a rerun updates it)")],
    atlas: Annotated[str | None, typer.Argument(help="atlas folder or hf://datasets/org/name[@rev]; default: the embedded atlas")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="only these models (repeat or comma-separate); default all")] = None,
    open_: Annotated[bool, typer.Option("--open", help="open the site's index in the default web browser")] = False,
    force: Annotated[bool, typer.Option("--force", help="regenerate every page, even those whose inputs are unchanged")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="write into a folder that is not an explorer site (or whose .explore.json is malformed), replacing its index.html, assets/ and models/ pages")] = False,
) -> None:
    """Write a static explorer site of the atlas (no server, no network needed): models, layers, similarity, languages."""
    from ..explore import build_site

    report = build_site(atlas, out, models=split_list(model), force=force, replace=replace,
                        log=lambda line: err.print(f"  {line}", highlight=False))
    err.print(f"[green]site written to {report.out}[/]: {report.written} pages written, {report.unchanged} unchanged"
              f"{f', {report.removed} removed' if report.removed else ''} in {report.seconds:.1f} s; "
              f"open {report.index}", highlight=False, soft_wrap=True)
    if open_:
        import webbrowser

        uri = report.index.resolve().as_uri()
        if not webbrowser.open(uri):  # a headless machine: say so rather than nothing (the site is written)
            err.print(f"warning: no web browser to open {uri} (no display?); open it yourself, or set BROWSER",
                      style="yellow", highlight=False, soft_wrap=True, markup=False)
