"""Settings written once, PEFT-config style: a dataclass field carries its default and its help text, and both the
library function and the CLI option read them from there."""
from __future__ import annotations

from dataclasses import field, fields
from typing import Any


def setting(default: Any, help: str) -> Any:
    """A dataclass field with ``default`` and ``help`` (in its metadata)."""
    return field(default=default, metadata={"help": help})


def help_of(cls: type, name: str) -> str:
    """The help text of ``cls``'s field ``name`` (KeyError naming the fields if there is none)."""
    for f in fields(cls):
        if f.name == name:
            return f.metadata["help"]
    raise KeyError(f"{cls.__name__} has no setting {name!r}; it has {', '.join(f.name for f in fields(cls))}")
