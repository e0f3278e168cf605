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
from . import panels as panels_mod
from .errors import (
    AtlasError, AtlasNotFoundError, InvalidParameterError, UnknownLanguageError, UnknownModelError, did_you_mean,
)
from .hub.address import HF_SCHEME
from .hub.remote import locate
from .lape import (
    METHODS, LapeParams, LapeResult, activation_probs, budget_sets, lape, lape_table, ovr_scores, ovr_sets, parse_size,
    parse_top, quantile, reach,
)
from .moment_scores import mean_diff_scores, top_scores, welch_t_scores
from .neuronset import SCHEMA, TINY, NeuronSet
from .reader import Derived, load_counts, load_moments, read_derived, read_manifest, read_model
from .schema import ARROW_SCHEMAS, Manifest, ModelRow
from .statistics import require
from .steering import ResidualCache, steering_vector
from .storage import Layout, read_parquet
from .validate import ModelCheck, check_model
from .writer import STORED_TOP_RATE

EMBEDDED = Path(__file__).parent / "data" / "atlas"
_MOMENT_METHODS = ("mean_diff", "t")
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
        self._residual: dict[str, ResidualCache] = {}
        self._present: set[tuple] = set()

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
        size: int | str | None = None,
        method: str = "lape",
        filter_rate: float = 0.95,
        bar_ratio: float = 0.95,
        among: str | Sequence[str] | None = None,
    ) -> NeuronSet:
        """Language-specific neurons of ``model``: for ``lang`` (one, several, or None for all).

        Default: LAPE over all the model's languages keeping the share ``top`` of all L·d neurons ('1%' or 0.01):
        small, specific and stable sets, but tiny or empty for languages that share their neurons with relatives.
        ``size=500`` (or '0.5%' of L·d) gives each language its own budget: among neurons passing LAPE's filter
        whose p for that language exceeds the bar, the ``size`` lowest in entropy. ``method="ovr"`` ranks by the
        one-vs-rest score (p minus the 95th percentile of p over the other languages; needs ``size``). ``among``
        recomputes over a subset of languages: a list, or a panel name (see ``panels()``).
        """
        row = self.model(model)
        params = LapeParams(parse_top(top), filter_rate, bar_ratio)
        if method not in METHODS + _MOMENT_METHODS:
            raise InvalidParameterError(f"method must be one of {', '.join(METHODS + _MOMENT_METHODS)}, got {method!r}")
        if method != "lape" and size is None:
            raise InvalidParameterError(f"method={method!r} ranks each language's neurons by score: give size= (e.g. 500 or '0.5%')")
        budget = None if size is None else parse_size(size, row.n_layers * row.ffn_width)
        available = self.langs_of(model)
        pool, notices = self._pool(model, among, available)
        if lang is None:
            wanted = list(pool)
        else:
            wanted = _unique(langs_mod.resolve(x, available, context=f"model {model!r}") for x in _tag_list(lang, "lang"))
            outside = [w for w in wanted if w not in pool]
            if outside:
                raise InvalidParameterError(f"{outside} not in among={pool}; LAPE can only assign languages it compares")
        meta = {"method": method, "size": budget, "top_rate": params.top_rate, "filter_rate": filter_rate,
                "bar_ratio": bar_ratio, "among": None if among is None else pool,
                "panel": among if isinstance(among, str) and among.strip() and "," not in among else None, "revision": self.revision}
        derived = self._derived_table(model)
        if method in _MOMENT_METHODS:
            self._require(model, pool, ("moments",))
        if derived is not None and derived.imported:
            if method != "lape" or budget is not None:
                raise InvalidParameterError(f"model {model!r} holds imported neuron sets without statistics; size= and "
                                            "method= need the counts of an atlas built with neuron-atlas")
            table = self._imported(model, derived, params, among, wanted)
            meta["source"] = derived.meta.get("source")
        elif budget is None and self._fast_path_ok(model, derived, available, pool, params):
            table = self._stored(row, derived, params, wanted, notices)
        else:
            table = self._recompute(row, pool, params, wanted, method, budget, notices)
        return NeuronSet(table=table, model=model, langs=wanted, n_layers=row.n_layers, ffn_width=row.ffn_width,
                         params=meta, notices=notices)

    def coverage(self, model: str, lang: str, top: str | float = "1%", **kw: Any) -> pa.Table:
        """Which other languages ``lang``'s neuron set reaches: on how many of its neurons each one's p exceeds the bar.

        The set is ``neurons(model, lang, top, **kw)``; languages reached by none of its neurons are left out, the
        rest sorted by ``n_neurons`` (of ``set_size``). E.g. Tagalog's default set reaches Cebuano and Hiligaynon.
        """
        s = self.neurons(model, lang=lang, top=top, **kw)
        row, target = self.model(model), s.langs[0]
        pool = s.params["among"] or self.langs_of(model)
        derived = self._derived_table(model)
        if derived is not None and derived.imported:
            raise InvalidParameterError(f"model {model!r} holds imported neuron sets without statistics; coverage needs counts")
        fired, tokens = load_counts(self.layout, row, pool)
        p = activation_probs(fired, tokens)
        hits = (p[:, _flat(s.table, row.ffn_width)] > quantile(p, s.params["bar_ratio"])).sum(axis=1)
        order = [k for k in np.lexsort((np.arange(len(pool)), -hits)) if hits[k] and pool[k] != target]
        return pa.table({"lang": [pool[k] for k in order], "n_neurons": pa.array(hits[order], pa.int32()),
                         "set_size": pa.array([len(s)] * len(order), pa.int32()),
                         "share": pa.array(hits[order] / max(len(s), 1), pa.float64())})

    def steering_vector(self, model: str, lang: str, layer: int | None = None,
                        against: str | Sequence[str] | None = None) -> np.ndarray:
        """DiffMean steering vector of ``lang``: its mean residual-stream hidden state minus the mean of the other
        languages' (equal weight per language), from the stored residual means (atlas format v2), float32.

        ``layer``: an ``output_hidden_states`` index (0: the embeddings, n_layers: after the final norm) gives
        ``[hidden_size]``; None gives every layer, ``[n_layers + 1, hidden_size]``. ``against``: a language, a list
        or a panel name (default: all the model's other languages). Add it with ``interventions.steer_residual``.
        """
        if model not in self._residual:  # the model's languages are listed once per Atlas
            self._residual[model] = ResidualCache(self.layout, self.model(model), self.langs_of(model))
        cache = self._residual[model]
        target = langs_mod.resolve(lang, cache.langs, context=f"model {model!r}")
        others = self._against(model, target, against, cache.langs)
        self._require(model, [target, *others], ("residual",))
        return steering_vector(cache, target, others, layer)

    def activation_means(self, model: str, lang: str) -> np.ndarray:
        """Mean FFN activation act(gate) of every neuron over ``lang``'s tokens, ``[n_layers, ffn_width]`` float32,
        from the stored moments (atlas format v2): the ``values=`` of ``interventions.steer`` without calibration."""
        row = self.model(model)
        target = langs_mod.resolve(lang, self.langs_of(model), context=f"model {model!r}")
        self._require(model, [target], ("moments",))
        mean, _, _ = load_moments(self.layout, row, [target])
        return mean[0].astype(np.float32)

    def panels(self) -> pa.Table:
        """Named language panels usable as ``among=`` (papers' language sets and documented study panels)."""
        return panels_mod.panels()

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
    def _require(self, model: str, langs: list[str], needs: tuple[str, ...]) -> None:
        """MissingStatisticsError (with the rebuild command) unless ``langs`` have every statistic of ``needs``."""
        key = (model, needs, tuple(langs))
        if key not in self._present:
            require(self.layout, self.model(model), langs, needs, lambda: self.langs_of(model))
            self._present.add(key)

    def _against(self, model: str, target: str, against: str | Sequence[str] | None, available: list[str]) -> list[str]:
        """The languages a DiffMean contrasts ``target`` with: all others, a panel's (those the model has), or a list."""
        if against is None:
            others = [t for t in available if t != target]
        elif isinstance(against, str) and against.strip() in panels_mod.names():
            others, _ = self._pool(model, against.strip(), available)
            others = [t for t in others if t != target]
        else:
            others = [t for t in _unique(langs_mod.resolve(a, available, context=f"model {model!r}")
                                         for a in _tag_list(against, "against")) if t != target]
        if not others:
            raise InvalidParameterError(f"against={against!r} leaves no language to contrast {target} with")
        return others

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

    def _pool(self, model: str, among: str | Sequence[str] | None, available: list[str]) -> tuple[list[str], dict[str, str]]:
        """The languages LAPE compares (all, a list, or a panel's languages the model has) and a notice for a panel."""
        if among is None:
            return list(available), {}
        context, notices = f"model {model!r}", {}
        if isinstance(among, str) and among.strip() and "," not in among:  # one name is a panel: 1 language can't compare
            pool, missing = [], []
            for code in panels_mod.panel(among):
                try:
                    pool.append(langs_mod.resolve(code, available, context=context))
                except UnknownLanguageError:
                    missing.append(code)
            pool = _unique(pool)
            if missing:
                notices["among"] = f"panel {among!r}: {', '.join(missing)} not in {model!r}; compared the other {len(pool)}"
        else:
            pool = _unique(langs_mod.resolve(a, available, context=context) for a in _tag_list(among, "among"))
        if len(pool) < 2:
            raise InvalidParameterError(f"among= needs at least 2 languages to compare, got {among!r}")
        return pool, notices

    def _stored(self, row: ModelRow, derived: Derived, params: LapeParams, wanted: list[str],
                notices: dict[str, str]) -> pa.Table:
        table, meta = derived.table, derived.meta
        k = round(row.n_layers * row.ffn_width * params.top_rate)
        kept = table.filter(pc.and_(pc.less(table.column("rank"), k), pc.is_in(table.column("lang"), pa.array(wanted))))
        tags, width = list(meta["languages"]), row.ffn_width
        flat_all, lang_all = _flat(table, width), pc.index_in(table.column("lang"), pa.array(tags)).to_numpy()
        p_all = table.column("p").to_numpy()

        def columns(flat: np.ndarray) -> np.ndarray:  # p of every language on neurons ranked within the stored top
            inside = np.isin(flat_all, flat)
            out = np.zeros((len(tags), flat.size))
            out[lang_all[inside], np.searchsorted(flat, flat_all[inside])] = p_all[inside]
            return out

        def wider(lang: str) -> np.ndarray:
            return np.unique(flat_all[lang_all == tags.index(lang)])

        kept = _with_reach(kept, columns, meta["tau_bar"], tags, width)
        _tiny_notices(kept, wanted, params, columns, wider, meta["tau_bar"], tags, notices)
        return _finish(kept, row.model)

    def _imported(self, model: str, derived: Derived, params: LapeParams, among, wanted: list[str]) -> pa.Table:
        table, meta = derived.table, derived.meta
        stored = derived.stored_top_rate
        if among is not None or abs(params.top_rate - stored) > _RATE_TOL or (params.filter_rate, params.bar_ratio) != (LapeParams.filter_rate, LapeParams.bar_ratio):
            raise InvalidParameterError(
                f"model {model!r} holds neuron sets imported from {meta.get('source')} at top={stored:.4%} with no "
                f"statistics, so only top={stored:.4%} with default rates and no among= can be answered"
            )
        return _finish(table.filter(pc.is_in(table.column("lang"), pa.array(wanted))), model)

    def _recompute(self, row: ModelRow, pool: list[str], params: LapeParams, wanted: list[str], method: str,
                   budget: int | None, notices: dict[str, str]) -> pa.Table:
        if not pool:
            raise AtlasError(f"model {row.model!r} has no count shards")
        fired, tokens = load_counts(self.layout, row, pool)
        result = lape(fired, tokens, params)
        p = activation_probs(fired, tokens)
        rows = [pool.index(w) for w in wanted]
        if budget is None:
            table = lape_table(fired[rows], tokens[rows], wanted, result, params.top_rate, row.ffn_width)
        else:
            scores = ovr_scores(p, rows) if method == "ovr" else None
            if method in _MOMENT_METHODS:
                mean, var, tok = load_moments(self.layout, row, pool, var=method == "t")
                mean = mean.reshape(len(pool), -1)
                scores = (mean_diff_scores(mean, rows) if method == "mean_diff"
                          else welch_t_scores(mean, var.reshape(len(pool), -1), tok, rows))
                picks, qualified = top_scores(scores, budget), [budget] * len(rows)
            elif scores is None:
                picks, qualified = budget_sets(p, result, rows, budget)
            else:
                picks, qualified = ovr_sets(scores, budget)
            table = _set_table(p, result, pool, rows, picks, scores, row.ffn_width)
            rule = "a positive one-vs-rest score" if method == "ovr" else "p above the bar among neurons passing the filter"
            for lang, n in zip(wanted, qualified):
                if n < budget:
                    notices[lang] = f"{lang}: only {n} neurons have {rule}, fewer than size={budget}"

        def wider(lang: str) -> np.ndarray:
            chosen = result.selected(STORED_TOP_RATE)
            return np.sort(chosen[p[pool.index(lang), chosen] > result.tau_bar])

        table = _with_reach(table, lambda flat: p[:, flat], result.tau_bar, pool, row.ffn_width)
        if budget is None:
            _tiny_notices(table, wanted, params, lambda flat: p[:, flat], wider, result.tau_bar, pool, notices)
        return _finish(table, row.model)


