"""The one lazy-import idiom of the package: a module ``__getattr__`` that imports a name's submodule on first use,
so that ``import neuron_atlas`` (and a package's import) stays light and torch-free."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for ``package``: ``where[name]`` names the submodule (relative to ``package``) holding
    ``name``; a name equal to its submodule's is the submodule itself (``na.masks``)."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f".{where[name]}", package)
        return module if where[name] == name else getattr(module, name)

    return __getattr__
