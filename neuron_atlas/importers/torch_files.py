"""Reading the ``torch.save`` files other LAPE code wrote; torch is imported only here, only when called."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AtlasFormatError


def _load(path: str | Path):
    try:
        import torch
    except ImportError:
        raise ImportError("reading torch.save files needs torch: pip install 'neuron-atlas[torch]'") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - pickle/zip errors of every kind
        raise AtlasFormatError(f"{path}: not a torch.save file that loads with weights_only=True ({exc})") from None


def _array(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def load_neuron_sets(path: str | Path) -> list[list[np.ndarray]]:
    """``sets[lang][layer]`` = neuron indices, from a ``list[lang][layer]`` of 1-D index tensors."""
    obj = _load(path)
    if not isinstance(obj, (list, tuple)) or not all(isinstance(x, (list, tuple)) for x in obj):
        raise AtlasFormatError(
            f"{path}: holds a {type(obj).__name__}, not a list[language][layer] of neuron index tensors "
            "(a raw activation file is a dict with 'n' and 'over_zero')"
        )
    sets = [[_array(t).astype(np.int64).ravel() for t in per_layer] for per_layer in obj]
    if any(idx.size and idx.min() < 0 for per_layer in sets for idx in per_layer):
        raise AtlasFormatError(f"{path}: holds negative neuron indices")
    return sets


def load_activation(path: str | Path) -> tuple[int, np.ndarray]:
    """``(tokens, over_zero[layers, d])`` of one language's raw activation file ``{'n': ..., 'over_zero': ...}``."""
    obj = _load(path)
    if not isinstance(obj, dict) or "n" not in obj or "over_zero" not in obj:
        raise AtlasFormatError(f"{path}: expected a dict with 'n' (tokens) and 'over_zero' ([layers × d] counts)")
    over_zero = _array(obj["over_zero"])
    if over_zero.ndim != 2:
        raise AtlasFormatError(f"{path}: 'over_zero' has shape {over_zero.shape}, expected [layers, d]")
    return int(_array(obj["n"])), over_zero.astype(np.int64)


def is_activation_file(path: str | Path) -> bool:
    """Whether the file is a raw activation dict (else it should be a neuron-set list)."""
    return isinstance(_load(path), dict)
