"""neuron-atlas: language-specific neuron atlases (LAPE) as Parquet, queried with DuckDB.

    import neuron_atlas as na
    atlas = na.open()
    atlas.neurons("gemma-3-270m", lang="tl", top="1%").to_pandas()

Stable API: the names in ``__all__`` (``open``, ``Atlas``, ``NeuronSet``, ``LapeParams``, ``AtlasWriter``, the
errors and ``AtlasWarning``), the atlas format (``format.schema``), the CLI, and the subpackages reached as attributes
(``na.methods``, ``na.masks``, ...), loaded on first use so that ``import neuron_atlas`` needs no torch. Packages
and modules named ``_private`` are internal.

Where things live, one package a line, lowest layer first; each imports only from its own layer and those listed
before it (``tests/test_structure.py`` holds the list and checks it):

- ``_utils``: private helpers (atomic files, lazy imports, settings, argument checks, progress bars); ``errors``
- ``languages``: language tags and named panels; ``catalog``: published atlases and sets per model
- ``stats``: the statistics in numpy, no I/O (the LAPE formula, moment scores, derived tables)
- ``format``: the on-disk format (table descriptions, metadata, layout, Parquet, fingerprints, containment,
  reading, writing, verifying); ``neuronset``
- ``hub`` (reading side): ``hf://`` addresses, the lazy filesystem, remote atlases
- ``methods``: selection methods (one file each) and the one registry of the statistics they read
- ``_query``: parse, plan, result, notices, SQL views, features, steering vectors; ``atlas`` (``Atlas``, ``open``)
- ``maintenance``: compact, upgrade, retag, merge; ``testing`` (synthetic atlases)
- ``modeling`` (models, FFNs, tokens), ``corpus``, ``plots``
- ``hub`` (publishing side): card, commit, publish
- ``builder``, ``importers``
- ``masks``, ``interventions`` (hooks, evaluate), ``finetune``, ``prune``
- ``explore``: the static explorer site
- ``cli``: the command line
"""
from typing import TYPE_CHECKING

from ._utils.lazy import lazy_attributes
from .errors import (
    AtlasError, AtlasFormatError, AtlasNotFoundError, AtlasWarning, InvalidParameterError, MissingStatisticsError,
    UnknownLanguageError, UnknownModelError,
)

if TYPE_CHECKING:
    from .atlas import Atlas, open  # noqa: A004 - na.open, as duckdb/zarr `open`
    from .stats.lape import LapeParams
    from .neuronset import NeuronSet

__version__ = "0.1.0"
# loaded on first use, so that `import neuron_atlas` (and the CLI's start, where a Ctrl-C must be caught) stays
# light: the query API, the writer (a local query never needs it) and the subpackages (some need torch)
__getattr__ = lazy_attributes(__name__, {
    "Atlas": "atlas", "open": "atlas", "LapeParams": "stats.lape", "NeuronSet": "neuronset",
    "AtlasWriter": "format.writer",
    **{name: name for name in ("atlas", "builder", "catalog", "corpus", "errors", "explore", "finetune", "format",
                               "hub", "importers", "interventions", "languages", "maintenance", "masks", "methods",
                               "modeling", "neuronset", "plots", "prune", "stats", "testing")},
})

__all__ = [
    "Atlas", "AtlasError", "AtlasFormatError", "AtlasNotFoundError", "AtlasWarning", "AtlasWriter",
    "InvalidParameterError", "LapeParams", "MissingStatisticsError", "NeuronSet", "UnknownLanguageError",
    "UnknownModelError", "open", "__version__",
]
