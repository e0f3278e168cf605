"""Reference for the tests: pooled moments of several token groups (languages, or halves of one language's text) from per-group moments.

The atlas stores per (model, language) the token count, mean and population variance of each neuron's act(gate);
these are sufficient to merge groups exactly: the mixture's mean is the token-weighted mean, its variance the
weighted within-group variance plus the weighted spread of the group means.
"""
from __future__ import annotations

import numpy as np


def merge_moments(tokens: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(tokens, mean, population variance) of the union of groups ``k`` given ``tokens[k]``, ``mean[k, ...]``,
    ``var[k, ...]`` (float64; groups without tokens add nothing)."""
    tokens = np.asarray(tokens, dtype=np.float64)
    mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    total = tokens.sum()
    if total <= 0:
        raise ValueError("merge_moments needs at least one token")
    weights = (tokens / total).reshape((-1,) + (1,) * (mean.ndim - 1))
    pooled = (weights * mean).sum(0)
    spread = (weights * np.square(mean - pooled)).sum(0)
    return int(total), pooled, (weights * var).sum(0) + spread
