"""``mean_diff``: Language Arithmetics' score (Gurgurov et al. 2025), each language's ``size`` neurons with the highest
mean act(gate) minus the mean over the other compared languages (equal weight per language), from the stored moments."""
from __future__ import annotations

from ..stats.moments import mean_diff_scores, top_scores
from .registry import Method, Selection, Statistics, register_method


def select(stats: Statistics, rows: list[int], size: int | None) -> Selection:
    mean, _, _ = stats.load("means")
    scores = mean_diff_scores(mean.reshape(len(stats.langs), -1), rows)
    return Selection(top_scores(scores, size), scores=scores)


METHOD = register_method(Method(
    "mean_diff", select, needs=("means",), size="required", rule="a score",
    summary="mean act(gate) minus the other languages' mean (Language Arithmetics)",
))
