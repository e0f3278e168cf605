"""AtlasWriter: add models and per-(model, language) count shards to an atlas folder, then derive LAPE tables.

Every file is written atomically, one shard per (model, language), so an interrupted build keeps
every shard it finished and a rerun can skip them (``has_counts``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..languages import tags as langs_mod
from ..errors import AtlasError, AtlasFormatError, InvalidParameterError, UnknownModelError, did_you_mean
from .derived import derived_tables
from ..stats.lape import LapeParams
from .reader import (load_counts, read_manifest, read_model)
from .schema import ARROW_SCHEMAS, FORMAT_NAME, MANIFEST, STATS_VERSION, TABLE, LanguageRow, Manifest, ModelRow
from .._utils.files import remove_stale_temporaries, write_text
from .layout import Layout, atlas_lock, check_schema, read_parquet, write_parquet


class AtlasWriter:
    """Writes into the atlas folder ``root`` (created with its manifest if missing)."""

    def __init__(self, root: str | Path, description: str = "") -> None:
        self.layout = Layout(str(root))
        self._models: dict[str, ModelRow] = {}
        self._version = 0  # the manifest's format_version once this writer has read or raised it
        root_path = Path(root)
        check_target(root_path)
        if os.path.exists(self.layout.manifest):
            self._version = read_manifest(self.layout).format_version
            remove_stale_temporaries(root_path)  # left by a killed writer; this one resumes its work
            self._restore_catalogue()
            return
        with atlas_lock(root_path):
            if not os.path.exists(self.layout.manifest):  # another writer may have created it while we waited
                check_target(root_path)
                manifest = Manifest(format=FORMAT_NAME, format_version=1, description=description, fingerprinted=True)
                write_text(manifest.model_dump_json(indent=2) + "\n", self.layout.manifest)

    # -- models ---------------------------------------------------------------------------------
    def add_model(self, row: ModelRow) -> None:
        """Record (or update the provenance of) a model; its shape must not change once counts exist."""
        path = self.layout.file("models", model=row.model)
        with atlas_lock(self.layout.root):
            if os.path.exists(path):
                old = read_model(self.layout, row.model)
                if (old.n_layers, old.ffn_width) != (row.n_layers, row.ffn_width) and self.layout.count_langs(row.model):
                    raise AtlasError(
                        f"model {row.model!r} already has counts for {old.n_layers}×{old.ffn_width} neurons; "
                        f"refusing to record {row.n_layers}×{row.ffn_width}. Use another slug."
                    )
            table = pa.Table.from_pylist([row.model_dump()], schema=ARROW_SCHEMAS["models"])
            write_parquet(table, path)
        self._models[row.model] = row

    def model(self, model: str) -> ModelRow:
        """The model's row, read once per writer (``add_counts`` asks for it on every shard)."""
        if model not in self._models:
            if not os.path.exists(self.layout.file("models", model=model)):
                raise UnknownModelError(f"model {model!r} is not in {self.layout.root}; add_model() it first")
            self._models[model] = read_model(self.layout, model)
        return self._models[model]

    # -- counts ---------------------------------------------------------------------------------
    def has_counts(self, model: str, lang: str) -> bool:
        return os.path.exists(self.layout.file("counts", model=model, lang=langs_mod.canonical(lang)))

    def add_counts(self, model: str, lang: str, fired: np.ndarray, tokens: int, *,
                   moments: tuple[np.ndarray, np.ndarray] | None = None, residual: np.ndarray | None = None,
                   replace: bool = False) -> str:
        """Write the shard of (model, lang): ``fired[layer, neuron]`` and the language's token count, and (format v2)
        the statistics over the same tokens: ``moments`` = (mean, population variance) of act(gate), each
        ``[layers, width]``, and ``residual`` = the mean hidden states ``[layers + 1, hidden]``.

        The statistics files are written first, the counts shard last: it marks the language done. Returns the
        canonical language tag. An existing shard is kept unless ``replace``.
        """
        row = self.model(model)
        info = langs_mod.parse(lang)
        fired = np.asarray(fired)
        if fired.shape != (row.n_layers, row.ffn_width):
            raise AtlasError(f"counts for {model}/{info.tag} have shape {fired.shape}, expected ({row.n_layers}, {row.ffn_width})")
        if tokens < 0 or (fired.size and (fired.min() < 0 or fired.max() > tokens)):
            raise AtlasError(f"counts for {model}/{info.tag} must lie in [0, tokens={tokens}]")
        if tokens >= 2**31:
            raise AtlasError(f"{tokens} tokens exceed the int32 'fired' column; split the corpus")
        path = self.layout.file("counts", model=model, lang=info.tag)
        if os.path.exists(path) and not replace:
            raise AtlasError(f"{path} exists; pass replace=True to overwrite it")
        stats = stats_tables(row, info.tag, tokens, moments, residual)
        for kind, table in stats.items():
            if table is None:  # none given: a stale file of an earlier build must not outlive its shard
                Path(self.layout.file(kind, model=model, lang=info.tag)).unlink(missing_ok=True)
            else:
                self.write_table(kind, table, {"model": model, "lang": info.tag, "tokens": int(tokens)}, model=model,
                                 lang=info.tag)
        if any(t is not None for t in stats.values()):
            self._mark_version(STATS_VERSION)
        layers, neurons = np.indices(fired.shape)
        table = pa.table(
            {
                "layer": pa.array(layers.ravel(), pa.int16()),
                "neuron": pa.array(neurons.ravel(), pa.int32()),
                "fired": pa.array(fired.ravel(), pa.int32()),
                "tokens": pa.array(np.full(fired.size, tokens), pa.int64()),
            },
            schema=ARROW_SCHEMAS["counts"],
        )
        self.add_languages([info])  # the catalogue row first: the shard, written last, commits the language
        write_parquet(table, path, {"model": model, "lang": info.tag, "tokens": int(tokens)})
        return info.tag

    def _mark_version(self, version: int) -> None:
        """Raise the manifest's format_version to ``version`` (once: the first v2 file makes the atlas v2)."""
        if self._version >= version:
            return
        with atlas_lock(self.layout.root):
            manifest = read_manifest(self.layout)
            if manifest.format_version < version:
                manifest.format_version = version
                write_text(manifest.model_dump_json(indent=2) + "\n", self.layout.manifest)
        self._version = version

    def add_languages(self, infos: list[langs_mod.LangInfo]) -> None:
        """Add the languages' rows to languages.parquet, under the atlas lock (other writers add theirs)."""
        path = self.layout.file("languages")
        with atlas_lock(self.layout.root):
            rows = read_parquet(path, "languages").to_pylist() if os.path.exists(path) else []
            listed = {r["lang"] for r in rows}
            new = {i.tag: i for i in infos if i.tag not in listed}
            if not new:
                return
            rows += [LanguageRow(lang=i.tag, iso639_3=i.iso639_3, script=i.script, name=i.name).model_dump()
                     for i in new.values()]
            rows.sort(key=lambda r: r["lang"])
            write_parquet(pa.Table.from_pylist(rows, schema=ARROW_SCHEMAS["languages"]), path)

    def _restore_catalogue(self) -> None:
        """Give every shard its languages.parquet row: writers before this one wrote the shard first, and a kill
        between the two lost the row (a rerun skips the finished shard)."""
        tags = {t for slug in self.layout.model_slugs() for t in self.layout.count_langs(slug)}
        path = self.layout.file("languages")
        try:
            listed = set(read_parquet(path, "languages", ["lang"]).column("lang").to_pylist()) if os.path.exists(path) else set()
        except AtlasFormatError:
            return  # a corrupt catalogue is verify's to report, not the writer's to overwrite
        missing = []
        for tag in sorted(tags - listed):
            try:
                missing.append(langs_mod.parse(tag))
            except AtlasError:
                continue  # not a language: verify names it
        if missing:
            self.add_languages(missing)

    # -- any described table --------------------------------------------------------------------
    def write_table(self, table: str, rows: pa.Table, metadata: dict | None = None, **keys: str) -> str:
        """Write the file of ``table`` (a name in ``schema.TABLES``) at its partition ``keys`` (e.g. model=...),
        checked against the table's documented columns; returns its path."""
        if table not in TABLE:
            raise InvalidParameterError(f"no table named {table!r} is described; tables: {', '.join(TABLE)}."
                                        f"{did_you_mean(table, TABLE)}".rstrip("."))
        wrong = sorted(set(TABLE[table].keys) ^ set(keys))
        if wrong:
            raise InvalidParameterError(f"table {table!r} is partitioned by {list(TABLE[table].keys)}, got {sorted(keys)}")
        path = self.layout.file(table, **keys)
        check_schema(rows.schema, table, path)
        write_parquet(rows.select(TABLE[table].arrow.names), path, metadata, row_group_size=TABLE[table].row_group_rows)
        return path

    # -- derived --------------------------------------------------------------------------------
    def finalize(self, model: str, params: LapeParams = LapeParams()) -> None:
        """Derive the model's ranking and default-language-set LAPE tables from all its shards."""
        row = self.model(model)
        with atlas_lock(self.layout.root):  # two writers deriving at once: the later sees every shard
            tags = self.layout.count_langs(model)
            if not tags:
                raise AtlasError(f"model {model!r} has no count shards to derive LAPE tables from")
            fired, tokens = load_counts(self.layout, row, tags)
            write_derived(self.layout, row, tags, fired, tokens, params)


