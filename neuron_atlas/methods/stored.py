"""Stored rankings of the methods that score act(gate) moments, for an atlas that leaves the moments out.

The moments of a model are as large as its counts; the embedded atlas keeps counts and residual means within its
size budget and, instead of the moments, each moment method's ranking of every language's neurons against all the
model's languages, to ``DEPTH`` (1 % of L·d), computed from the float64 moments of a full build. A query asking a
method for ``size=k`` neurons per language, over all the model's languages, with k up to that depth, answers from
these rows exactly as the moments would: the picks are the ranking's first k (``stats.moments.top_scores`` orders
by score, ties by index, so a shorter list is a prefix) and the scores are the float64 ones. Every registered method
that needs moment statistics is ranked, by its own ``select``: a new method gets its rows from the same code.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..format.layout import Layout, write_parquet
from ..format.reader import MethodRanks, read_model
from ..stats.lape import LapeParams
from .registry import Selection, Statistics, get_method, method_names

DEPTH_RATE = 0.01  # neurons ranked per method and language: 1 % of L·d, the largest size= the rankings answer


def ranked_methods() -> list[str]:
    """The registered methods that read moment statistics (not only counts): those the rankings stand in for."""
    return [name for name in method_names() if set(get_method(name).needs) - {"counts"}]


def depth_of(n_layers: int, ffn_width: int) -> int:
    """Neurons ranked per method and language: ``DEPTH_RATE`` of L·d, as ``size='1%'`` counts them."""
    return round(n_layers * ffn_width * DEPTH_RATE)


def method_ranks_table(layout: Layout, slug: str, langs: list[str]) -> tuple[pa.Table, dict]:
    """The rankings of every ranked method for every one of ``langs`` against all of them, from the moments the
    atlas at ``layout`` holds, with their metadata."""
    row = read_model(layout, slug)
    depth = depth_of(row.n_layers, row.ffn_width)
    stats = Statistics(layout, row, langs, LapeParams())
    columns: dict[str, list] = {"method": [], "lang": [], "rank": [], "layer": [], "neuron": [], "score": []}
    rows = list(range(len(langs)))
    for name in ranked_methods():
        selection = get_method(name).select(stats, rows, depth)
        for i, picks in enumerate(selection.picks):
            columns["method"] += [name] * picks.size
            columns["lang"] += [langs[i]] * picks.size
            columns["rank"].append(np.arange(picks.size, dtype=np.int32))
            columns["layer"].append((picks // row.ffn_width).astype(np.int16))
            columns["neuron"].append((picks % row.ffn_width).astype(np.int32))
            columns["score"].append(selection.scores[i, picks])
    table = pa.table({"method": pa.array(columns["method"], pa.string()), "lang": pa.array(columns["lang"], pa.string()),
                      **{k: np.concatenate(columns[k]) for k in ("rank", "layer", "neuron", "score")}})
    meta = {"languages": list(langs), "depth": depth, "methods": ranked_methods(), "source": row.model_dump_json(
        include={"hf_repo", "revision", "corpus", "tokens_per_language", "dtype"})}
    return table, meta


def write_method_ranks(source: Layout, out: Layout, slug: str) -> int:
    """Rank the model's languages from ``source``'s moments and store the rankings in ``out`` (the same model,
    e.g. the compacted atlas made from ``source``); returns the rows written."""
    langs = out.count_langs(slug)
    table, meta = method_ranks_table(source, slug, langs)
    write_parquet(table, out.file("method_ranks", model=slug), meta)
    return table.num_rows


def answers(ranks: MethodRanks | None, method: str, pool: list[str], size: int | None) -> bool:
    """Whether the stored rankings answer ``method`` at ``size`` over ``pool`` (all their languages, no more)."""
    return (ranks is not None and method in ranks.meta.methods and size is not None and size <= ranks.meta.depth
            and sorted(pool) == sorted(ranks.meta.languages))


def stored_selection(ranks: MethodRanks, method: str, wanted: list[str], size: int, n: int, width: int) -> Selection:
    """The Selection the method would make for ``wanted`` at ``size``: each language's first ``size`` ranked
    neurons, with their scores in an otherwise-NaN ``[len(wanted), n]`` score matrix."""
    table = ranks.table
    mine = table.filter(pc.equal(table.column("method"), method))
    asked = pc.index_in(mine.column("lang"), pa.array(wanted, pa.string())).fill_null(-1).to_numpy()
    flat = mine.column("layer").to_numpy().astype(np.int64) * width + mine.column("neuron").to_numpy()
    rank, score = mine.column("rank").to_numpy(), mine.column("score").to_numpy()
    picks, scores = [], np.full((len(wanted), n), np.nan)
    for i in range(len(wanted)):
        rows = np.flatnonzero((asked == i) & (rank < size))
        rows = rows[np.argsort(rank[rows], kind="stable")]
        picks.append(flat[rows])
        scores[i, flat[rows]] = score[rows]
    return Selection(picks, scores=scores)
