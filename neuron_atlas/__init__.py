"""neuron-atlas: language-specific neuron atlases (LAPE) as Parquet, queried with DuckDB.

    import neuron_atlas as na
    atlas = na.open()
    atlas.neurons("gemma-3-270m", lang="tl", top="1%").to_pandas()
"""
from .atlas import Atlas, open
from .errors import (
    AtlasError, AtlasFormatError, AtlasNotFoundError, InvalidParameterError, MissingStatisticsError, UnknownLanguageError,
    UnknownModelError,
)
from .lape import LapeParams
from .neuronset import NeuronSet

__version__ = "0.1.0"
_SUBMODULES = ("finetune", "interventions", "evaluate", "masks", "prune", "builder", "hub")


def __getattr__(name: str):
    """Heavier submodules load on first use (na.finetune, na.masks, ...), so ``import neuron_atlas`` stays torch-free."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'neuron_atlas' has no attribute {name!r}")


__all__ = [
    "Atlas", "AtlasError", "AtlasFormatError", "AtlasNotFoundError", "InvalidParameterError", "LapeParams",
    "MissingStatisticsError", "NeuronSet", "UnknownLanguageError", "UnknownModelError", "open", "__version__",
]
