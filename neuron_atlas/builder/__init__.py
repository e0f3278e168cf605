"""Build atlases: record FFN neuron firings of a causal LM per language (needs the [torch] extra).

``from neuron_atlas.builder import build, build_models`` imports torch only when used; ``build(..., ray='auto')``
spreads the shards over Ray workers (the [ray] extra).
"""
from __future__ import annotations


def __getattr__(name: str):
    if name in ("build", "build_models", "BuildReport"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module 'neuron_atlas.builder' has no attribute {name!r}")
