"""``t``: Welch's t-statistic of each neuron's act(gate), the language's tokens against all the other compared
languages' tokens pooled (their exact mixture moments), from the stored moments; the ``size`` highest per language."""
from __future__ import annotations

from ..stats.moments import top_scores, welch_t_scores
from .registry import Method, Selection, Statistics, register_method


def select(stats: Statistics, rows: list[int], size: int | None) -> Selection:
    mean, var, tokens = stats.load("moments")
    k = len(stats.langs)
    scores = welch_t_scores(mean.reshape(k, -1), var.reshape(k, -1), tokens, rows)
    return Selection(top_scores(scores, size), scores=scores)


METHOD = register_method(Method(
    "t", select, needs=("moments",), size="required", rule="a finite t statistic",
    summary="Welch t of act(gate) against the other languages' tokens pooled",
))