def check_target(root: str | Path) -> None:
    """Raise unless ``root`` can hold an atlas: a folder with atlas.json, an empty folder, or nothing yet.

    Hidden files do not count: the lock and the temporary manifest of another writer creating the atlas right now.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise InvalidParameterError(f"{root} is a file; an atlas is a folder (give a new or existing atlas folder)")
    above = next((p for p in root.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise InvalidParameterError(f"{root} lies inside {above}, which is a file; give a folder outside it")
    foreign = [p for p in root.iterdir() if not p.name.startswith(".") and p.name != MANIFEST] if root.is_dir() else []
    if foreign and not (root / MANIFEST).exists():
        raise AtlasFormatError(f"{root} is a non-empty folder without atlas.json; refusing to write into it")


def stats_tables(row: ModelRow, lang: str, tokens: int, moments: tuple[np.ndarray, np.ndarray] | None,
                 residual: np.ndarray | None) -> dict[str, pa.Table | None]:
    """The ``activations`` and ``residual`` tables of one (model, language), checked (shape, finite, var >= 0);
    None for a statistic not given."""
    where = f"{row.model}/{lang}"
    tables: dict[str, pa.Table | None] = {"activations": None, "residual": None}
    if moments is not None:
        mean, var = (np.asarray(m, dtype=np.float64) for m in moments)
        _check_stat(mean, (row.n_layers, row.ffn_width), f"activation means of {where}")
        _check_stat(var, (row.n_layers, row.ffn_width), f"activation variances of {where}")
        if var.min(initial=0.0) < 0:
            raise AtlasError(f"activation variances of {where} must be >= 0; got {var.min()}")
        layers, neurons = np.indices(mean.shape)
        tables["activations"] = pa.table({
            "layer": pa.array(layers.ravel(), pa.int16()), "neuron": pa.array(neurons.ravel(), pa.int32()),
            "tokens": pa.array(np.full(mean.size, tokens), pa.int64()), "mean": pa.array(mean.ravel()),
            "var": pa.array(var.ravel()),
        }, schema=ARROW_SCHEMAS["activations"])
    if residual is not None:
        residual = np.asarray(residual, dtype=np.float64)
        _check_stat(residual, (row.n_layers + 1, row.hidden_size), f"residual means of {where}")
        values = pa.array(residual.ravel())
        offsets = pa.array(np.arange(0, residual.size + 1, row.hidden_size, dtype=np.int32))
        tables["residual"] = pa.table({
            "layer": pa.array(np.arange(residual.shape[0]), pa.int16()),
            "tokens": pa.array(np.full(residual.shape[0], tokens), pa.int64()),
            "mean": pa.ListArray.from_arrays(offsets, values),
        }, schema=ARROW_SCHEMAS["residual"])
    return tables


def _check_stat(values: np.ndarray, shape: tuple[int, int], what: str) -> None:
    if values.shape != shape:
        raise AtlasError(f"{what} have shape {values.shape}, expected {shape}")
    if not np.isfinite(values).all():
        raise AtlasError(f"{what} hold {int((~np.isfinite(values)).sum())} non-finite values (NaN or inf); "
                         "statistics must be finite (were any tokens counted?)")


def write_derived(layout: Layout, row: ModelRow, tags: list[str], fired: np.ndarray, tokens: np.ndarray,
                  params: LapeParams = LapeParams()) -> None:
    """Write ``ranking.parquet`` (every neuron) and ``lape.parquet`` (sets up to STORED_TOP_RATE)."""
    ranking, table, meta = derived_tables(row, tags, fired, tokens, params)
    write_parquet(ranking, layout.file("ranking", model=row.model), meta)
    write_parquet(table, layout.file("lape", model=row.model), meta)


def write_imported_sets(root: str | Path, row: ModelRow, sets: dict[str, list[np.ndarray]], *,
                        top_rate: float, source: str, params: dict | None = None) -> None:
    """Store published neuron sets (``sets[lang][layer]`` = neuron indices) as the model's ``lape`` table.

    Imported sets carry no statistics: p, entropy and rank are null, and only ``top_rate`` can be queried.
    """
    writer = AtlasWriter(root)
    writer.add_model(row)
    rows: dict[str, list] = {"lang": [], "layer": [], "neuron": []}
    for lang, per_layer in sets.items():
        tag = langs_mod.parse(lang)
        if len(per_layer) != row.n_layers:
            raise AtlasError(f"{source}: {lang} has {len(per_layer)} layers, model {row.model} has {row.n_layers}")
        for layer, idx in enumerate(per_layer):
            idx = np.asarray(idx, dtype=np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= row.ffn_width):
                raise AtlasError(
                    f"{source}: {lang} layer {layer} has neuron index {int(idx.max())} outside [0, {row.ffn_width}) "
                    f"for model {row.model}; wrong model or language order?"
                )
            rows["lang"] += [tag.tag] * idx.size
            rows["layer"] += [layer] * idx.size
            rows["neuron"] += np.sort(idx).tolist()
        writer.add_languages([tag])
    n = len(rows["lang"])
    table = pa.table({
        "lang": pa.array(rows["lang"], pa.string()), "layer": pa.array(rows["layer"], pa.int16()),
        "neuron": pa.array(rows["neuron"], pa.int32()), "p": pa.nulls(n, pa.float64()),
        "entropy": pa.nulls(n, pa.float64()), "rank": pa.nulls(n, pa.int32()),
    }, schema=ARROW_SCHEMAS["lape"])
    meta = {"languages": [langs_mod.canonical(tag) for tag in sets], "imported": True, "source": source,
            "stored_top_rate": top_rate, **(params or {})}
    write_parquet(table, writer.layout.file("lape", model=row.model), meta)
