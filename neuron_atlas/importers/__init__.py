"""Importers of LAPE outputs other groups published: neuron-set files and raw activation counts.

Loaded on first use, so that the CLI's options (``importers.config``) cost nothing on a query's start-up.
"""
from __future__ import annotations

from .._utils.lazy import lazy_attributes

__all__ = ["KNOWN", "KnownFile", "find_known", "import_activations", "import_neuron_sets", "known"]
__getattr__ = lazy_attributes(__name__, {
    "import_activations": "activations", "import_neuron_sets": "neuron_sets",
    **dict.fromkeys(("KNOWN", "KnownFile", "find_known", "known"), "registry"),
})
