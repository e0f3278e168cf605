"""The derived tables of a model (``ranking``, and ``lape`` up to STORED_TOP_RATE) computed from its counts: written by
``AtlasWriter.finalize``, recomputed by ``verify`` to compare, and the stored top rate the query path relies on."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from ..stats.lape import LapeParams, LapeResult, activation_probs, lape
from .schema import ARROW_SCHEMAS, ModelRow

# Derived `lape` rows are stored for neurons ranked within this share; larger `top` reads the shards.
STORED_TOP_RATE = 0.05


def derived_tables(row: ModelRow, tags: list[str], fired: np.ndarray, tokens: np.ndarray,
                   params: LapeParams = LapeParams()) -> tuple[pa.Table, pa.Table, dict]:
    """The ranking and lape tables of ``fired``/``tokens`` and their metadata (also how ``verify`` checks them)."""
    result = lape(fired, tokens, params)
    n = row.n_layers * row.ffn_width
    rank = np.full(n, -1, dtype=np.int32)
    rank[result.order] = np.arange(result.order.size, dtype=np.int32)
    meta = {
        "languages": tags, "tokens": dict(zip(tags, map(int, tokens))), "filter_rate": params.filter_rate, "bar_ratio": params.bar_ratio,
        "tau_filter": result.tau_filter, "tau_bar": result.tau_bar, "stored_top_rate": STORED_TOP_RATE,
        "derived": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    layer, neuron = np.divmod(np.arange(n), row.ffn_width)
    ranking = pa.table(
        {"layer": layer.astype(np.int16), "neuron": neuron.astype(np.int32),
         "entropy": result.entropy.astype(np.float32), "rank": rank},
        schema=ARROW_SCHEMAS["ranking"],
    )
    return ranking, lape_table(fired, tokens, tags, result, STORED_TOP_RATE, row.ffn_width), meta


def lape_table(fired: np.ndarray, tokens: np.ndarray, tags: list[str], result: LapeResult, top_rate: float,
               width: int) -> pa.Table:
    """The (lang, layer, neuron, p, entropy, rank) rows of the kept neurons each of ``tags`` (rows of fired) gets."""
    chosen = result.selected(top_rate)  # in rank order
    p = activation_probs(fired[:, chosen], tokens)
    k_idx, c_idx = np.nonzero(p > result.tau_bar)  # sorted by language then rank
    flat = chosen[c_idx]
    return pa.table(
        {
            "lang": pa.array(np.asarray(tags, dtype=object)[k_idx], pa.string()),
            "layer": pa.array(flat // width, pa.int16()),
            "neuron": pa.array(flat % width, pa.int32()),
            "p": pa.array(p[k_idx, c_idx], pa.float64()),
            "entropy": pa.array(result.entropy[flat], pa.float64()),
            "rank": pa.array(c_idx, pa.int32()),
        },
        schema=ARROW_SCHEMAS["lape"],
    )
