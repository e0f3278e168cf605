"""An independent, deliberately naive LAPE: dense [layer, neuron, language] arrays and Python loops.

Follows the formula as written in the issue and RUCAIBox identify.py, not neuron_atlas.stats.lape.
"""
from __future__ import annotations

import math

import numpy as np


def reference_sets(fired: np.ndarray, tokens: np.ndarray, top_rate: float, filter_rate: float, bar_ratio: float):
    """fired[L, d, K], tokens[K] -> {k: sorted list of (layer, neuron)} for every language k (empty included)."""
    L, d, K = fired.shape
    p = _probs(fired, tokens)
    tau_filter = _kth_smallest(p.reshape(-1).tolist(), filter_rate)
    tau_bar = _kth_smallest(p.reshape(-1).tolist(), bar_ratio)
    ranked = []
    for layer in range(L):
        for neuron in range(d):
            v = p[layer, neuron]
            if (v > tau_filter).any():
                ranked.append((round(_entropy(v), 9), layer, neuron))
    ranked.sort()
    kept = ranked[: round(L * d * top_rate)]
    return {
        k: sorted((layer, neuron) for _, layer, neuron in kept if p[layer, neuron, k] > tau_bar) for k in range(K)
    }


def _probs(fired, tokens):
    L, d, K = fired.shape
    p = np.zeros((L, d, K))
    for k in range(K):
        if tokens[k] > 0:
            p[:, :, k] = fired[:, :, k] / tokens[k]
    return p


def _kth_smallest(values, rate):
    flat = sorted(values)
    k = min(max(round(len(flat) * rate), 1), len(flat))
    return flat[k - 1]


def _entropy(v):
    s = v.sum()
    ent = 0.0
    if s > 0:
        for x in v / s:
            if x > 0:
                ent -= x * math.log(x)
    return ent


def reference_sized_sets(fired, tokens, size, filter_rate, bar_ratio):
    """Per language k: its first ``size`` neurons by (entropy, layer, neuron) among those passing the filter with
    p[k] above the bar, and how many qualified. fired[L, d, K] -> {k: (list of (layer, neuron), n_qualifying)}."""
    L, d, K = fired.shape
    p = _probs(fired, tokens)
    tau_filter = _kth_smallest(p.reshape(-1).tolist(), filter_rate)
    tau_bar = _kth_smallest(p.reshape(-1).tolist(), bar_ratio)
    out = {}
    for k in range(K):
        ok = []
        for layer in range(L):
            for neuron in range(d):
                v = p[layer, neuron]
                if (v > tau_filter).any() and v[k] > tau_bar:
                    ok.append((round(_entropy(v), 9), layer, neuron))
        ok.sort()
        out[k] = ([(layer, neuron) for _, layer, neuron in ok[:size]], len(ok))
    return out


def reference_ovr_scores(fired, tokens, q=0.95):
    """score[k, layer, neuron] = p[layer, neuron, k] − the k-th smallest p over the other languages (k = round((K-1)·q))."""
    L, d, K = fired.shape
    p = _probs(fired, tokens)
    out = np.zeros((K, L, d))
    for k in range(K):
        for layer in range(L):
            for neuron in range(d):
                others = [p[layer, neuron, j] for j in range(K) if j != k]
                out[k, layer, neuron] = p[layer, neuron, k] - _kth_smallest(others, q)
    return out


def reference_ovr_sets(fired, tokens, size, q=0.95):
    """Per language k: the ``size`` neurons with the highest positive p[k] − (k-th smallest p over the other
    languages, k = round((K-1)·q)), ties by (layer, neuron); and how many had a positive score."""
    L, d, K = fired.shape
    scores = reference_ovr_scores(fired, tokens, q)
    out = {}
    for k in range(K):
        scored = []
        for layer in range(L):
            for neuron in range(d):
                score = round(scores[k, layer, neuron], 9)
                if score > 0:
                    scored.append((-score, layer, neuron))
        scored.sort()
        out[k] = ([(layer, neuron) for _, layer, neuron in scored[:size]], len(scored))
    return out


def reference_above_bar(fired, tokens, neurons, bar_ratio):
    """The languages k with p[layer, neuron, k] above the bar on at least one of ``neurons`` [(layer, neuron)],
    and per neuron the sorted languages above the bar."""
    p = _probs(fired, tokens)
    tau_bar = _kth_smallest(p.reshape(-1).tolist(), bar_ratio)
    per = {(layer, n): sorted(k for k in range(p.shape[2]) if p[layer, n, k] > tau_bar) for layer, n in neurons}
    return sorted({k for ks in per.values() for k in ks}), per
