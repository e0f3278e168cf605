"""Masks from any neuron source: a NeuronSet, an Arrow table or pandas frame with ``layer``/``neuron`` (and
``lang``) columns, a ``{layer: indices}`` dict (or ``{lang: ...}`` of them) or ``(layer, neuron)`` pairs."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..languages import tags as langs_mod
from ..errors import MaskError
from ..modeling.shape import ffn_shapes
from .mask import NeuronMask
from ..format.schema import META_KEY

_PARAM_KEYS = ("method", "size", "top_rate", "filter_rate", "bar_ratio", "among", "atlas", "source")


def neuron_mask(neurons: Any, *, lang: str | Sequence[str] | None = None, shape: Any = None) -> NeuronMask:
    """One mask from a neuron source: the union over all its languages, or over ``lang`` (one tag or several).

    ``shape`` is ``(n_layers, width)`` or the model; it may be left out when the source carries it (a NeuronSet).
    """
    if isinstance(neurons, NeuronMask):
        if lang is not None and set(_as_list(lang)) != set(neurons.languages):
            raise MaskError(f"lang={lang!r} cannot be picked from a NeuronMask of {neurons.describe()}; "
                            "select languages when building the mask from the neuron set")
        if isinstance(shape, tuple):
            _same_shape(neurons.shape, shape, neurons)
        elif shape is not None:
            neurons.check(shape)
        return neurons
    table, meta = _as_table(neurons)
    dims = _resolve_shape(shape, meta)
    chosen = _pick_languages(table, meta, lang)
    if chosen is not None:
        table = table.filter(pc.is_in(table.column("lang"), pa.array(chosen)))
    mask = NeuronMask.from_pairs(_pairs(table), dims, **_provenance(meta, chosen))
    if not len(mask):
        what = f"language(s) {', '.join(chosen)}" if chosen else "the source"
        raise MaskError(f"the neuron set is empty: {what} has no selected neurons"
                        f"{_params_hint(meta)}; pick another language or a larger top share")
    return mask


def neuron_masks(neurons: Any, *, lang: Sequence[str] | None = None, shape: Any = None) -> dict[str, NeuronMask]:
    """One mask per language of the source (or of ``lang``), keyed by canonical tag; a language may be empty."""
    table, meta = _as_table(neurons)
    if "lang" not in table.column_names:
        raise MaskError("the neuron source has no 'lang' column; use neuron_mask() for a single set")
    dims = _resolve_shape(shape, meta)
    out = {}
    for tag in _pick_languages(table, meta, lang) or []:
        rows = table.filter(pc.equal(table.column("lang"), tag))
        out[tag] = NeuronMask.from_pairs(_pairs(rows), dims, **_provenance(meta, [tag]))
    return out


def _as_list(lang: str | Sequence[str]) -> list[str]:
    return [lang] if isinstance(lang, str) else list(lang)


def _same_shape(have: tuple[int, int], want: tuple[int, int], mask: NeuronMask) -> None:
    if tuple(have) != tuple(want):
        raise MaskError(f"the mask ({mask.describe()}) has shape {have}, expected {tuple(want)} (n_layers, width)")


def _as_table(neurons: Any) -> tuple[pa.Table, dict]:
    """An Arrow table with layer, neuron (and maybe lang) columns plus the source's metadata."""
    if hasattr(neurons, "to_arrow"):
        table = neurons.to_arrow()
    elif isinstance(neurons, pa.Table):
        table = neurons
    elif hasattr(neurons, "columns") and hasattr(neurons, "to_numpy"):  # pandas DataFrame
        table = pa.Table.from_pandas(neurons, preserve_index=False)
    elif isinstance(neurons, Mapping):
        return _table_from_mapping(neurons), {}
    elif isinstance(neurons, (Sequence, np.ndarray)):
        arr = np.asarray(neurons) if len(neurons) else np.zeros((0, 2), np.int64)
        if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer):
            raise MaskError("a list source must hold (layer, neuron) integer pairs; "
                            f"got an array of shape {arr.shape} and dtype {arr.dtype}")
        return pa.table({"layer": arr[:, 0].astype(np.int64), "neuron": arr[:, 1].astype(np.int64)}), {}
    else:
        raise MaskError(f"cannot read neurons from a {type(neurons).__name__}; pass a NeuronSet, an Arrow table or "
                        "pandas DataFrame with layer/neuron columns, a {layer: indices} dict or (layer, neuron) pairs")
    missing = [c for c in ("layer", "neuron") if c not in table.column_names]
    if missing:
        raise MaskError(f"the neuron table lacks column(s) {missing}; it has {table.column_names}")
    raw = (table.schema.metadata or {}).get(META_KEY)
    return table, (json.loads(raw) if raw else {})


