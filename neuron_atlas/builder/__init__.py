"""Build atlases: record FFN neuron firings of a causal LM per language (needs the [torch] extra).

``from neuron_atlas.builder import build, build_models`` imports torch only when used; ``build(..., ray='auto')``
spreads the shards over Ray workers (the [ray] extra).
"""
from __future__ import annotations

from .._utils.lazy import lazy_attributes

__all__ = ["BuildReport", "build", "build_models"]
__getattr__ = lazy_attributes(__name__, dict.fromkeys(__all__, "run"))
