"""A neurons query parsed and validated: the method, its rates and size, the compared languages (``among=``, a
list or a panel) and the asked ones, in the order the errors have always been raised."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .._utils import arguments
from ..languages import tags as langs_mod
from ..languages import panels as panels_mod
from ..errors import did_you_mean, InvalidParameterError, UnknownLanguageError
from ..stats.lape import LapeParams, parse_size, parse_top
from ..methods import Method, get_method
from ..format.schema import ModelRow
from .notices import panel_notice


@dataclass(frozen=True)
class Query:
    """One validated ``neurons`` query of one model."""

    row: ModelRow
    method: Method
    params: LapeParams
    size: int | None  # neurons per language; None: LAPE's global share params.top_rate
    pool: list[str]  # the languages compared, canonical tags
    wanted: list[str]  # the languages asked for, in the pool
    among: Any  # as given
    notices: dict[str, str] = field(default_factory=dict)
    top_given: bool = True  # False: top was left unset (1%, or an imported set's published rate)

    def meta(self, revision: str | None) -> dict[str, Any]:
        """The query's parameters as a NeuronSet records them."""
        return {"method": self.method.name, "size": self.size, "top_rate": self.params.top_rate,
                "filter_rate": self.params.filter_rate, "bar_ratio": self.params.bar_ratio,
                "among": None if self.among is None else self.pool,
                "panel": self.among if panels_mod.is_panel_name(self.among) else None, "revision": revision}


def parse_query(row: ModelRow, languages: Callable[[], list[str]], lang: Any, top: str | float | None,
                size: int | str | None, method: str, filter_rate: float, bar_ratio: float, among: Any) -> Query:
    """Validate the arguments of ``Atlas.neurons`` against the model (``languages()``: its languages; ``top`` None:
    the default 1%)."""
    params = LapeParams(parse_top("1%" if top is None else top), filter_rate, bar_ratio)
    if top is not None and size is not None:
        raise InvalidParameterError(f"give top= (LAPE's share of all neurons, one set size for every language) or "
                                    f"size= (neurons per language), not both: got top={top!r}, size={size!r}")
    chosen = get_method(arguments.name(method, "method", "a registered method such as 'lape' or 'ovr'"))
    if chosen.size == "required" and size is None:
        raise InvalidParameterError(f"method={method!r} ranks each language's neurons by score: give size= "
                                    "(e.g. 500 or '0.5%')")
    n = None if size is None else parse_size(size, row.n_layers * row.ffn_width)
    available = languages()
    pool, notices = compared(row.model, among, available)
    if lang is None:
        wanted = list(pool)
    else:
        wanted = unique(langs_mod.resolve(x, available, context=f"model {row.model!r}") for x in tag_list(lang, "lang"))
        outside = [w for w in wanted if w not in pool]
        if outside:
            raise InvalidParameterError(f"{outside} not in among={pool}; LAPE can only assign languages it compares")
    return Query(row, chosen, params, n, pool, wanted, among, notices, top_given=top is not None)


def compared(model: str, among: Any, available: list[str]) -> tuple[list[str], dict[str, str]]:
    """The languages compared (all, a list, or a panel's languages the model has) and a notice for a panel."""
    if among is None:
        return list(available), {}
    context, notices = f"model {model!r}", {}
    if panels_mod.is_panel_name(among):
        arguments.name(among, "among", "'diverse-10' (a panel) or ['tl', 'id']")
        if among.strip() not in panels_mod.names():
            raise InvalidParameterError(
                f"among={among!r} is one name, which is no panel ({', '.join(panels_mod.names())}), and one language "
                f"cannot be compared: give a panel or two or more languages, e.g. among=['tl', 'id']."
                f"{did_you_mean(among.strip(), panels_mod.names())}")
        pool, missing = [], []
        for code in panels_mod.panel(among):
            try:
                pool.append(langs_mod.resolve(code, available, context=context))
            except UnknownLanguageError:
                missing.append(code)
        pool = unique(pool)
        if missing:
            notices["among"] = panel_notice(among, missing, model, len(pool))
    else:
        pool = unique(langs_mod.resolve(a, available, context=context) for a in tag_list(among, "among"))
    if len(pool) < 2:
        raise InvalidParameterError(f"among= needs at least 2 languages to compare, got {among!r}")
    return pool, notices


def tag_list(value: Any, name: str) -> list[str]:
    """``lang=``/``among=`` as a list of tags: a string is one tag or comma-separated tags ('tl,id'); each printable."""
    return arguments.names(value, f"{name}=", "'tl', 'tl,id' or ['tl', 'id']")


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
