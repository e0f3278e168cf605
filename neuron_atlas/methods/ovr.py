"""``ovr``: one-vs-rest, each language's ``size`` neurons with the highest p minus the 95th percentile of p over
the other languages (positive scores only)."""
from __future__ import annotations

import numpy as np

from ..errors import InvalidParameterError
from ..stats.lape import ENTROPY_DECIMALS, kth_index
from .registry import Method, Selection, Statistics, register_method

OVR_QUANTILE = 0.95  # one-vs-rest compares a language's p with this quantile of p over all other languages


def ovr_scores(p: np.ndarray, rows: list[int], q: float = OVR_QUANTILE) -> np.ndarray:
    """score[i, n] = p[rows[i], n] − the q-quantile (LAPE's k-th smallest) of p[j, n] over all languages j ≠ rows[i]."""
    K = p.shape[0]
    if K < 2:
        raise InvalidParameterError("one-vs-rest scores need at least 2 languages")
    j = kth_index(K - 1, q)
    ordered = np.sort(p, axis=0)
    lo, hi = ordered[j], ordered[j + 1]  # removing one copy of v shifts the j-th smallest up iff v <= ordered[j]
    own = p[np.asarray(rows, dtype=np.int64)]
    return own - np.where(own > lo, lo, hi)


def ovr_sets(scores: np.ndarray, size: int) -> tuple[list[np.ndarray], list[int]]:
    """Per row of ``scores``: the ``size`` highest-scoring neurons with a positive score (ties: lower flat index).

    Returns the flat indices (best first) and how many neurons had a positive score.
    """
    picks, qualified = [], []
    for row in np.round(scores, ENTROPY_DECIMALS):
        positive = np.flatnonzero(row > 0)
        order = positive[np.lexsort((positive, -row[positive]))]
        picks.append(order[:size])
        qualified.append(int(positive.size))
    return picks, qualified


def select(stats: Statistics, rows: list[int], size: int | None) -> Selection:
    scores = ovr_scores(stats.p, rows)
    picks, qualified = ovr_sets(scores, size)
    return Selection(picks, scores=scores, qualified=qualified)


METHOD = register_method(Method(
    "ovr", select, needs=("counts",), size="required", rule="a positive one-vs-rest score",
    summary="p minus the 95th percentile of the other languages' p",
))
