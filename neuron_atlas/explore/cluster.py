"""Average-linkage (UPGMA) hierarchical clustering in numpy, for ordering languages so that relatives sit together."""
from __future__ import annotations

import numpy as np


def average_linkage_order(dist: np.ndarray) -> np.ndarray:
    """Leaf order of the average-linkage dendrogram of a symmetric distance matrix.

    Each step merges the two closest clusters (distance = mean pairwise distance of their members, updated by
    Lance-Williams; ties: the lowest index pair); the merged cluster lists the lower-indexed cluster's leaves first.
    O(n³) time in vectorised numpy, fine for the few hundred languages of a model.
    """
    d = np.array(dist, dtype=np.float64)
    n = d.shape[0]
    if d.shape != (n, n):
        raise ValueError(f"a distance matrix must be square, got shape {d.shape}")
    if n <= 2:
        return np.arange(n)
    d = np.where(np.isnan(d), np.nanmax(d) if np.isfinite(np.nanmax(d)) else 1.0, d)
    np.fill_diagonal(d, np.inf)
    size = np.ones(n)
    members: list[list[int]] = [[i] for i in range(n)]
    for _ in range(n - 1):
        i, j = divmod(int(np.argmin(d)), n)
        i, j = min(i, j), max(i, j)
        merged = (d[i] * size[i] + d[j] * size[j]) / (size[i] + size[j])
        d[i, :], d[:, i] = merged, merged
        d[i, i] = np.inf
        d[j, :], d[:, j] = np.inf, np.inf
        size[i] += size[j]
        members[i] += members[j]
        members[j] = []
    return np.array(members[0], dtype=np.int64)
