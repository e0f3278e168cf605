"""Reading an atlas folder: manifest, models, shards and derived tables, validated as they are read.

Opening never writes. Files are read lazily and cached per Atlas instance.
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import ValidationError

from . import metadata as file_meta
from ..errors import AtlasFormatError, AtlasNotFoundError, MissingStatisticsError
from .schema import FORMAT_NAME, FORMAT_VERSION, TABLE, Manifest, ModelRow
from .layout import Layout, check_schema, file_metadata, read_checked, read_parquet
from .parquet import read_row_groups


def read_manifest(layout: Layout) -> Manifest:
    """Validate ``atlas.json``; a folder without it is not an atlas."""
    if not layout.exists(layout.manifest):
        what = "does not exist" if not layout.exists(layout.root) else "has no atlas.json, so it is not an atlas"
        raise AtlasNotFoundError(
            f"{layout.root} {what}. An atlas folder holds atlas.json, models/, counts/ and lape/ "
            "(build one with `neuron-atlas build`, or open the embedded one with na.open())."
        )
    try:
        manifest = Manifest.model_validate_json(layout.read_text(layout.manifest))
    except UnicodeDecodeError as exc:
        raise AtlasFormatError(f"{layout.manifest}: not UTF-8 text (byte {exc.start}: {exc.reason}); "
                               "the manifest is a small JSON file, rewrite or restore it") from None
    except ValidationError as exc:
        raise AtlasFormatError(f"{layout.manifest}: not a neuron-atlas manifest ({exc.errors()[0]['msg']})") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise AtlasFormatError(f"{layout.manifest}: cannot be read ({exc.strerror}); the manifest is a small JSON "
                               "file at the atlas' root") from None
    if manifest.format != FORMAT_NAME or manifest.format_version > FORMAT_VERSION:
        raise AtlasFormatError(
            f"{layout.manifest}: format {manifest.format!r} v{manifest.format_version}; this neuron-atlas "
            f"reads {FORMAT_NAME!r} up to v{FORMAT_VERSION} (upgrade the package?)"
        )
    return manifest


def read_model(layout: Layout, slug: str, fingerprints: bool | None = None) -> ModelRow:
    """One model's provenance row, validated with pydantic (``fingerprints``: see ``storage.read_parquet``)."""
    path = layout.file("models", model=slug)
    table, _, problems = read_checked(path, "models", fs=layout.fs, fingerprints=fingerprints)
    # tz-aware timestamps -> Python makes pyarrow import pandas (0.5 s); convert them by hand instead.
    created = table.column("created").cast(pa.int64()).to_pylist()
    rows = table.drop_columns(["created"]).to_pylist()
    if len(rows) != 1:
        raise AtlasFormatError(f"{path}: expected exactly one model row, found {len(rows)}")
    try:
        rows[0]["created"] = dt.datetime.fromtimestamp(created[0] / 1000, tz=dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise AtlasFormatError(f"{path}: field 'created' is {created[0]!r} ms, not a date and time (null or out of "
                               "range); rebuild the file with neuron-atlas") from None
    try:
        row = ModelRow.model_validate(rows[0])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise AtlasFormatError(f"{path}: field {'.'.join(map(str, first['loc']))!r} of the model row is invalid "
                               f"({first['msg']}, got {first.get('input')!r})") from None
    if row.model != slug:
        raise AtlasFormatError(f"{path}: the row names model {row.model!r}, but its folder is model={slug}; "
                               "a copied or renamed folder? The folder name and the row must agree")
    if problems:  # a rewritten or copied file, found after the more specific faults above
        raise AtlasFormatError(f"{path}: {problems[0]}")
    return row


def check_grid(table: pa.Table, path: str, row: ModelRow) -> None:
    """Raise unless the rows are every (layer, neuron) of the model in order: readers take values by position."""
    n = row.n_layers * row.ffn_width
    if table.num_rows != n:
        raise AtlasFormatError(
            f"{path}: {table.num_rows} rows, expected {n} (= {row.n_layers} layers × {row.ffn_width} neurons)"
        )
    flat = table.column("layer").to_numpy().astype(np.int64) * row.ffn_width + table.column("neuron").to_numpy()
    wrong = np.flatnonzero(flat != np.arange(n))
    if wrong.size:
        i = int(wrong[0])
        raise AtlasFormatError(f"{path}: row {i} is (layer, neuron) = ({flat[i] // row.ffn_width}, {flat[i] % row.ffn_width}), "
                               f"expected ({i // row.ffn_width}, {i % row.ffn_width}): rows must be sorted by layer, neuron")


def read_shard(layout: Layout, row: ModelRow, lang: str) -> tuple[np.ndarray, int]:
    """The ``fired`` vector (flat over layer × neuron) and token count of one (model, language) shard."""
    path = layout.file("counts", model=row.model, lang=lang)
    table = read_parquet(path, "counts", fs=layout.fs)
    check_grid(table, path, row)
    claimed = file_meta.parse(file_metadata(table, path), "counts", path).get("lang", lang)
    if claimed != lang:
        raise AtlasFormatError(f"{path}: holds the counts of {claimed}, not {lang}; a shard copied into another folder?")
    fired, all_tokens = table.column("fired").to_numpy(), table.column("tokens").to_numpy()
    tokens = int(all_tokens[0])
    if (all_tokens != tokens).any():
        raise AtlasFormatError(f"{path}: mixed token counts {int(all_tokens.min())}..{int(all_tokens.max())} in one "
                               "shard; every row of a shard holds the language's one token count")
    if tokens < 0 or fired.min() < 0 or fired.max() > tokens:
        raise AtlasFormatError(f"{path}: fired counts span {int(fired.min())}..{int(fired.max())} with tokens={tokens}; "
                               "each must lie in [0, tokens]")
    return fired, tokens


def load_counts(layout: Layout, row: ModelRow, langs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Stack the shards of ``langs`` into ``fired[k, n]`` (int32) and ``tokens[k]``, reading in parallel."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        shards = list(pool.map(lambda lang: read_shard(layout, row, lang), langs))
    fired = np.empty((len(langs), row.n_layers * row.ffn_width), dtype=np.int32)
    for k, (vec, _) in enumerate(shards):
        fired[k] = vec
    return fired, np.array([t for _, t in shards], dtype=np.int64)


def _check_owner(meta: dict[str, Any], path: str, kind: str, row: ModelRow, lang: str) -> None:
    """A statistics file holds what its place in the atlas says: (row.model, lang)."""
    if meta.get("lang", lang) != lang or meta.get("model", row.model) != row.model:
        raise AtlasFormatError(f"{path}: holds the {kind} of {meta.get('model')}/{meta.get('lang')}, not "
                               f"{row.model}/{lang}; a file copied into another folder?")


def _one_token_count(table: pa.Table, path: str) -> int:
    """The language's token count, which every row of a statistics file repeats."""
    all_tokens = table.column("tokens").to_numpy()
    tokens = int(all_tokens[0]) if len(all_tokens) else -1
    if (all_tokens != tokens).any() or tokens < 0:
        raise AtlasFormatError(f"{path}: token counts {int(all_tokens.min())}..{int(all_tokens.max())}; every row holds "
                               "the language's one (non-negative) token count")
    return tokens


def _same_tokens(path: str, got: int, expected: int | None) -> None:
    """Statistics count the same tokens as the language's counts shard (``expected``; None: not known here)."""
    if expected is not None and got != expected:
        raise AtlasFormatError(f"{path}: statistics over {got} tokens, but the atlas records {expected} tokens for the "
                               "language's counts; files of two builds mixed? (`neuron-atlas verify` lists them)")


def _stats_table(layout: Layout, row: ModelRow, lang: str, kind: str,
                 columns: list[str] | None = None, tokens: int | None = None) -> tuple[pa.Table, int]:
    """One ``activations``/``residual`` file of (row.model, lang), its language and tokens checked; (table, tokens).

    Only a language whose counts shard exists has statistics: a file without its shard is an unfinished write.
    ``tokens``: the token count of its counts shard, which the file must repeat (None: not checked).
    """
    path = layout.file(kind, model=row.model, lang=lang)
    if not layout.exists(path) or not layout.exists(layout.file("counts", model=row.model, lang=lang)):
        raise MissingStatisticsError(row.model, [lang], kind, TABLE[kind].holds)
    table = read_parquet(path, kind, columns=columns, fs=layout.fs)
    _check_owner(file_metadata(table, path), path, kind, row, lang)
    got = _one_token_count(table, path)
    _same_tokens(path, got, tokens)
    return table, got


def read_activations(layout: Layout, row: ModelRow, lang: str, var: bool = True, tokens: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """(mean, var, tokens) of one (model, language): act(gate) moments flat over layer × neuron, float64 (``var``
    False: the variances are not read, None); ``tokens``: its counts shard's token count, checked if given."""
    path = layout.file("activations", model=row.model, lang=lang)
    columns = None if var else ["layer", "neuron", "tokens", "mean"]
    table, tokens = _stats_table(layout, row, lang, "activations", columns, tokens)
    check_grid(table, path, row)
    mean = table.column("mean").to_numpy()
    if not var:
        if not np.isfinite(mean).all():
            raise AtlasFormatError(f"{path}: non-finite means; the file is corrupt")
        return mean, None, tokens
    var = table.column("var").to_numpy()
    if not (np.isfinite(mean).all() and np.isfinite(var).all()) or var.min(initial=0.0) < 0:
        raise AtlasFormatError(f"{path}: non-finite means or variances, or a negative variance; the file is corrupt")
    return mean, var, tokens


def read_residual(layout: Layout, row: ModelRow, lang: str, layers: Sequence[int] | None = None,
                  tokens: int | None = None) -> tuple[np.ndarray, int]:
    """(means, tokens) of one (model, language): the residual-stream means, float64, ``[n_layers + 1, hidden_size]``
    (one row per ``output_hidden_states`` point), or ``[len(layers), hidden_size]`` at ``layers`` only, reading just
    their row groups (over ``hf://``: the footer and those bytes); ``tokens``: its counts shard's, checked if given."""
    path = layout.file("residual", model=row.model, lang=lang)
    expected = tokens
    if layers is None:
        table, tokens = _stats_table(layout, row, lang, "residual", tokens=expected)
        got = table.column("layer").to_numpy()
        if not np.array_equal(got, np.arange(row.n_layers + 1)):
            raise AtlasFormatError(f"{path}: layers {got.tolist()[:5]}..., expected 0..{row.n_layers} in order "
                                   "(one row per output_hidden_states point)")
        layers = list(range(row.n_layers + 1))
    else:
        table, metadata = read_row_groups(path, layout.fs, "layer", layers, columns=["layer", "tokens", "mean"])
        check_schema(table.schema, "residual", path, ["layer", "tokens", "mean"])
        _check_owner(file_metadata(metadata.schema.to_arrow_schema(), path), path, "residual", row, lang)
        tokens = _one_token_count(table, path)
        _same_tokens(path, tokens, expected)
        got = table.column("layer").to_numpy()
    where: dict[int, int] = {}
    for i, layer in enumerate(got.tolist()):
        if where.setdefault(int(layer), i) != i:
            raise AtlasFormatError(f"{path}: two rows for layer {layer}; a residual file holds one row per layer")
    missing = [layer for layer in layers if layer not in where]
    if missing:
        raise AtlasFormatError(f"{path}: no row for layer(s) {missing}; a residual file holds layers 0..{row.n_layers}")
    column = table.column("mean").combine_chunks()
    widths = np.diff(column.offsets.to_numpy())
    if (widths != row.hidden_size).any():
        raise AtlasFormatError(f"{path}: rows of {sorted(set(widths.tolist()))} floats; each mean must hold "
                               f"hidden_size = {row.hidden_size} floats")
    values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    if not np.isfinite(values).all():
        raise AtlasFormatError(f"{path}: non-finite residual means; the file is corrupt")
    return values.reshape(len(got), row.hidden_size)[[where[layer] for layer in layers]], tokens


def load_moments(layout: Layout, row: ModelRow, langs: list[str], var: bool = True,
                 tokens: Mapping[str, int] | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Stack the act(gate) moments of ``langs``: ``mean[k, layer, neuron]``, ``var[k, layer, neuron]`` (population
    variance, float64; None when ``var`` is False, which reads the means only) and ``tokens[k]``;
    MissingStatisticsError names the languages without them (v1 atlases). ``tokens``: the counts shards' token
    counts (``Derived.tokens``), which every file must repeat."""
    _check_present(layout, row, langs, "activations")
    expected = tokens or {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda lang: read_activations(layout, row, lang, var, expected.get(lang)), langs))
    shape = (len(langs), row.n_layers, row.ffn_width)
    mean, variance = np.empty(shape), (np.empty(shape) if var else None)
    for k, (m, v, _) in enumerate(found):
        mean[k] = m.reshape(shape[1:])  # not .flat[:], an element-wise iterator (3 s)
        if var:
            variance[k] = v.reshape(shape[1:])
    return mean, variance, np.array([t for *_, t in found], dtype=np.int64)


def load_residual(layout: Layout, row: ModelRow, langs: list[str], tokens: Mapping[str, int] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Stack the mean hidden states of ``langs``: ``mean[k, point, hidden]`` (points 0..n_layers, float64) and
    ``tokens[k]``; MissingStatisticsError names the languages without them; ``tokens`` as ``load_moments``."""
    _check_present(layout, row, langs, "residual")
    expected = tokens or {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(lambda lang: read_residual(layout, row, lang, tokens=expected.get(lang)), langs))
    mean = np.empty((len(langs), row.n_layers + 1, row.hidden_size))
    for k, (m, _) in enumerate(found):
        mean[k] = m
    return mean, np.array([t for _, t in found], dtype=np.int64)


def _check_present(layout: Layout, row: ModelRow, langs: list[str], kind: str) -> None:
    missing = [t for t in langs if not layout.exists(layout.file(kind, model=row.model, lang=t))]
    if missing:
        raise MissingStatisticsError(row.model, missing, kind, TABLE[kind].holds)


@dataclass(frozen=True)
class Derived:
    """A model's stored ``lape`` table and its footer metadata (languages, rates, thresholds, provenance)."""

    table: pa.Table
    meta: dict[str, Any]

    @property
    def imported(self) -> bool:
        """Published neuron sets brought in by an importer: no statistics, one top rate."""
        return bool(self.meta.get("imported"))

    @property
    def languages(self) -> list[str]:
        return list(self.meta["languages"])

    @property
    def stored_top_rate(self) -> float:
        return float(self.meta["stored_top_rate"])

    @property
    def tokens(self) -> dict[str, int]:
        """Each language's token count as its counts shard held it when the tables were derived."""
        return {str(k): int(v) for k, v in (self.meta.get("tokens") or {}).items()}


def read_derived(layout: Layout, slug: str, table: pa.Table | None = None) -> Derived | None:
    """The stored ``lape`` table (``table``: as already read) and its metadata, or None if the model has not been
    derived."""
    path = layout.file("lape", model=slug)
    if table is None:
        if not layout.exists(path):
            return None
        table = read_parquet(path, "lape", fs=layout.fs)
    meta = file_metadata(table, path)
    missing = {"languages", "stored_top_rate"} - set(meta)
    if missing:
        raise AtlasFormatError(f"{path}: metadata lacks {sorted(missing)}; rebuild with AtlasWriter.finalize()")
    return Derived(table, file_meta.parse(meta, "lape", path))


@dataclass(frozen=True)
class MethodRanks:
    """A model's stored ``method_ranks`` rows and their footer metadata: the languages ranked against each other,
    the depth (neurons kept per method and language) and the methods."""

    table: pa.Table
    meta: file_meta.MethodRanksMeta


def read_method_ranks(layout: Layout, slug: str) -> MethodRanks | None:
    """The stored rankings of the moment methods of model ``slug``, or None where the atlas has none (an atlas
    holding the moments themselves needs none)."""
    path = layout.file("method_ranks", model=slug)
    if not layout.exists(path):
        return None
    table = read_parquet(path, "method_ranks", fs=layout.fs)
    meta = file_meta.parse(file_metadata(table, path), "method_ranks", path)
    return MethodRanks(table, file_meta.MethodRanksMeta.model_validate(meta))
