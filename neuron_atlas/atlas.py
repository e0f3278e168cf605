"""Atlas: open an atlas folder and ask it for language-specific neurons, overlaps and SQL."""
from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import langs as langs_mod
from .errors import AtlasError, AtlasNotFoundError, InvalidParameterError, UnknownModelError, did_you_mean
from .hub.address import HF_SCHEME
from .hub.remote import locate
from .lape import LapeParams, lape, lape_table, parse_top
from .neuronset import SCHEMA, NeuronSet
from .reader import Derived, load_counts, read_derived, read_manifest, read_model
from .schema import ARROW_SCHEMAS, Manifest, ModelRow
from .storage import Layout, read_parquet
from .validate import ModelCheck, check_model

EMBEDDED = Path(__file__).parent / "data" / "atlas"
_RATE_TOL = 1e-12


class Atlas:
    """A neuron atlas folder (local, or remote through an fsspec filesystem), opened read-only."""

    def __init__(self, root: str | os.PathLike, fs: Any = None, revision: str | None = None) -> None:
        self.layout = Layout(str(root), fs)
        self.revision = revision
        self.manifest: Manifest = read_manifest(self.layout)
        self._models: dict[str, ModelRow] = {}
        self._derived: dict[str, Derived | None] = {}
        self._checks: dict[str, ModelCheck] = {}

    def __repr__(self) -> str:
        return f"Atlas({self.layout.root!r}, models={self.model_slugs})"

    # -- catalogue -----------------------------------------------------------------------------
    @cached_property
    def model_slugs(self) -> list[str]:
        return self.layout.model_slugs()

    def model(self, model: str) -> ModelRow:
        """Provenance row of ``model``; an unknown slug names the closest ones."""
        if model not in self._models:
            if model not in self.model_slugs:
                raise UnknownModelError(
                    f"model {model!r} is not in the atlas at {self.layout.root}; it has "
                    f"{', '.join(self.model_slugs) or 'no models'}.{did_you_mean(model, self.model_slugs)}"
                )
            self._models[model] = read_model(self.layout, model)
        return self._models[model]

    def models(self) -> pa.Table:
        """One row per model: slug, shape and provenance (the ``models`` table)."""
        rows = [self.model(s).model_dump() for s in self.model_slugs]
        return pa.Table.from_pylist(rows, schema=ARROW_SCHEMAS["models"])

    def langs_of(self, model: str) -> list[str]:
        """Canonical tags of the languages the model has statistics (or imported sets) for."""
        self.model(model)
        derived = self._derived_table(model)
        if derived is not None and derived.imported:
            return derived.languages
        return self.layout.count_langs(model)

    def languages(self, model: str | None = None) -> pa.Table:
        """The ``languages`` table (lang, iso639_3, script, name), for one model with its token counts."""
        table = read_parquet(self.layout.languages, "languages", fs=self.layout.fs)
        if model is None:
            return table
        tags = self.langs_of(model)
        table = table.filter(pc.is_in(table.column("lang"), pa.array(tags)))
        derived = self._derived_table(model)
        tokens = (derived.meta.get("tokens") or {}) if derived else {}
        return table.append_column("tokens", pa.array([tokens.get(t) for t in table.column("lang").to_pylist()], pa.int64()))

    # -- neurons -------------------------------------------------------------------------------
    def neurons(
        self,
        model: str,
        lang: str | Sequence[str] | None = None,
        top: str | float = "1%",
        *,
        filter_rate: float = 0.95,
        bar_ratio: float = 0.95,
        among: Sequence[str] | None = None,
    ) -> NeuronSet:
        """Language-specific neurons of ``model`` by LAPE: for ``lang`` (one, several, or None for all).

        ``top`` is the share of all L·d neurons kept ('1%' or 0.01); ``among`` recomputes LAPE over a
        subset of the model's languages (entropy and thresholds depend on the language set).
        """
        row = self.model(model)
        params = LapeParams(parse_top(top), filter_rate, bar_ratio)
        available = self.langs_of(model)
        context = f"model {model!r}"
        among_items = None if among is None else _tag_list(among, "among")
        pool = available if among_items is None else _unique(langs_mod.resolve(a, available, context=context) for a in among_items)
        if among is not None and len(pool) < 2:
            raise InvalidParameterError(f"among= needs at least 2 languages to compare, got {among_items}")
        if lang is None:
            wanted = list(pool)
        else:
            wanted = _unique(langs_mod.resolve(x, available, context=context) for x in _tag_list(lang, "lang"))
            outside = [w for w in wanted if w not in pool]
            if outside:
                raise InvalidParameterError(f"{outside} not in among={pool}; LAPE can only assign languages it compares")
        meta = {"top_rate": params.top_rate, "filter_rate": filter_rate, "bar_ratio": bar_ratio,
                "among": None if among is None else pool, "revision": self.revision}
        derived = self._derived_table(model)
        if derived is not None and derived.imported:
            table = self._imported(model, derived, params, among, wanted)
            meta["source"] = derived.meta.get("source")
        elif self._fast_path_ok(model, derived, available, pool, params):
            table = self._stored(row, derived.table, params, wanted)
        else:
            table = self._recompute(row, pool, params, wanted)
        return NeuronSet(table=table, model=model, langs=wanted, n_layers=row.n_layers, ffn_width=row.ffn_width,
                         params=meta)

    def overlap(self, model: str, langs: Sequence[str] | None = None, top: str | float = "1%", **kw: Any) -> pa.Table:
        """Jaccard matrix of the languages' neuron sets: column ``lang`` then one float column per language."""
        s = self.neurons(model, lang=langs, top=top, **kw)
        row, order = self.model(model), s.langs
        flat = s.table.column("layer").to_numpy().astype(np.int64) * row.ffn_width + s.table.column("neuron").to_numpy()
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

    def features(self, model: str, pair: str = "sw-en", top: int | None = 20, layer: int | None = None) -> pa.Table:
        """Large-magnitude hidden features (Kim et al.) of one translation pair: the top dimensions per layer."""
        from .features import features

        return features(self._local_root("features"), model, pair, top, layer)

    def feature_overlap(self, model: str, pairs: Sequence[str] | None = None, top: int = 20) -> pa.Table:
        """Per layer, how many top-``top`` features two language pairs share (and their Jaccard index)."""
        from .features import overlap

        return overlap(self._local_root("feature_overlap"), model, pairs, top)

    def _local_root(self, what: str) -> str:
        if self.layout.fs is not None:
            raise AtlasError(f"{what}() reads local atlases; open this one with mode='snapshot'")
        return self.layout.root

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None, *,
            timeout: float | None = None) -> pa.Table:
        """Run a read-only SQL query (bound ``?``/``$name`` parameters) over the atlas' views; Arrow result.

        Views: models, languages, counts (with p), ranking, lape (default 1% sets), lape_stored (up to the stored
        top), features (large-magnitude hidden features per translation pair). Files failing validation are left
        out with an AtlasWarning naming them. ``timeout`` (seconds) and Ctrl-C interrupt a running query.
        """
        return self._sql.query(query, params, timeout=timeout)

    @cached_property
    def _sql(self):
        from .sql import AtlasSQL  # duckdb is imported only when SQL is used

        return AtlasSQL(self.layout)

    # -- internals -----------------------------------------------------------------------------
    def _derived_table(self, model: str) -> Derived | None:
        if model not in self._derived:
            self._derived[model] = read_derived(self.layout, model)
        return self._derived[model]

    def _fast_path_ok(self, model: str, derived: Derived | None, available: list[str], pool: list[str],
                      params: LapeParams) -> bool:
        """Whether the stored sets answer the query: same languages and rates, and the derived files pass validation
        (derived from the present shards, not tampered beyond the footers' ranges)."""
        if derived is None:
            return False
        meta = derived.meta
        return (
            sorted(meta["languages"]) == sorted(available) and sorted(pool) == sorted(available)
            and abs(meta["filter_rate"] - params.filter_rate) < _RATE_TOL
            and abs(meta["bar_ratio"] - params.bar_ratio) < _RATE_TOL
            and params.top_rate <= meta["stored_top_rate"] + _RATE_TOL
            and self._check(model).derived_ok
        )

    def _check(self, model: str) -> ModelCheck:
        """The cheap checks of ``model``'s files (Parquet footers), once per Atlas."""
        if model not in self._checks:
            # the derived tables' footers only: shards are checked as they are read (and by sql() and verify)
            self._checks[model] = check_model(self.layout, model, footers=self.layout.fs is None, shards=False)
        return self._checks[model]

    def _stored(self, row: ModelRow, table: pa.Table, params: LapeParams, wanted: list[str]) -> pa.Table:
        k = round(row.n_layers * row.ffn_width * params.top_rate)
        mask = pc.and_(pc.less(table.column("rank"), k), pc.is_in(table.column("lang"), pa.array(wanted)))
        return _finish(table.filter(mask), row.model)

    def _imported(self, model: str, derived: Derived, params: LapeParams, among, wanted: list[str]) -> pa.Table:
        table, meta = derived.table, derived.meta
        stored = derived.stored_top_rate
        if among is not None or abs(params.top_rate - stored) > _RATE_TOL or (params.filter_rate, params.bar_ratio) != (LapeParams.filter_rate, LapeParams.bar_ratio):
            raise InvalidParameterError(
                f"model {model!r} holds neuron sets imported from {meta.get('source')} at top={stored:.4%} with no "
                f"statistics, so only top={stored:.4%} with default rates and no among= can be answered"
            )
        return _finish(table.filter(pc.is_in(table.column("lang"), pa.array(wanted))), model)

    def _recompute(self, row: ModelRow, pool: list[str], params: LapeParams, wanted: list[str]) -> pa.Table:
        if not pool:
            raise AtlasError(f"model {row.model!r} has no count shards")
        fired, tokens = load_counts(self.layout, row, pool)
        result = lape(fired, tokens, params)
        rows = [pool.index(w) for w in wanted]
        table = lape_table(fired[rows], tokens[rows], wanted, result, params.top_rate, row.ffn_width)
        return _finish(table, row.model)


