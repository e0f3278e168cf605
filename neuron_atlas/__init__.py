"""neuron-atlas: language-specific neuron atlases (LAPE) as Parquet, queried with DuckDB.

    import neuron_atlas as na
    atlas = na.open()
    atlas.neurons("gemma-3-270m", lang="tl", top="1%").to_pandas()
"""
from typing import TYPE_CHECKING

from .errors import (
    AtlasError, AtlasFormatError, AtlasNotFoundError, InvalidParameterError, UnknownLanguageError, UnknownModelError,
)

if TYPE_CHECKING:
    from .atlas import Atlas, open
    from .lape import LapeParams
    from .neuronset import NeuronSet

__version__ = "0.1.0"
# Names loaded on first use, so `import neuron_atlas` (and the CLI's start, which a Ctrl-C may interrupt) stays light.
_LAZY = {"Atlas": "atlas", "open": "atlas", "LapeParams": "lape", "NeuronSet": "neuronset"}


def __getattr__(name: str):
    """``Atlas``, ``open``, ... and the submodules (na.langs, na.finetune, na.masks, ...) load on first use, so
    ``import neuron_atlas`` stays torch-free and quick."""
    import importlib
    import importlib.util

    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'neuron_atlas' has no attribute {name!r}")


__all__ = [
    "Atlas", "AtlasError", "AtlasFormatError", "AtlasNotFoundError", "InvalidParameterError", "LapeParams",
    "NeuronSet", "UnknownLanguageError", "UnknownModelError", "open", "__version__",
]