def _flat(table: pa.Table, width: int) -> np.ndarray:
    """Flat neuron indices (layer · width + neuron) of a table's rows."""
    return table.column("layer").to_numpy().astype(np.int64) * width + table.column("neuron").to_numpy()


def _set_table(p: np.ndarray, result: LapeResult, pool: list[str], rows: list[int], picks: list[np.ndarray],
               scores: np.ndarray | None, width: int) -> pa.Table:
    """Rows of per-language picks: rank is the LAPE rank, or for scores the position within the language."""
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


def _with_reach(table: pa.Table, columns, tau_bar: float, tags: list[str], width: int) -> pa.Table:
    """Add n_langs / top_langs: the languages whose p exceeds the bar on each row's neuron (``columns(flat)`` gives p)."""
    flat = _flat(table, width)
    uniq, inv = np.unique(flat, return_inverse=True)
    count, tops = reach(columns(uniq), tau_bar, tags)
    if "score" not in table.column_names:
        table = table.append_column("score", pa.nulls(table.num_rows, pa.float64()))
    return table.append_column("n_langs", pa.array(count[inv], pa.int32())).append_column(
        "top_langs", pa.array([tops[i] for i in inv], pa.string()))


def _tiny_notices(table: pa.Table, wanted: list[str], params: LapeParams, columns, wider, tau_bar: float,
                  tags: list[str], notices: dict[str, str]) -> None:
    """A line per language with fewer than TINY neurons: whom its wider (top-5%) neurons are shared with, what to ask."""
    got = dict(zip(*np.unique(table.column("lang").to_numpy(zero_copy_only=False), return_counts=True)))
    for lang in wanted:
        n = int(got.get(lang, 0))
        if n >= TINY:
            continue
        mine = wider(lang)
        hits = (columns(mine) > tau_bar).sum(axis=1) if mine.size else np.zeros(len(tags), np.int64)
        hits[tags.index(lang)] = 0
        near = [f"{tags[k]} {hits[k]}/{mine.size}" for k in np.argsort(-hits, kind="stable")[:3] if hits[k]]
        why = (f"its top-{STORED_TOP_RATE:.0%} neurons are shared with {', '.join(near)}" if near
               else f"few neurons rank in the top {STORED_TOP_RATE:.0%} for it")
        notices[lang] = (f"{lang}: {n} neurons at top={params.top_rate:.2%} over {len(tags)} languages; {why}. Ask "
                         "size=500 for its own most specific neurons, among='diverse-10' (or a list) to compare "
                         "fewer languages, or method='ovr' with size=")


def _finish(table: pa.Table, model: str) -> pa.Table:
    """Add the model column (and null reach columns where absent), order rows by (lang, layer, neuron), cast."""
    for name in ("score", "n_langs", "top_langs"):
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, SCHEMA.field(name).type))
    table = table.select([f.name for f in SCHEMA][1:])
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