def _finish(table: pa.Table, model: str) -> pa.Table:
    """Add the model column, order rows by (lang, layer, neuron) and cast to the NeuronSet schema."""
    table = table.select(["lang", "layer", "neuron", "p", "entropy", "rank"])
    table = table.add_column(0, "model", pa.array([model] * table.num_rows, pa.string()))
    return table.sort_by([("lang", "ascending"), ("layer", "ascending"), ("neuron", "ascending")]).cast(SCHEMA)


def _tag_list(value: Any, name: str) -> list[str]:
    """``lang=``/``among=`` as a list of tags: a string is one tag or comma-separated tags ('tl,id')."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise InvalidParameterError(f"{name}= takes a language tag, 'tl,id' or a list of tags like ['tl', 'id']; "
                                    f"got {value!r} ({type(value).__name__})")
    if not items or not all(items):
        raise InvalidParameterError(f"{name}= needs at least one language tag (e.g. 'tl' or ['tl', 'id']), got {value!r}")
    return items


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def open(path: str | os.PathLike | None = None, **kw: Any) -> Atlas:  # noqa: A001 - mirrors duckdb/zarr `open`
    """Open an atlas: the embedded default (no argument), a folder, or ``hf://datasets/org/name[@rev]``.

    Hub atlases take ``mode`` ('lazy': read files on demand; 'snapshot': download, works offline), ``token`` and
    ``cache_dir`` (see ``neuron_atlas.hub.remote.locate``).
    """
    if path is None:
        if not (EMBEDDED / "atlas.json").exists():
            raise AtlasNotFoundError(
                "no embedded atlas is installed with this copy of neuron-atlas. Build one with "
                "`neuron-atlas build --model <id> --corpus udhr --out ATLAS` and open it with na.open('ATLAS')."
            )
        return Atlas(EMBEDDED)
    text = os.fspath(path)
    if text.startswith(HF_SCHEME):
        where = locate(text, **kw)
        return Atlas(where.root, fs=where.fs, revision=where.revision)
    return Atlas(text, **kw)
