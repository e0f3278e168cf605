"""The large-magnitude features table (Kim et al. 2024): per layer, hidden dimensions ranked by their norm on translation prompts.

Table ``features/model=<slug>/pair=<src>-<tgt>/features.parquet`` (canonical tags, e.g. ``pair=swa_Latn-eng_Latn``),
one row per (layer, dim): ``norm`` = ‖h_j‖₂ of the residual stream over all non-padding tokens of the translation
prompts, ``rms`` = norm / sqrt(tokens), ``rank`` = 0 for the largest norm of the layer. Layer l < L is the input of
decoder block l (l = 0: the scaled embeddings), layer L is the output of the last block (before the final norm).
The authors (``src/hidden_states_analysis.py``) average per-sample norms over samples and include padding; here the
norm runs over all real tokens at once, the statistic Wanda's ‖X_j‖₂ uses. Query with ``features`` /
``overlap``, or in SQL::

    SELECT * FROM read_parquet('<atlas>/features/*/*/features.parquet', hive_partitioning = true)
    WHERE model = 'gemma-3-270m' AND pair = 'swa_Latn-eng_Latn' AND rank < 20

Reading needs no torch; ``neuron_atlas.prune.feature_norms`` builds the tables.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .._utils import arguments
from ..errors import InvalidParameterError, UnknownLanguageError, UnknownModelError, did_you_mean
from ..languages.tags import canonical, parse_pair, resolve
from ..format.schema import ARROW_SCHEMAS
from ..format.layout import Layout, file_metadata, open_parquet, read_parquet


def pair_slug(src: str, tgt: str) -> str:
    """'swa_Latn-eng_Latn' for ('sw', 'en')."""
    return f"{canonical(src)}-{canonical(tgt)}"


def layout_of(atlas: str | Path | Layout) -> Layout:
    """The Layout of an atlas given as a folder or a Layout (remote atlases: ``Atlas.layout``)."""
    return atlas if isinstance(atlas, Layout) else Layout(str(atlas))


def features_path(atlas_root: str | Path, model: str, pair: str) -> Path:
    """Where the builder writes the features table of (model, pair) in a local atlas."""
    return Path(Layout(str(atlas_root)).file("features", model=model, pair=pair))


def feature_table(sumsq: np.ndarray, tokens: int) -> pa.Table:
    """The features table of one (model, pair) from the residual sums of squares [layers, hidden]."""
    n_layers, hidden = sumsq.shape
    norm = np.sqrt(sumsq)
    order = np.argsort(-norm, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(hidden)[None, :].repeat(n_layers, 0), axis=1)
    return pa.table(
        {"layer": np.repeat(np.arange(n_layers), hidden).astype(np.int16),
         "dim": np.tile(np.arange(hidden), n_layers).astype(np.int32),
         "norm": norm.ravel().astype(np.float32),
         "rms": (norm / np.sqrt(max(tokens, 1))).ravel().astype(np.float32),
         "rank": rank.ravel().astype(np.int32),
         "tokens": np.full(n_layers * hidden, tokens, dtype=np.int64)},
        schema=ARROW_SCHEMAS["features"],
    )


def available_pairs(atlas: str | Path | Layout, model: str) -> list[str]:
    """Pairs (canonical 'src-tgt') with a features table for ``model``."""
    layout = layout_of(atlas)
    found = layout.files("features")
    models = sorted({keys["model"] for keys, _ in found})
    if model in models:
        return sorted(keys["pair"] for keys, _ in found if keys["model"] == model)
    if model in layout.model_slugs():  # the atlas has the model, only not its features: no unknown model
        raise InvalidParameterError(
            f"model {model!r} has no features table in {layout.root} (models with features: "
            f"{', '.join(models) or 'none'}); `neuron-atlas features {model} --pair sw-en --atlas FOLDER` builds it "
            "into a local atlas folder")
    raise UnknownModelError(f"no features for model {model!r} in {layout.root}; models with features: "
                            f"{models or 'none (build them with `neuron-atlas features`)'}."
                            + did_you_mean(model, models))


def resolve_pair(pair: Any, available: Sequence[str]) -> str:
    """The stored pair matching ``pair`` ('sw-en', ('sw', 'en') or canonical), or an error listing those stored."""
    src, tgt = parse_pair(pair)
    for stored in available:
        s, t = stored.split("-")
        try:
            resolve(src, [s]), resolve(tgt, [t])
        except UnknownLanguageError:
            continue
        return stored
    raise InvalidParameterError(f"no features for pair {src}-{tgt} ({pair_slug(src, tgt)}); stored pairs: {list(available)}")


def features(atlas: str | Path | Layout, model: str, pair: Any = "sw-en", top: int | None = 20,
             layer: int | None = None) -> pa.Table:
    """The ``top`` largest-norm dimensions of every layer (or of ``layer``) for one pair, by (layer, rank)."""
    if top is not None:
        top = arguments.integer(top, "top", 1, expected="a positive number of dimensions such as 20")
    layout = layout_of(atlas)
    stored = resolve_pair(pair, available_pairs(layout, model))
    path = layout.file("features", model=model, pair=stored)
    table = read_parquet(path, "features", fs=layout.fs)
    keep = np.ones(table.num_rows, dtype=bool)
    if top is not None:
        keep &= table["rank"].to_numpy() < top
    if layer is not None:
        layers = table["layer"].to_numpy()
        if layer not in set(layers.tolist()):
            raise InvalidParameterError(f"layer {layer} not in {path} (layers 0..{int(layers.max())})")
        keep &= layers == layer
    table = table.filter(pa.array(keep))
    table = table.take(np.lexsort((table["rank"].to_numpy(), table["layer"].to_numpy())))
    n = table.num_rows
    return pa.table({"model": pa.array([model] * n), "pair": pa.array([stored] * n),
                     **{c: table[c] for c in ("layer", "dim", "norm", "rms", "rank")}})


def overlap(atlas: str | Path | Layout, model: str, pairs: Sequence[Any] | None = None, top: int = 20) -> pa.Table:
    """Per layer and pair of language pairs: top-``top`` dimensions shared, and their Jaccard index."""
    layout = layout_of(atlas)
    stored = available_pairs(layout, model)
    if isinstance(pairs, str):  # 'sw-en,fr-en' (a string is never iterated letter by letter)
        pairs = [p.strip() for p in pairs.split(",") if p.strip()]
    chosen = stored if pairs is None else [resolve_pair(p, stored) for p in pairs]
    if len(chosen) < 2:
        raise InvalidParameterError(f"overlap needs two or more pairs; {model} has features for {stored}")
    tops = {}
    for p in chosen:
        t = features(layout, model, p, top=top)
        tops[p] = {}
        for layer, dim in zip(t["layer"].to_pylist(), t["dim"].to_pylist()):
            tops[p].setdefault(layer, set()).add(dim)
    rows: dict[str, list] = {"layer": [], "a": [], "b": [], "shared": [], "jaccard": []}
    for a, b in itertools.combinations(chosen, 2):
        for layer in sorted(tops[a]):
            x, y = tops[a][layer], tops[b].get(layer, set())
            rows["layer"].append(layer), rows["a"].append(a), rows["b"].append(b)
            rows["shared"].append(len(x & y)), rows["jaccard"].append(len(x & y) / len(x | y))
    return pa.table({"layer": pa.array(rows["layer"], pa.int16()), "a": rows["a"], "b": rows["b"],
                     "shared": pa.array(rows["shared"], pa.int32()), "jaccard": rows["jaccard"]})


def metadata(atlas: str | Path | Layout, model: str, pair: Any) -> dict:
    """How a features table was built (model, pair, corpus, samples, shots, ...)."""
    layout = layout_of(atlas)
    stored = resolve_pair(pair, available_pairs(layout, model))
    return file_metadata(open_parquet(layout.file("features", model=model, pair=stored), layout.fs).schema_arrow)
