"""The ``neuron-atlas`` command line: one typer app (``commands.py``), one module per command group.

Library modules never import typer or rich; every command imports the library lazily inside its body so the CLI
starts without torch or the Hub client. This module imports nothing heavy, so a Ctrl-C while the rest loads is
caught like any other (exit 130, no traceback).
"""
from __future__ import annotations

import sys

from .._utils.lazy import lazy_attributes

EXIT_INTERRUPTED = 130


def main() -> None:
    """Entry point: errors become one line on stderr (no traceback unless --debug) and the exit code says what
    happened: 0 done, 1 failed, 2 bad usage or input, 130 interrupted."""
    try:
        from .commands import run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    run()


# ``app``, ``COMMANDS`` and ``USAGE_ERRORS`` load with the commands on first use
__getattr__ = lazy_attributes(__name__, dict.fromkeys(("app", "COMMANDS", "USAGE_ERRORS"), "commands"))

__all__ = ["app", "main"]
