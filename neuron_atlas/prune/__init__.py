"""Translation-calibrated pruning (Kim et al. 2024) and large-magnitude feature maps.

The pruning functions need torch and are imported on first use, so ``neuron_atlas.prune.features`` (the query
helpers) works without the [torch] extra. The query ``features(atlas_root, model, pair, top)`` lives in
``neuron_atlas.prune.features`` (a submodule of the same name, so it is not re-exported here).
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "translation_calibrated": "wanda", "monolingual": "wanda", "magnitude": "wanda", "wanda_masks": "wanda",
    "magnitude_masks": "wanda", "Masks": "wanda", "input_norms": "stats", "InputNorms": "stats",
    "prunable_linears": "stats", "translation_set": "calibration", "monolingual_set": "calibration",
    "CalibrationSet": "calibration", "build_features": "features", "overlap": "features",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'neuron_atlas.prune' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
