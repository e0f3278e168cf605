"""An independent, deliberately naive LAPE: dense [layer, neuron, language] arrays and Python loops.

Follows the formula as written in the issue and RUCAIBox identify.py, not neuron_atlas.lape.
"""
from __future__ import annotations

import math

import numpy as np


def reference_sets(fired: np.ndarray, tokens: np.ndarray, top_rate: float, filter_rate: float, bar_ratio: float):
    """fired[L, d, K], tokens[K] -> {k: sorted list of (layer, neuron)} for every language k (empty included)."""
    L, d, K = fired.shape
    p = np.zeros((L, d, K))
    for k in range(K):
        if tokens[k] > 0:
            p[:, :, k] = fired[:, :, k] / tokens[k]
    flat = np.sort(p.reshape(-1))

    def kth(rate):
        k = min(max(round(flat.size * rate), 1), flat.size)
        return flat[k - 1]

    tau_filter, tau_bar = kth(filter_rate), kth(bar_ratio)
    ranked = []
    for layer in range(L):
        for neuron in range(d):
            v = p[layer, neuron]
            if not (v > tau_filter).any():
                continue
            s = v.sum()
            ent = 0.0
            if s > 0:
                for x in v / s:
                    if x > 0:
                        ent -= x * math.log(x)
            ranked.append((round(ent, 9), layer, neuron))
    ranked.sort()
    kept = ranked[: round(L * d * top_rate)]
    return {
        k: sorted((layer, neuron) for _, layer, neuron in kept if p[layer, neuron, k] > tau_bar) for k in range(K)
    }
