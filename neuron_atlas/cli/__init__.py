"""The ``neuron-atlas`` command line: one typer app, one module per command group.

Library modules never import typer or rich; every command imports the library lazily inside its body so the CLI
starts without torch or the Hub client.
"""
from __future__ import annotations

import sys

import typer

from ..errors import AtlasError
from . import build, features, hub, importers, merge, query
from ._common import err

app = typer.Typer(
    name="neuron-atlas", no_args_is_help=True, add_completion=False,
    help="Language-specific neurons of LLMs (LAPE), precomputed and queryable.",
)

# (command name, function) in help order: querying first, then building and publishing.
COMMANDS = (
    ("models", query.models), ("languages", query.languages), ("neurons", query.neurons),
    ("panels", query.panels), ("overlap", query.overlap), ("sql", query.sql), ("info", query.info),
    ("build", build.build_command), ("merge", merge.merge_command), ("import", importers.import_command),
    ("features", features.features_command), ("push", hub.push_command),
)
for _name, _command in COMMANDS:
    app.command(_name)(_command)


def main() -> None:
    """Entry point: run the app, turning neuron-atlas errors into one red line and exit code 2."""
    try:
        app(standalone_mode=False)
    except AtlasError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


__all__ = ["app", "main"]
