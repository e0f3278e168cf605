"""The ``neuron-atlas`` command line: one typer app, one module per command group.

Library modules never import typer or rich; every command imports the library lazily inside its body so the CLI
starts without torch or the Hub client.
"""
from __future__ import annotations

import sys
import warnings

import typer
from rich.markup import escape
from typer.exceptions import TyperException

from ..errors import (
    AtlasError, AtlasNotFoundError, AtlasWarning, InvalidParameterError, MissingStatisticsError, UnknownLanguageError,
    UnknownModelError,
)
from . import build, features, hub, importers, merge, query, steering, verify
from .examples import epilog
from ._common import err

app = typer.Typer(
    name="neuron-atlas", no_args_is_help=True, add_completion=False,
    help="Language-specific neurons of LLMs (LAPE), precomputed and queryable.",
)

# (command name, function) in help order: querying first, then building and publishing.
COMMANDS = (
    ("models", query.models), ("languages", query.languages), ("neurons", query.neurons), ("methods", query.methods),
    ("panels", query.panels), ("overlap", query.overlap), ("steering-vector", steering.steering_vector_command),
    ("sql", query.sql), ("info", query.info),
    ("build", build.build_command), ("merge", merge.merge_command), ("import", importers.import_command),
    ("features", features.features_command), ("push", hub.push_command), ("verify", verify.verify_command),
)
for _name, _command in COMMANDS:
    app.command(_name, epilog=epilog(_name))(_command)


# Errors in what the user asked for (exit 2, like a usage error; asking a v1 atlas for v2 statistics too); any other
# AtlasError is a failure (exit 1).
USAGE_ERRORS = (InvalidParameterError, UnknownModelError, UnknownLanguageError, AtlasNotFoundError,
                MissingStatisticsError)
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def main() -> None:
    """Entry point: errors become one red line on stderr (no traceback) and the exit code says what happened:
    0 done, 1 failed, 2 bad usage or input, 130 interrupted."""
    warnings.showwarning = _show_warning
    try:
        code = app(standalone_mode=False)  # returns typer.Exit's code, and 130 for Ctrl-C
    except AtlasError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        code = EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE
    except (typer.Abort, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    except OSError as exc:  # the disk refused: a folder that cannot be created, no permission, no space
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        code = EXIT_FAILURE
    except TyperException as exc:  # typer's own (vendored click) usage errors: missing argument, unknown option, bad value
        if exc.format_message().strip():  # empty after the help a bare `neuron-atlas` prints
            err.print(f"[red]error:[/] {escape(exc.format_message())}", highlight=False, soft_wrap=True)
        code = getattr(exc, "exit_code", EXIT_USAGE)
    if code == EXIT_INTERRUPTED:
        err.print("[red]interrupted[/] (work already written is kept; rerun to resume)", highlight=False, soft_wrap=True)
    sys.exit(code or 0)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as yellow lines (AtlasWarning: files left out of answers), not Python's file:line form."""
    label = "warning" if issubclass(category, AtlasWarning) else category.__name__
    err.print(f"[yellow]{label}:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


__all__ = ["app", "main"]
