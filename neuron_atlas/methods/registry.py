"""The registry of neuron selection methods: each declares its name, the statistics it reads, whether it takes
``size=``, and ``select``; ``Atlas.neurons(method=...)`` looks it up here (PEFT ``register_peft_method`` style)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, Literal

import numpy as np

from ..errors import InvalidParameterError, did_you_mean
from ..stats.lape import LapeParams, LapeResult, activation_probs, lape
from ..format.reader import load_counts, load_moments
from ..format.schema import ModelRow
from ..format.layout import Layout

# statistic name -> reader of it for (layout, model row, languages); a new stored statistic is one line here
LOADERS: dict[str, Callable[[Layout, ModelRow, list[str]], Any]] = {
    "counts": load_counts,  # (fired [k, n], tokens [k])
    "moments": load_moments,  # act(gate) (mean [k, L, d], var [k, L, d], tokens [k]); format v2
    "means": partial(load_moments, var=False),  # the same with var None: half the bytes read
}


class Statistics:
    """The statistics of the compared languages (``langs``, rows of every matrix), each read on first use."""

    def __init__(self, layout: Layout, row: ModelRow, langs: list[str], params: LapeParams) -> None:
        self.layout, self.row, self.langs, self.params = layout, row, list(langs), params
        self._loaded: dict[str, Any] = {}

    def load(self, name: str) -> Any:
        """The statistic ``name`` (a key of ``LOADERS``: 'counts' gives (fired [k, n], tokens [k]))."""
        if name not in self._loaded:
            if name not in LOADERS:
                raise InvalidParameterError(f"no reader for the statistic {name!r}; known: {', '.join(LOADERS)}")
            self._loaded[name] = LOADERS[name](self.layout, self.row, self.langs)
        return self._loaded[name]

    @property
    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        return self.load("counts")

    @cached_property
    def p(self) -> np.ndarray:
        """Activation probabilities p[k, n] (flat n = layer · ffn_width + neuron)."""
        return activation_probs(*self.counts)

    @cached_property
    def lape(self) -> LapeResult:
        """LAPE's ranking, entropies and thresholds over these languages at ``params``."""
        return lape(*self.counts, self.params)


@dataclass(frozen=True)
class Selection:
    """What a method picked for each asked language (rows of the query, in order).

    ``picks[i]``: flat neuron indices, best first. ``scores`` [asked, n]: the score of every neuron (the result's
    ``score`` column, and ``rank`` is the position within the language); None: ``rank`` is the LAPE rank and
    ``score`` null. ``qualified[i]``: how many neurons could be picked (a notice when fewer than ``size``).
    """

    picks: list[np.ndarray]
    scores: np.ndarray | None = None
    qualified: list[int] | None = None


@dataclass(frozen=True)
class Method:
    """A neuron selection method. ``select(stats, rows, size)`` picks neurons for the languages ``stats.langs[r]``
    of ``rows``; ``size`` is the neurons per language (None: LAPE's global share ``stats.params.top_rate``)."""

    name: str
    select: Callable[[Statistics, list[int], int | None], Selection]
    needs: tuple[str, ...] = ("counts",)  # statistics it reads (keys of LOADERS: counts, moments, means)
    size: Literal["optional", "required"] = "required"  # whether size= may be left out
    stored: bool = False  # whether an atlas' stored lape table answers its queries without size=
    rule: str = "a positive score"  # what qualifies a neuron, for the notice "only n neurons have <rule>"
    summary: str = ""  # one line for help texts


_REGISTRY: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Make ``method`` usable by name in ``Atlas.neurons(method=...)`` and ``neuron-atlas neurons --method``."""
    if method.name in _REGISTRY and not replace:
        raise InvalidParameterError(f"a method named {method.name!r} is already registered; pass replace=True")
    unknown = [n for n in method.needs if n not in LOADERS]
    if unknown:
        raise InvalidParameterError(f"method {method.name!r} needs {unknown}, which no reader provides "
                                    f"(statistics: {', '.join(LOADERS)})")
    _REGISTRY[method.name] = method
    return method


def method_names() -> list[str]:
    """The registered methods' names, in registration order."""
    return list(_REGISTRY)


def get_method(name: str) -> Method:
    """The method registered as ``name``; a misspelt name suggests the registered ones."""
    if not isinstance(name, str) or name not in _REGISTRY:
        near = did_you_mean(name, _REGISTRY) if isinstance(name, str) else ""
        raise InvalidParameterError(f"method must be one of {', '.join(_REGISTRY)}, got {name!r}.{near}".rstrip("."))
    return _REGISTRY[name]
