"""The LAPE formula (Tang et al. 2024, RUCAIBox/Language-Specific-Neurons ``identify.py``), in numpy.

Inputs are the sufficient statistic: ``fired[k, n]`` tokens of language k on which neuron n
(flattened over layer × neuron) fired, and ``tokens[k]``. Everything here is pure numpy: no
I/O, no Arrow (``format.derived`` turns a result into the rows the atlas stores).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._utils import arguments
from ..errors import InvalidParameterError

# Entropies are compared after rounding to this many decimals, so that mathematically equal
# entropies (e.g. permuted probability vectors) tie exactly whatever the summation order; ties
# are then broken by flat index, i.e. by (layer, neuron).
ENTROPY_DECIMALS = 9


@dataclass(frozen=True)
class LapeParams:
    """The three LAPE rates: share of neurons kept, filter quantile, and activation-bar quantile."""

    top_rate: float = 0.01
    filter_rate: float = 0.95
    bar_ratio: float = 0.95

    def __post_init__(self) -> None:
        for name in ("top_rate", "filter_rate", "bar_ratio"):
            arguments.number(getattr(self, name), name, 0.0, 1.0, low_open=True)


def parse_top(top: str | float) -> float:
    """'1%' -> 0.01, 0.01 -> 0.01; the share must lie in (0, 100%]."""
    if isinstance(top, str):
        text = top.strip()
        try:
            value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise InvalidParameterError(f"top must be a share like '1%' or 0.01, got {top!r}") from None
        if math.isnan(value) or not 0 < value <= 1:
            raise InvalidParameterError(f"top must lie in (0, 100%], got {top!r}")
        return value
    return arguments.number(top, "top", 0.0, 1.0, low_open=True, expected="a share in (0, 1] like 0.01 or '1%'")


def parse_size(size: int | str, n_neurons: int) -> int:
    """Neurons per language: 500 -> 500, '0.5%' -> round(n_neurons · 0.005) (at least 1)."""
    if isinstance(size, str) and size.strip().endswith("%"):
        return max(round(n_neurons * parse_top(size)), 1)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 1:
        return arguments.integer(size, "size", 1, expected=f"a number of neurons from 1 to {arguments.MAX_COUNT:,} "
                                 f"(the model has {n_neurons:,}), or a share like '0.5%'")
    raise InvalidParameterError(f"size must be a number of neurons (>= 1) or a share of all neurons like '0.5%', got {size!r}")


def kth_index(n: int, rate: float) -> int:
    """0-based position of the reference's ``kthvalue(round(n * rate))`` (k-th smallest, clamped to [1, n])."""
    return min(max(round(n * rate), 1), n) - 1


def quantile(p: np.ndarray, rate: float) -> float:
    """The reference's quantile: the k-th smallest of all values with k = round(N * rate)."""
    flat = p.reshape(-1)
    i = kth_index(flat.size, rate)
    return float(np.partition(flat, i)[i])


def activation_probs(fired: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """p[k, n] = fired / tokens (0 for a language with no tokens), float64."""
    tokens = np.asarray(tokens, dtype=np.float64)
    safe = np.where(tokens > 0, tokens, 1.0)
    return np.asarray(fired, dtype=np.float64) / safe[:, None]


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy over languages of p̃ = p / Σ_k p, per neuron (0 where Σ_k p = 0; 0·log 0 = 0)."""
    total = p.sum(axis=0)
    norm = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    logs = np.log(norm, out=np.zeros_like(norm), where=norm > 0)
    return -(norm * logs).sum(axis=0)


def rank_neurons(ent: np.ndarray, passes: np.ndarray) -> np.ndarray:
    """Flat indices of neurons passing the filter, ordered by (rounded entropy, flat index)."""
    candidates = np.flatnonzero(passes)
    keys = np.round(ent[candidates], ENTROPY_DECIMALS)
    return candidates[np.argsort(keys, kind="stable")]


@dataclass(frozen=True)
class LapeResult:
    """Everything LAPE derives from one (fired, tokens) matrix under one set of rates."""

    order: np.ndarray  # flat neuron indices passing the filter, best (lowest entropy) first
    entropy: np.ndarray  # [n] per-neuron entropy
    tau_filter: float
    tau_bar: float
    n_neurons: int

    def selected(self, top_rate: float) -> np.ndarray:
        """Flat indices of the round(n·top_rate) kept neurons (fewer if fewer pass the filter)."""
        return self.order[: round(self.n_neurons * top_rate)]


def lape(fired: np.ndarray, tokens: np.ndarray, params: LapeParams = LapeParams()) -> LapeResult:
    """Run LAPE on ``fired[k, n]`` / ``tokens[k]``; see ``language_sets`` and ``lape_table`` for the sets."""
    p = activation_probs(fired, tokens)
    tau_filter = quantile(p, params.filter_rate)
    tau_bar = tau_filter if params.bar_ratio == params.filter_rate else quantile(p, params.bar_ratio)
    ent = entropy(p)
    order = rank_neurons(ent, (p > tau_filter).any(axis=0))
    return LapeResult(order=order, entropy=ent, tau_filter=tau_filter, tau_bar=tau_bar, n_neurons=p.shape[1])


def language_sets(fired: np.ndarray, tokens: np.ndarray, params: LapeParams = LapeParams()) -> list[np.ndarray]:
    """Per language k, the sorted flat indices of its language-specific neurons (possibly empty)."""
    result = lape(fired, tokens, params)
    chosen = np.sort(result.selected(params.top_rate))
    p = activation_probs(fired[:, chosen], tokens)
    return [chosen[p[k] > result.tau_bar] for k in range(p.shape[0])]


# --- per-language sizes and reach -----------------------------------------------------------------------------
def sized_sets(p: np.ndarray, result: LapeResult, rows: list[int], size: int) -> tuple[list[np.ndarray], list[int]]:
    """Per row k of ``p``: its ``size`` lowest-entropy neurons among those passing the filter with p[k] > bar.

    LAPE's own definition of a language's neurons with a per-language size instead of one global share. Returns
    the flat indices (best first) and how many neurons qualified (``size`` may exceed it).
    """
    above = p[np.asarray(rows, dtype=np.int64)][:, result.order] > result.tau_bar
    picks = [result.order[np.flatnonzero(row)[:size]] for row in above]
    return picks, [int(n) for n in above.sum(axis=1)]


def reach(p: np.ndarray, tau_bar: float, tags: list[str], few: int = 5) -> tuple[np.ndarray, list[str]]:
    """Per column (neuron) of ``p[k, m]``: how many languages' p exceed the bar, and the top ``few`` of them by p."""
    above = p > tau_bar
    count = above.sum(axis=0).astype(np.int32)
    names = np.asarray(tags, dtype=object)
    order = np.argsort(-np.where(above, p, -1.0), axis=0, kind="stable")[:few]
    tops = [",".join(names[order[:min(c, few), i]]) for i, c in enumerate(count)]
    return count, tops
