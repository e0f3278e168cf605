"""Where a query's answer comes from: a model's imported sets, its stored sets (the fast path: same languages and
rates, and the derived files pass validation), or the method run on the statistics of the compared languages."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..format.derived import STORED_TOP_RATE
from ..errors import AtlasError, InvalidParameterError, MissingStatisticsError
from ..stats.lape import LapeParams, LapeResult, entropy, quantile
from ..methods import Selection, Statistics
from ..format.reader import Derived, MethodRanks
from ..methods.availability import require
from ..methods.stored import answers, stored_selection
from ..format.layout import Layout
from .notices import short_notices, tiny_notices
from .parse import Query
from .result import finish, flat_index, lang_sizes, selection_table, with_reach

RATE_TOL = 1e-12


def answer(layout: Layout, query: Query, derived: Derived | None, available: list[str],
           derived_ok: Callable[[], bool], method_ranks: Callable[[], MethodRanks | None] = lambda: None,
           ) -> tuple[pa.Table, dict[str, str], dict[str, Any]]:
    """The rows answering ``query``, its notices, and what to add to its parameters (an imported set's source).

    ``derived``: the model's stored sets (or None); ``available``: its languages; ``derived_ok()``: whether its
    derived files pass the cheap checks (asked only when the stored sets could answer); ``method_ranks()``: the
    stored rankings of the moment methods (asked only when the atlas lacks the moments a method needs)."""
    notices = dict(query.notices)
    model = query.row.model
    ranks = None
    try:  # format-v2 statistics (imported sets and v1 atlases have none): which are missing, the command building them
        require(layout, query.row, query.pool, query.method.needs, lambda: available)
    except MissingStatisticsError:
        ranks = method_ranks()
        if not answers(ranks, query.method.name, query.pool, query.size):
            raise
    if derived is not None and derived.imported:
        if not query.method.stored or query.size is not None:
            raise InvalidParameterError(f"model {model!r} holds imported neuron sets without statistics; size= and "
                                        "method= need the counts of an atlas built with neuron-atlas")
        return imported(query, derived, notices), notices, {"source": derived.meta.get("source"),
                                                            "top_rate": derived.stored_top_rate}
    if query.size is None and query.method.stored and stored_answers(query, derived, available, derived_ok):
        return stored(query, derived, notices), notices, {}
    return recompute(layout, query, notices, derived.tokens if derived is not None else None, ranks), notices, {}


def stored_answers(query: Query, derived: Derived | None, available: list[str], derived_ok: Callable[[], bool]) -> bool:
    """Whether the stored sets answer the query: same languages and rates, and the derived files pass validation
    (derived from the present shards, not tampered beyond the footers' ranges)."""
    if derived is None:
        return False
    meta, params, pool = derived.meta, query.params, query.pool
    return (
        sorted(meta["languages"]) == sorted(available) and sorted(pool) == sorted(available)
        and abs(meta["filter_rate"] - params.filter_rate) < RATE_TOL
        and abs(meta["bar_ratio"] - params.bar_ratio) < RATE_TOL
        and params.top_rate <= meta["stored_top_rate"] + RATE_TOL
        and derived_ok()
    )


def stored(query: Query, derived: Derived, notices: dict[str, str]) -> pa.Table:
    """The stored sets cut at the asked share, with reach columns computed from the stored rows' p."""
    row, params, wanted = query.row, query.params, query.wanted
    table, meta = derived.table, derived.meta
    k = round(row.n_layers * row.ffn_width * params.top_rate)
    kept = table.filter(pc.and_(pc.less(table.column("rank"), k), pc.is_in(table.column("lang"), pa.array(wanted))))
    tags, width = list(meta["languages"]), row.ffn_width
    flat_all, lang_all = flat_index(table, width), pc.index_in(table.column("lang"), pa.array(tags)).to_numpy()
    p_all = table.column("p").to_numpy()

    def columns(flat: np.ndarray) -> np.ndarray:  # p of every language on neurons ranked within the stored top
        inside = np.isin(flat_all, flat)
        out = np.zeros((len(tags), flat.size))
        out[lang_all[inside], np.searchsorted(flat, flat_all[inside])] = p_all[inside]
        return out

    def wider(lang: str) -> np.ndarray:
        return np.unique(flat_all[lang_all == tags.index(lang)])

    kept = with_reach(kept, columns, meta["tau_bar"], tags, width)
    notices.update(tiny_notices(lang_sizes(kept), wanted, params.top_rate, columns, wider, meta["tau_bar"], tags))
    return finish(kept, row.model)


def imported(query: Query, derived: Derived, notices: dict[str, str]) -> pa.Table:
    """Published sets at their one published rate: the default ``top`` answers it (with a notice when it is not 1%);
    another asked rate, ``among=`` or other LAPE rates cannot be computed without statistics and say what can be."""
    table, meta, params, model = derived.table, derived.meta, query.params, query.row.model
    stored_rate, source = derived.stored_top_rate, meta.get("source")
    published = f"top='{stored_rate * 100:g}%'"
    if query.among is not None or (params.filter_rate, params.bar_ratio) != (LapeParams.filter_rate, LapeParams.bar_ratio):
        raise InvalidParameterError(
            f"model {model!r} holds neuron sets imported from {source} at {published} with no statistics, so "
            f"among= and other filter/bar rates cannot be computed; ask {published} with default rates"
        )
    if query.top_given and abs(params.top_rate - stored_rate) > RATE_TOL:
        raise InvalidParameterError(
            f"model {model!r} holds neuron sets imported from {source}, published at {published} only (no "
            f"statistics to rank other shares); ask {published}, or leave top unset to get them"
        )
    if not query.top_given and abs(stored_rate - LapeParams.top_rate) > RATE_TOL:
        notices["top"] = (f"{model}: imported sets from {source}, answered at their published {published} (the only "
                          f"rate they hold), not the default top='{LapeParams.top_rate * 100:g}%'")
    return finish(table.filter(pc.is_in(table.column("lang"), pa.array(query.wanted))), model)


def recompute(layout: Layout, query: Query, notices: dict[str, str], tokens: dict[str, int] | None = None,
              ranks: MethodRanks | None = None) -> pa.Table:
    """The method run on the statistics of the compared languages (``tokens``: the counts shards' token counts
    the statistics files must repeat), or its picks read from the stored rankings ``ranks`` (``methods.stored``)."""
    row, pool, wanted, size, method = query.row, query.pool, query.wanted, query.size, query.method
    if not pool:
        raise AtlasError(f"model {row.model!r} has no count shards")
    stats = Statistics(layout, row, pool, query.params, tokens)
    rows = [pool.index(w) for w in wanted]
    if ranks is not None:
        selection = stored_selection(ranks, method.name, wanted, size, row.n_layers * row.ffn_width, row.ffn_width)
    else:
        for need in method.needs:
            stats.load(need)
        selection = method.select(stats, rows, size)
    p = stats.p
    uses_ranking = "counts" in method.needs or selection.scores is None
    result = stats.lape if uses_ranking else _bar_and_entropies(p, selection, query.params)
    table = selection_table(p, result, pool, rows, selection, row.ffn_width)
    if size is not None and selection.qualified is not None:
        notices.update(short_notices(wanted, selection.qualified, size, method.rule))
    table = with_reach(table, lambda flat: p[:, flat], result.tau_bar, pool, row.ffn_width)
    if size is None:
        def wider(lang: str) -> np.ndarray:
            chosen = result.selected(STORED_TOP_RATE)
            return np.sort(chosen[p[pool.index(lang), chosen] > result.tau_bar])

        notices.update(tiny_notices(lang_sizes(table), wanted, query.params.top_rate, lambda flat: p[:, flat], wider,
                                    result.tau_bar, pool))
    return finish(table, row.model)


def _bar_and_entropies(p: np.ndarray, selection: Selection, params: LapeParams) -> LapeResult:
    """What the rows of a method scoring other statistics take from the counts: LAPE's bar (the reach columns) and
    the picked neurons' entropies, without ranking every neuron (no ``order`` nor filter; other entropies NaN)."""
    flat = np.unique(np.concatenate(selection.picks)) if selection.picks else np.zeros(0, np.int64)
    ent = np.full(p.shape[1], np.nan)
    ent[flat] = entropy(p[:, flat])
    return LapeResult(order=np.zeros(0, np.int64), entropy=ent, tau_filter=float("nan"),
                      tau_bar=quantile(p, params.bar_ratio), n_neurons=p.shape[1])
