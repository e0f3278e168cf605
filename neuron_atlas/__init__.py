"""neuron-atlas: language-specific neuron atlases (LAPE) as Parquet, queried with DuckDB.

    import neuron_atlas as na
    atlas = na.open()
    atlas.neurons("gemma-3-270m", lang="tl", top="1%").to_pandas()

Stable API: the names in ``__all__`` (``open``, ``Atlas``, ``NeuronSet``, ``LapeParams``, ``AtlasWriter``, the
errors and ``AtlasWarning``), the atlas format (``schema``), the CLI, and the subpackages ``methods`` (register a
selection method), ``masks``, ``interventions``, ``evaluate``, ``finetune``, ``prune``, ``builder``, ``hub`` and
``explore``, loaded on first use so that ``import neuron_atlas`` needs no torch. Modules named ``_private`` are internal.

Where things live, one layer a line, lowest first; each imports only from its own layer and those above it in this
list (``tests/test_structure.py`` holds the list and checks it):

- foundations: ``errors``, ``arguments`` (checks of what callers pass), ``_files`` (atomic writes, sha256, cache
  folder), ``_lazy`` (lazy imports), ``_settings`` (a setting's default and help, written once), ``progress``
- data model: ``schema`` (one ``Table`` description per stored table), ``langs``, ``panels``, ``file_meta`` (typed
  footer metadata), ``catalog`` (published atlases and neuron sets per model)
- storage: ``storage`` (the atlas layout from the table descriptions, Parquet reads and writes), ``containment``
  (what belongs to an atlas), ``fingerprint`` (content fingerprints), ``table_checks``, ``partial_reads`` (a file's
  footer and some row groups only)
- statistics: ``lape`` (the LAPE formula), ``reader``, ``validate``, ``derived``, ``neuronset``, ``snapshot``
  (has the folder changed), ``moments`` (pooling),
  ``moment_scores`` (mean difference, Welch t, DiffMean), ``statistics`` (which v2 statistics a model holds)
- reading ``hf://`` addresses: ``hf`` (address, filesystem, remote)
- selection methods: ``methods`` (registry; ``lape``, ``ovr``, ``mean_diff``, ``t``)
- queries: ``_query`` (parse, plan, result, notices), ``sql`` (DuckDB views), ``features``, ``steering`` (DiffMean
  vectors from the residual means)
- ``atlas`` (``Atlas``, ``open``: a facade over the layers above)
- writing: ``writer`` (``AtlasWriter``), ``synthetic``, ``upgrade`` (fingerprint older atlases), ``compact``
  (rounding statistics for a small atlas), ``retag`` (canonical language tags)
- models and corpora: ``modeling``, ``corpus``, ``plots``
- publishing: ``hub`` (card, commit); building and importing: ``builder``, ``importers``
- using neuron sets: ``masks``, ``interventions``, ``evaluate``, ``finetune``, ``prune``
- the explorer site: ``explore`` (``build_site``)
- command line: ``cli``
"""
from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from .errors import (
    AtlasError, AtlasFormatError, AtlasNotFoundError, AtlasWarning, InvalidParameterError, MissingStatisticsError,
    UnknownLanguageError, UnknownModelError,
)

if TYPE_CHECKING:
    from .atlas import Atlas, open  # noqa: A004 - na.open, as duckdb/zarr `open`
    from .lape import LapeParams
    from .neuronset import NeuronSet

__version__ = "0.1.0"
# loaded on first use, so that `import neuron_atlas` (and the CLI's start, where a Ctrl-C must be caught) stays
# light: the query API, the writer (a local query never needs it), the modules reached as attributes (na.langs) and
# the heavier subpackages (torch)
__getattr__ = lazy_attributes(__name__, {
    "Atlas": "atlas", "open": "atlas", "LapeParams": "lape", "NeuronSet": "neuronset", "AtlasWriter": "writer",
    **{name: name for name in ("methods", "finetune", "interventions", "evaluate", "masks", "prune", "builder", "hub",
                               "hf", "langs", "panels", "schema", "storage", "reader", "validate", "lape", "sql",
                               "features", "synthetic", "plots", "writer", "corpus", "modeling", "importers", "atlas",
                               "neuronset", "derived", "arguments", "errors", "explore")},
})

__all__ = [
    "Atlas", "AtlasError", "AtlasFormatError", "AtlasNotFoundError", "AtlasWarning", "AtlasWriter",
    "InvalidParameterError", "LapeParams", "MissingStatisticsError", "NeuronSet", "UnknownLanguageError",
    "UnknownModelError", "open", "__version__",
]