def _table_from_mapping(neurons: Mapping) -> pa.Table:
    """``{layer: indices}`` or ``{lang: {layer: indices}}`` / ``{lang: [indices per layer]}`` as a long table."""
    keys = list(neurons)
    if keys and all(isinstance(k, str) for k in keys):
        parts = [(langs_mod.canonical(lang), _table_from_mapping(v if isinstance(v, Mapping) else dict(enumerate(v))))
                 for lang, v in neurons.items()]
        tables = [t.append_column("lang", pa.array([lang] * t.num_rows, pa.string())) for lang, t in parts]
        return pa.concat_tables(tables) if tables else pa.table({"layer": [], "neuron": [], "lang": []})
    layers, neuron = [], []
    for layer, idx in neurons.items():
        if not isinstance(layer, (int, np.integer)):
            raise MaskError(f"dict keys must be layer numbers (or language tags), got {layer!r}")
        arr = np.asarray(idx, dtype=np.int64).reshape(-1)
        layers.append(np.full(arr.size, int(layer), np.int64))
        neuron.append(arr)
    return pa.table({"layer": np.concatenate(layers) if layers else np.zeros(0, np.int64),
                     "neuron": np.concatenate(neuron) if neuron else np.zeros(0, np.int64)})


def _resolve_shape(shape: Any, meta: dict) -> tuple[int, int]:
    """(n_layers, width) from ``shape`` (a tuple or a model), checked against the source's own shape if it has one."""
    source = (meta["n_layers"], meta["ffn_width"]) if "n_layers" in meta and "ffn_width" in meta else None
    if shape is None:
        if source is None:
            raise MaskError("the neuron source does not say its model's shape; pass shape=(n_layers, width) or the model")
        return source
    if isinstance(shape, tuple):
        dims = (int(shape[0]), int(shape[1]))
    else:
        shapes = ffn_shapes(shape)
        widths = {s.width for s in shapes}
        if len(widths) != 1:
            raise MaskError(f"the model's FFN widths differ across layers ({sorted(widths)}); masks need one width")
        dims = (len(shapes), widths.pop())
    if source is not None and source != dims:
        who = f"model {meta['model']!r}" if meta.get("model") else "its model"
        raise MaskError(f"the neuron set is for {who} with {source[0]} layers × {source[1]} FFN neurons, but the "
                        f"target has {dims[0]} layers × {dims[1]}; use a neuron set computed for this model")
    return dims


def _pick_languages(table: pa.Table, meta: dict, lang: str | Sequence[str] | None) -> list[str] | None:
    """Canonical tags to keep (None: no lang column and no selection, i.e. keep every row)."""
    if "lang" not in table.column_names:
        if lang is not None:
            raise MaskError(f"lang={lang!r} given but the neuron source has no 'lang' column")
        return None
    present = meta.get("langs") or sorted(set(table.column("lang").to_pylist()))
    if lang is None:
        return list(present)
    return list(dict.fromkeys(langs_mod.resolve(t, present, context="this neuron set") for t in _as_list(lang)))


def _pairs(table: pa.Table) -> np.ndarray:
    layer = table.column("layer").to_numpy().astype(np.int64)
    neuron = table.column("neuron").to_numpy().astype(np.int64)
    return np.stack([layer, neuron], axis=1)


def _provenance(meta: dict, chosen: list[str] | None) -> dict[str, Any]:
    return {"model": meta.get("model", ""), "languages": chosen or (), "atlas_version": str(meta.get("revision") or ""),
            "params": {k: meta[k] for k in _PARAM_KEYS if k in meta}}


def _params_hint(meta: dict) -> str:
    if meta.get("size"):
        return f" at size={meta['size']} (method={meta.get('method', 'lape')})"
    return f" at top_rate={meta['top_rate']}" if "top_rate" in meta else ""
