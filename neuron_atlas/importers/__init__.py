"""Importers of LAPE outputs other groups published: neuron-set files and raw activation counts."""
from .activations import import_activations
from .neuron_sets import import_neuron_sets
from .registry import KNOWN, KnownFile, find_known, known

__all__ = ["KNOWN", "KnownFile", "find_known", "import_activations", "import_neuron_sets", "known"]
