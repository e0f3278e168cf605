"""The derived tables of a model (``ranking``, and ``lape`` up to STORED_TOP_RATE) computed from its counts: written by
``AtlasWriter.finalize``, recomputed by ``verify`` to compare, and the stored top rate the query path relies on."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from .lape import LapeParams, lape, lape_table
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
