"""Scores from per-language activation moments, in numpy: Language Arithmetics' mean difference, Welch's t against
the pooled other languages, and residual-stream DiffMean vectors.

Inputs are the stored sufficient statistics of each language k: ``mean[k, n]`` and ``var[k, n]`` (population
variance, divided by the token count) of act(gate) of neuron n (flat over layer × neuron) over ``tokens[k]`` tokens.
For a target t and its others O, every function here is exact arithmetic on those statistics; nothing is torch.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidParameterError

SCORE_DECIMALS = 9  # scores are compared after rounding, so equal scores tie exactly; ties go to the lower (layer, neuron)
_ROUNDING = 64 * np.finfo(np.float64).eps  # relative size of the rounding left in a variance taken as differences
_CHUNK = 32  # targets scored at once: bounds memory to a few [_CHUNK, n] float64 arrays


def mean_diff_scores(mean: np.ndarray, rows: list[int]) -> np.ndarray:
    """score[i, n] = μ_t[n] − (1/|O|) Σ_{l∈O} μ_l[n] for t = rows[i] and O every other row (equal weight per language)."""
    K = mean.shape[0]
    if K < 2:
        raise InvalidParameterError("mean differences need at least 2 languages")
    total = mean.sum(axis=0)
    own = mean[np.asarray(rows, dtype=np.int64)]
    return own - (total - own) / (K - 1)


def welch_t_scores(mean: np.ndarray, var: np.ndarray, tokens: np.ndarray, rows: list[int]) -> np.ndarray:
    """score[i, n] = (μ_t − μ_O) / sqrt(σ²_t/N_t + σ²_O/N_O) for t = rows[i] and O all other rows' tokens pooled.

    μ_O, σ²_O, N_O are the exact mixture moments of O (the within- plus the between-language variance, Σ_k N_k (σ²_k + (μ_k − μ_O)²) / N_O), obtained as the whole pool minus t,
    shifted by the whole pool's mean so that no large sums cancel (what is left below their rounding is 0). A zero
    denominator (both sides constant) scores 0 where the means agree and ±inf where they differ: the neuron separates
    the languages perfectly.
    """
    K = mean.shape[0]
    if K < 2:
        raise InvalidParameterError("t statistics need at least 2 languages")
    n = np.asarray(tokens, dtype=np.float64)
    if (n <= 0).any():
        raise InvalidParameterError("t statistics need tokens in every language compared")
    total = float(n.sum())
    d = mean - (n @ mean) / total  # every language's mean, shifted by the pool's
    q = np.square(d)
    q += var  # E_l[(x − center)²] per language
    s1, s2 = n @ d, n @ q  # Σ N_l d_l (0 up to rounding), Σ N_l E_l[(x − center)²]
    out = np.empty((len(rows), mean.shape[1]))
    for start in range(0, len(rows), _CHUNK):  # in place on [_CHUNK, n] temporaries: few passes over memory
        idx = np.asarray(rows[start:start + _CHUNK], dtype=np.int64)
        nt = n[idx][:, None]
        no = total - nt
        dt = d[idx]
        mo = s1 - nt * dt
        mo /= no  # μ_O − center
        own = q[idx]
        own *= nt
        second = s2 - own
        second /= no  # E_O[(x − center)²]
        own += s2
        own /= no
        own += second
        own *= _ROUNDING  # the rounding left in a variance taken as this difference
        vo = second - np.square(mo)
        vo[vo <= own] = 0.0
        vo /= no
        se = var[idx] / nt
        se += vo
        np.sqrt(se, out=se)
        dt -= mo  # μ_t − μ_O
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.divide(dt, se, out=out[start:start + idx.size])
        flat = se == 0
        if flat.any():
            t[flat] = np.where(dt[flat] == 0, 0.0, np.copysign(np.inf, dt[flat]))
    return out


def top_scores(scores: np.ndarray, size: int) -> list[np.ndarray]:
    """Per row of ``scores``: the flat indices of its ``size`` highest scores (over all layers), best first.

    Scores are rounded to ``SCORE_DECIMALS`` and ties go to the lower flat index, i.e. to (layer, neuron) order.
    NaN scores are never picked.
    """
    picks = []
    n = scores.shape[1]
    k = min(size, n)
    for row in scores:
        key = np.round(np.where(np.isnan(row), -np.inf, row), SCORE_DECIMALS)
        if k < n:  # every index scoring at least the k-th best, ties included, then the exact order among them
            cut = np.partition(key, n - k)[n - k]
            candidates = np.flatnonzero(key >= cut)
        else:
            candidates = np.arange(n)
        order = candidates[np.lexsort((candidates, -key[candidates]))][:k]
        picks.append(order[np.isfinite(key[order]) | (key[order] > 0)])
    return picks


def diff_mean_weights(n: int, target: int, others: list[int]) -> np.ndarray:
    """Weights c over ``n`` languages with Σ_k c_k m_k = m_t − (1/|O|) Σ_{l∈O} m_l: 1 for the target, −1/|O| for
    each other language (a language listed twice counts twice)."""
    if not others:
        raise InvalidParameterError("a DiffMean vector needs at least one other language")
    if target in others:
        raise InvalidParameterError("the target language cannot be among the languages it is contrasted with")
    weights = np.zeros(n)
    np.add.at(weights, np.asarray(others, dtype=np.int64), -1.0 / len(others))
    weights[target] = 1.0
    return weights


def diff_mean(means: np.ndarray, target: int, others: list[int]) -> np.ndarray:
    """DiffMean: m_t − (1/|O|) Σ_{l∈O} m_l over residual means ``means[k, ...]`` (equal weight per language), as one
    weighted sum over all rows (no copy of the rows picked): one matrix-vector product per layer."""
    return np.tensordot(diff_mean_weights(means.shape[0], target, others), means, axes=1)
