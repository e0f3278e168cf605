"""Translation-calibrated pruning (Kim et al. 2024) and large-magnitude feature maps.

Everything here needs torch and is imported on first use. The features table these functions build is read by
``neuron_atlas._query.features`` (no torch), as ``Atlas.features`` and the ``features`` SQL view do.
"""
from __future__ import annotations

from .._utils.lazy import lazy_attributes

_LAZY = {
    "translation_calibrated": "wanda", "monolingual": "wanda", "magnitude": "wanda", "wanda_masks": "wanda",
    "magnitude_masks": "wanda", "Masks": "wanda", "input_norms": "stats", "InputNorms": "stats",
    "prunable_linears": "stats", "translation_set": "calibration", "monolingual_set": "calibration",
    "CalibrationSet": "calibration", "build_features": "feature_norms", "residual_norms": "feature_norms",
}
__all__ = sorted(_LAZY)
__getattr__ = lazy_attributes(__name__, _LAZY)
