"""The registries of the statistics an atlas stores and of the neuron selection methods that read them.

A statistic (``STATISTICS``) names the table holding it, its reader and its description: the methods, the errors
for what an atlas lacks and the CLI's method list all read it. A method declares its name, the statistics it needs,
whether it takes ``size=``, and ``select``; ``Atlas.neurons(method=...)`` looks it up here (PEFT
``register_peft_method`` style)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, Literal

import numpy as np

from ..errors import InvalidParameterError, did_you_mean
from ..stats.lape import LapeParams, LapeResult, activation_probs, lape
from ..format.reader import load_counts, load_moments, load_residual
from ..format.schema import ModelRow
from ..format.layout import Layout


@dataclass(frozen=True)
class Statistic:
    """One stored statistic: the table (``format.schema.TABLES``) whose files hold it, the reader giving its values
    for (layout, model row, languages, the counts shards' token counts to check them against), and one line saying
    what it is."""

    name: str
    table: str
    load: Callable[[Layout, ModelRow, list[str], Mapping[str, int] | None], Any]
    description: str


def _counts(layout: Layout, row: ModelRow, langs: list[str], tokens: Mapping[str, int] | None) -> Any:
    """The counts themselves: where the token counts come from (whether the derived tables still match them is
    the cheap checks' question)."""
    return load_counts(layout, row, langs)


# Every statistic a method may need; a new stored statistic is one entry here (and its table's description).
STATISTICS: dict[str, Statistic] = {s.name: s for s in (
    Statistic("counts", "counts", _counts, "LAPE firing counts (every atlas)"),  # (fired [k, n], tokens [k])
    Statistic("moments", "activations", partial(load_moments, var=True),  # (mean [k, L, d], var [k, L, d], tokens [k])
              "mean and variance of each neuron's act(gate) (format v2)"),
    Statistic("means", "activations", partial(load_moments, var=False),  # var None: half the bytes read
              "mean of each neuron's act(gate) (format v2)"),
    Statistic("residual", "residual", load_residual,  # (mean [k, n_layers + 1, hidden], tokens [k])
              "mean residual-stream hidden state per layer (format v2)"),
)}


class Statistics:
    """The statistics of the compared languages (``langs``, rows of every matrix), each read on first use."""

    def __init__(self, layout: Layout, row: ModelRow, langs: list[str], params: LapeParams,
                 tokens: Mapping[str, int] | None = None) -> None:
        self.layout, self.row, self.langs, self.params, self.tokens = layout, row, list(langs), params, tokens
        self._loaded: dict[str, Any] = {}

    def load(self, name: str) -> Any:
        """The statistic ``name`` (a key of ``STATISTICS``: 'counts' gives (fired [k, n], tokens [k]))."""
        if name not in self._loaded:
            if name not in STATISTICS:
                raise InvalidParameterError(f"no reader for the statistic {name!r}; known: {', '.join(STATISTICS)}")
            self._loaded[name] = STATISTICS[name].load(self.layout, self.row, self.langs, tokens=self.tokens)
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
    needs: tuple[str, ...] = ("counts",)  # statistics it reads (keys of STATISTICS)
    size: Literal["optional", "required"] = "required"  # whether size= may be left out
    stored: bool = False  # whether an atlas' stored lape table answers its queries without size=
    rule: str = "a positive score"  # what qualifies a neuron, for the notice "only n neurons have <rule>"
    summary: str = ""  # one line for help texts


_REGISTRY: dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Make ``method`` usable by name in ``Atlas.neurons(method=...)`` and ``neuron-atlas neurons --method``."""
    if method.name in _REGISTRY and not replace:
        raise InvalidParameterError(f"a method named {method.name!r} is already registered; pass replace=True")
    unknown = [n for n in method.needs if n not in STATISTICS]
    if unknown:
        raise InvalidParameterError(f"method {method.name!r} needs {unknown}, which no reader provides "
                                    f"(statistics: {', '.join(STATISTICS)})")
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
