"""The rows a query returns: a method's picks as (lang, layer, neuron, p, entropy, rank, score), the reach columns
(n_langs, top_langs), the NeuronSet schema and order; and the coverage and overlap tables built from a set."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..stats.lape import LapeResult, quantile, reach
from ..methods import Selection
from ..neuronset import SCHEMA, NeuronSet


def flat_index(table: pa.Table, width: int) -> np.ndarray:
    """Flat neuron indices (layer · width + neuron) of a table's rows."""
    return table.column("layer").to_numpy().astype(np.int64) * width + table.column("neuron").to_numpy()


def lang_sizes(table: pa.Table) -> dict[str, int]:
    """Rows per language of a table."""
    return dict(zip(*np.unique(table.column("lang").to_numpy(zero_copy_only=False), return_counts=True)))


def selection_table(p: np.ndarray, result: LapeResult, pool: list[str], rows: list[int], selection: Selection,
                    width: int) -> pa.Table:
    """Rows of per-language picks: rank is the LAPE rank, or for scores the position within the language."""
    picks, scores = selection.picks, selection.scores
    rank_of = np.full(p.shape[1], -1, dtype=np.int32)
    rank_of[result.order] = np.arange(result.order.size, dtype=np.int32)
    flat = np.concatenate(picks) if picks else np.zeros(0, np.int64)
    k = np.repeat(np.asarray(rows, dtype=np.int64), [len(x) for x in picks])
    if scores is None:
        rank, score = rank_of[flat], pa.nulls(flat.size, pa.float64())
    else:
        rank = np.concatenate([np.arange(len(x), dtype=np.int32) for x in picks]) if picks else np.zeros(0, np.int32)
        score = np.concatenate([scores[i, x] for i, x in enumerate(picks)]) if picks else np.zeros(0)
    return pa.table({"lang": pa.array(np.asarray(pool, dtype=object)[k], pa.string()), "layer": flat // width,
                     "neuron": flat % width, "p": p[k, flat], "entropy": result.entropy[flat],
                     "rank": pa.array(rank, pa.int32()), "score": score})


def with_reach(table: pa.Table, columns: Callable[[np.ndarray], np.ndarray], tau_bar: float, tags: list[str],
               width: int) -> pa.Table:
    """Add n_langs / top_langs: the languages whose p exceeds the bar on each row's neuron (``columns(flat)`` gives p)."""
    flat = flat_index(table, width)
    uniq, inv = np.unique(flat, return_inverse=True)
    count, tops = reach(columns(uniq), tau_bar, tags)
    if "score" not in table.column_names:
        table = table.append_column("score", pa.nulls(table.num_rows, pa.float64()))
    return table.append_column("n_langs", pa.array(count[inv], pa.int32())).append_column(
        "top_langs", pa.array([tops[i] for i in inv], pa.string()))


def finish(table: pa.Table, model: str) -> pa.Table:
    """Add the model column (and null reach columns where absent), order rows by (lang, layer, neuron), cast."""
    for name in ("score", "n_langs", "top_langs"):
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, SCHEMA.field(name).type))
    table = table.select([f.name for f in SCHEMA][1:])
    table = table.add_column(0, "model", pa.array([model] * table.num_rows, pa.string()))
    return table.sort_by([("lang", "ascending"), ("layer", "ascending"), ("neuron", "ascending")]).cast(SCHEMA)


def coverage_table(s: NeuronSet, target: str, pool: list[str], p: np.ndarray) -> pa.Table:
    """Which languages of ``pool`` reach ``s`` (``target``'s set): on how many of its neurons their p exceeds the bar."""
    hits = (p[:, flat_index(s.table, s.ffn_width)] > quantile(p, s.params["bar_ratio"])).sum(axis=1)
    order = [k for k in np.lexsort((np.arange(len(pool)), -hits)) if hits[k] and pool[k] != target]
    return pa.table({"lang": [pool[k] for k in order], "n_neurons": pa.array(hits[order], pa.int32()),
                     "set_size": pa.array([len(s)] * len(order), pa.int32()),
                     "share": pa.array(hits[order] / max(len(s), 1), pa.float64())})


def overlap_table(s: NeuronSet) -> pa.Table:
    """Jaccard matrix of the languages' sets in ``s``: column ``lang`` then one float column per language."""
    order = s.langs
    flat = flat_index(s.table, s.ffn_width)
    k = pc.index_in(s.table.column("lang"), pa.array(order)).to_numpy()
    cols, inv = np.unique(flat, return_inverse=True)
    member = np.zeros((len(order), cols.size), dtype=np.float32)
    member[k, inv] = 1.0
    inter = member @ member.T
    size = member.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(union > 0, inter / union, np.nan)
    return pa.table({"lang": order, **{lang: jac[:, i].astype(np.float64) for i, lang in enumerate(order)}},
                    metadata=s.to_arrow().schema.metadata)
