"""Checks of tables as their readers use them: columns the documented schema does not have (a shard's extra ``p``
would shadow the view's derived ``p``), and derived values no reader may serve (NaN or infinite entropies and p,
negative ones, two neurons of one rank, ranks out of entropy order). Each returns the problems as sentences."""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import ARROW_SCHEMAS, TABLE, ModelRow


def view_columns(kind: str) -> set[str]:
    """Columns the SQL view of ``kind`` adds to the file's own (partition keys, derived columns such as counts' p):
    a file holding one of them would clash with the view."""
    table = TABLE.get(kind)
    if table is None:
        return set()
    return set(table.keys) | set(re.findall(r"\bAS\s+(\w+)", table.sql_columns, flags=re.IGNORECASE))


_ENTROPY_TOL = 1e-5  # float32 entropies of the ranking table, ranked on float64 rounded to 9 decimals


def column_problems(schema: pa.Schema, kind: str) -> list[str]:
    """Columns of a file that its kind does not have (unknown), or that a view derives itself (clashing)."""
    known = set(ARROW_SCHEMAS[kind].names)
    problems = []
    for name in schema.names:
        if name in known:
            continue
        if name in view_columns(kind):
            problems.append(f"has a column {name!r}, which clashes with the {name!r} the SQL view derives; "
                            f"a '{kind}' table has only {ARROW_SCHEMAS[kind].names}")
        else:
            problems.append(f"has an unknown column {name!r}; a '{kind}' table has only {ARROW_SCHEMAS[kind].names}")
    return problems


def _bad(values: np.ndarray, name: str, lo: float | None = 0.0, hi: float | None = None) -> list[str]:
    """Non-finite values, and values outside [lo, hi]."""
    out = []
    nan, inf = np.isnan(values), np.isinf(values)
    if nan.any():
        out.append(f"{int(nan.sum())} NaN {name} values (first at row {int(np.flatnonzero(nan)[0])})")
    if inf.any():
        out.append(f"{int(inf.sum())} infinite {name} values (first at row {int(np.flatnonzero(inf)[0])})")
    finite = values[~(nan | inf)]
    if lo is not None and finite.size and finite.min() < lo:
        out.append(f"{name} values below {lo:g} (min {finite.min():g})")
    if hi is not None and finite.size and finite.max() > hi:
        out.append(f"{name} values above {hi:g} (max {finite.max():g})")
    return out


def _order(rank: np.ndarray, entropy: np.ndarray, flat: np.ndarray) -> list[str]:
    """Ranks 0..k-1 once per neuron, in order of entropy (ties by flat index)."""
    order = np.argsort(rank, kind="stable")
    rank, entropy, flat = rank[order], entropy[order], flat[order]
    dup = np.flatnonzero(np.diff(rank) == 0)
    if dup.size:
        r = int(rank[dup[0]])
        return [(f"two neurons hold rank {r} ({int(flat[dup[0]])} and {int(flat[dup[0] + 1])} as "
                 "layer·width+neuron); each rank belongs to one neuron")]
    step = np.diff(entropy)
    wrong = np.flatnonzero(step < -_ENTROPY_TOL)
    if wrong.size:
        i = int(wrong[0])
        return [(f"rank {int(rank[i + 1])} has lower entropy ({entropy[i + 1]:.6g}) than rank {int(rank[i])} "
                 f"({entropy[i]:.6g}); ranks follow entropy, lowest first")]
    return []


def ranking_problems(table: pa.Table, width: int) -> list[str]:
    """Problems of a ``ranking`` table's values (every neuron once; rank -1 for neurons failing the filter)."""
    entropy = table.column("entropy").to_numpy(zero_copy_only=False).astype(np.float64)
    rank = table.column("rank").to_numpy(zero_copy_only=False)
    out = _bad(entropy, "entropy")
    if out:
        return out
    flat = table.column("layer").to_numpy().astype(np.int64) * width + table.column("neuron").to_numpy()
    ranked = rank >= 0
    out = _order(rank[ranked], entropy[ranked], flat[ranked])
    if not out and ranked.any() and rank[ranked].max() != ranked.sum() - 1:
        out.append(f"ranks skip values: {int(ranked.sum())} ranked neurons, highest rank {int(rank[ranked].max())}")
    return out


def lape_problems(table: pa.Table, width: int) -> list[str]:
    """Problems of a derived ``lape`` table's values (one row per (language, neuron) of the stored sets)."""
    p = table.column("p").to_numpy(zero_copy_only=False).astype(np.float64)
    entropy = table.column("entropy").to_numpy(zero_copy_only=False).astype(np.float64)
    rank = table.column("rank").to_numpy(zero_copy_only=False)
    out = _bad(p, "p", 0.0, 1.0) + _bad(entropy, "entropy")
    if out or not table.num_rows:
        return out
    flat = table.column("layer").to_numpy().astype(np.int64) * width + table.column("neuron").to_numpy()
    lang = pc.dictionary_encode(table.column("lang").combine_chunks()).indices.to_numpy().astype(np.int64)
    pairs = np.sort(lang * (int(flat.max()) + 1) + flat)  # sorting: numpy's hashing unique is slower here
    twice = int((pairs[1:] == pairs[:-1]).sum())
    if twice:
        out.append(f"{twice} duplicated (lang, layer, neuron) rows")
    order = np.argsort(flat, kind="stable")
    flat, rank, entropy = flat[order], rank[order], entropy[order]
    first = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])  # each neuron's first row
    group = np.cumsum(np.r_[False, flat[1:] != flat[:-1]])
    if (rank[first][group] != rank).any() or (entropy[first][group] != entropy).any():
        out.append("one neuron holds different ranks or entropies in different rows")
        return out
    return out + _order(rank[first], entropy[first], flat[first])


def value_problems(table: pa.Table, kind: str, row: ModelRow) -> list[str]:
    """What is wrong with the values of a derived ``lape``/``ranking`` table as read."""
    return (lape_problems if kind == "lape" else ranking_problems)(table, row.ffn_width)
