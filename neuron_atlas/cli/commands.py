"""The typer app of ``neuron-atlas`` and how its outcomes become exit codes and one-line messages on stderr.

Each command's module is imported, and its click command built, only when that command runs (or a help lists it):
the query commands start without the builder's, importers' or Hub's modules.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from collections.abc import Iterator, MutableMapping
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from ..errors import (
    AtlasError, AtlasNotFoundError, AtlasWarning, InvalidParameterError, MissingStatisticsError, UnknownLanguageError,
    UnknownModelError,
)
from ._common import say
from .examples import epilog
from .wording import cli_words

PROG = "neuron-atlas"

# (command name, "module:function" of this package) in help order: querying first, then building and publishing.
COMMANDS = (
    ("models", "query:models"), ("languages", "query:languages"), ("neurons", "query:neurons"),
    ("methods", "query:methods"), ("panels", "query:panels"), ("overlap", "query:overlap"),
    ("steering-vector", "steering:steering_vector_command"), ("sql", "query:sql"), ("info", "query:info"),
    ("explore", "explore:explore_command"),
    ("build", "build:build_command"), ("merge", "merge:merge_command"), ("import", "importers:import_command"),
    ("features", "features:features_command"), ("push", "hub:push_command"), ("export", "hub:export_command"),
    ("verify", "verify:verify_command"), ("migrate-tags", "verify:migrate_tags_command"),
)
_TARGETS = dict(COMMANDS)


def _plain_flags(params) -> None:
    """Flags take no value: show none in --help (typer would show ``<bool>`` beside ``--wide`` and ``--help``)."""
    for param in params:
        if getattr(param, "is_flag", False) and getattr(param, "metavar", None) is None:
            param.metavar = ""


def _reflow(text: str | None) -> str | None:
    """Help text as paragraphs: the line breaks of a docstring inside a paragraph become spaces, so the terminal's
    width decides where lines end (rich keeps the breaks of every paragraph after the first)."""
    if not text:
        return text
    paragraphs = text.partition("\f")[0].strip().split("\n\n")  # after \f: for developers, never shown
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


class _Command(TyperCommand):
    """A command whose --help reads at any width: paragraphs reflowed, flags without a type."""

    def format_help(self, ctx, formatter) -> None:
        _plain_flags(self.get_params(ctx))
        return super().format_help(ctx, formatter)


class _Commands(MutableMapping):
    """The group's commands by name, each built on first use from ``COMMANDS``."""

    def __init__(self, built: MutableMapping) -> None:
        self._built = dict(built)

    def __getitem__(self, name: str):
        if name not in self._built:
            if name not in _TARGETS:
                raise KeyError(name)
            self._built[name] = _build(name)
        return self._built[name]

    def __setitem__(self, name: str, command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*_TARGETS, *self._built]))

    def __len__(self) -> int:
        return len(set(_TARGETS) | set(self._built))


class _Group(TyperGroup):
    """The app's group: commands listed in ``COMMANDS`` order and built only when asked for."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands)

    def list_commands(self, ctx) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx, name: str):
        return self.commands.get(name)

    def format_help(self, ctx, formatter) -> None:
        _plain_flags(self.get_params(ctx))
        return super().format_help(ctx, formatter)


def _build(name: str):
    """The click command ``name``: its module imported now, its function wrapped by typer as a one-command app."""
    module, function = _TARGETS[name].split(":")
    single = typer.Typer(add_completion=False)
    single.command(name, cls=_Command, epilog=epilog(name))(getattr(importlib.import_module(f"{__package__}.{module}"),
                                                                      function))
    command = typer.main.get_command(single)
    command.help = _literal(_reflow(command.help))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = _literal(param.help)
    return command


def _literal(text: str | None) -> str | None:
    """Help text shown as written: rich would read ``[@rev]`` or ``[ray]`` as markup and drop it."""
    return text and re.sub(r"(?<!\\)\[(?=[a-z#/@])", r"\\[", text)  # rich's tags start so


app = typer.Typer(
    name=PROG, cls=_Group, no_args_is_help=True, add_completion=True,
    help="Language-specific neurons of LLMs (LAPE), precomputed and queryable.",
)
_DEBUG = {"on": False}


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"neuron-atlas {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an error")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    """Language-specific neurons of LLMs (LAPE), precomputed and queryable."""
    _DEBUG["on"] = debug


# Errors in what the user asked for (exit 2, like a usage error; asking a v1 atlas for v2 statistics too); any other
# AtlasError is a failure (exit 1).
USAGE_ERRORS = (InvalidParameterError, UnknownModelError, UnknownLanguageError, AtlasNotFoundError,
                MissingStatisticsError)
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 1, 2, 130, 141


def run() -> None:
    """Run the app on ``sys.argv`` and exit with its code (see ``neuron_atlas.cli.main``)."""
    _tolerate_encoding()
    warnings.showwarning = _show_warning
    try:
        code = app(standalone_mode=False, prog_name=PROG)  # returns typer.Exit's code, and 130 for Ctrl-C
        sys.stdout.flush()  # a failed write to stdout is an error now, not a message at exit
    except AtlasError as exc:
        code = _error(exc, EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURE)
    except (typer.Abort, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout stopped reading (`| head`): nothing more to say
        code = EXIT_BROKEN_PIPE
    except OSError as exc:  # the disk refused: a folder that cannot be created, no permission, no space
        code = _error(exc, EXIT_FAILURE, f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else None)
    except TyperException as exc:  # typer's own (vendored click) usage errors: missing argument, unknown option, bad value
        if exc.format_message().strip():  # empty after the help a bare `neuron-atlas` prints
            _error(exc, EXIT_USAGE, exc.format_message())
        code = getattr(exc, "exit_code", EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen failure: still one line, the traceback on --debug
        code = _error(exc, EXIT_FAILURE, f"{type(exc).__name__}: {exc} (a bug? rerun with --debug for the traceback)")
    if code == EXIT_INTERRUPTED:
        say("interrupted", "red", "work already written is kept; rerun to resume", wrap=False)
    if code:
        _silence_stdout()
    sys.exit(code or 0)


def _error(exc: BaseException, code: int, message: str | None = None) -> int:
    """Print ``error: <one line>`` on stderr (and the traceback with --debug); return ``code``."""
    if _DEBUG["on"]:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    text = " ".join(str(message or exc).split()) or type(exc).__name__
    if isinstance(exc, (InvalidParameterError, MissingStatisticsError)):  # the library's size= is --size here
        text = cli_words(text)
    say("error", "red", text, wrap=False)
    return code


def _tolerate_encoding() -> None:
    """On a terminal that cannot show every character (LANG=C, PYTHONIOENCODING=ascii), print what it cannot as
    escapes instead of failing; data written as CSV/JSON/Parquet is UTF-8 whatever the terminal."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and (stream.encoding or "").lower().replace("-", "") != "utf8":
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a closed or detached stream
                pass


def _silence_stdout() -> None:
    """After a failure, point stdout at /dev/null so Python's flush at exit adds no second message."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as yellow lines (AtlasWarning: files left out of answers), not Python's file:line form."""
    label = "warning" if issubclass(category, AtlasWarning) else category.__name__
    say(label, "yellow", str(message), wrap=False)
