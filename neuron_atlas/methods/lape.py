"""``lape``: LAPE's language-specific neurons (Tang et al. 2024), the formula in ``neuron_atlas.stats.lape``: the global
top share of lowest-entropy neurons, or with ``size=`` each language's ``size`` lowest in entropy above the bar."""
from __future__ import annotations

from ..stats.lape import sized_sets
from .registry import Method, Selection, Statistics, register_method


def select(stats: Statistics, rows: list[int], size: int | None) -> Selection:
    result, p = stats.lape, stats.p
    if size is None:  # the kept share, each neuron to every language whose p exceeds the bar
        chosen = result.selected(stats.params.top_rate)
        return Selection([chosen[p[k, chosen] > result.tau_bar] for k in rows])
    picks, qualified = sized_sets(p, result, rows, size)
    return Selection(picks, qualified=qualified)


METHOD = register_method(Method(
    "lape", select, needs=("counts",), size="optional", stored=True,
    rule="p above the bar among neurons passing the filter", summary="lowest entropy (LAPE)",
))
