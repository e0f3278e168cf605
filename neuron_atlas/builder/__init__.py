"""Build atlases: record FFN neuron firings of a causal LM per language (needs the [torch] extra).

``from neuron_atlas.builder import build`` imports torch only when used.
"""
from __future__ import annotations


def __getattr__(name: str):
    if name in ("build", "BuildReport"):
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module 'neuron_atlas.builder' has no attribute {name!r}")
