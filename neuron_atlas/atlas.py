"""Atlas: open an atlas folder and ask it for language-specific neurons, overlaps and SQL (a facade: parsing,
planning and building answers live in ``_query``, selection methods in ``methods``, files in ``storage``/``reader``)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import catalog
from ._utils import arguments
from .languages import tags as langs_mod
from .languages import panels as panels_mod
from .format import snapshot
from ._query.parse import compared, parse_query, tag_list, unique
from ._query.plan import answer
from ._query.result import coverage_table, overlap_table
from .format.containment import check_contained
from .errors import AtlasFormatError, AtlasNotFoundError, InvalidParameterError, UnknownModelError, did_you_mean
from .hub.address import HF_SCHEME, hub_address
from .stats.lape import activation_probs
from .neuronset import NeuronSet
from .format.reader import Derived, MethodRanks, read_method_ranks, load_counts, load_moments, read_derived, read_manifest, read_model
from .format.schema import ARROW_SCHEMAS, MANIFEST, TABLES, Manifest, ModelRow
from .methods.availability import require
from ._query.steering import ResidualCache, steering_vector
from .format.layout import Layout, read_parquet
from .format.verify import ModelCheck, check_model, language_row_problems
from ._utils.files import PACKAGE_DATA

EMBEDDED = PACKAGE_DATA / "atlas"


class Atlas:
    """A neuron atlas folder (local, or remote through an fsspec filesystem), opened read-only.

    Get one with ``na.open()``: the embedded atlas (no argument), a folder (``na.open("ATLAS")``) or a Hub dataset
    (``na.open("org/name")``, ``na.open("hf://datasets/org/name@rev")``). Its methods answer with Arrow tables,
    NumPy arrays or a ``NeuronSet``; files another process writes into the folder are seen by the next ``neurons``
    or ``sql`` call.

    Args:
        root: the atlas folder (a local path, or the path inside ``fs`` for a remote atlas).
        fs: an fsspec filesystem to read ``root`` through (default None: the local disk).
        revision: the Hub commit the atlas is pinned to, recorded in the neuron sets' parameters (default None:
            a local atlas).

    Attributes:
        layout: where each table's files lie (``format.layout.Layout``: ``root`` and ``fs``).
        revision: as given.
        manifest: the validated ``atlas.json`` (``format.schema.Manifest``).

    Raises:
        AtlasNotFoundError: ``root`` does not exist or holds no ``atlas.json``.
        AtlasFormatError: ``atlas.json`` is not a neuron-atlas manifest (or of a newer format version), or a
            symlink in a local atlas leads outside its folder.
    """

    def __init__(self, root: str | os.PathLike, fs: Any = None, revision: str | None = None) -> None:
        self.layout = Layout(str(root), fs)
        self.revision = revision
        self.manifest: Manifest = read_manifest(self.layout)
        if fs is None:
            check_contained(self.layout.root)  # a symlink out of the folder: refused before any file is read
        self._state = snapshot.state(self.layout)
        self._forget()

    def _forget(self) -> None:
        """Drop everything read from the files (on open, and when another process changed them)."""
        self._models: dict[str, ModelRow] = {}
        self._derived: dict[str, Derived | None] = {}
        self._ranks: dict[str, MethodRanks | None] = {}
        self._checks: dict[str, ModelCheck] = {}
        for name in ("model_slugs", "_sql"):
            self.__dict__.pop(name, None)
        self._residual: dict[str, ResidualCache] = {}
        self._present: set[tuple] = set()

    def _refresh(self) -> None:
        """Reload if another process wrote into the folder since it was read (re-derived, added shards), so that
        answers never mix the new derived tables with the old list of counts."""
        now = snapshot.state(self.layout)
        if now != self._state:
            self._state = now
            if self.layout.fs is None:
                check_contained(self.layout.root)
            self._forget()

    def __repr__(self) -> str:
        return f"Atlas({self.layout.root!r}, models={self.model_slugs})"

    @property
    def location(self) -> str:
        """Where the atlas was opened from, as neuron sets record it: hf://datasets/org/name@sha, 'embedded' or a path."""
        if self.layout.fs is not None:
            return f"{HF_SCHEME}{self.layout.root}"
        root = Path(self.layout.root).resolve()
        return "embedded" if root == EMBEDDED.resolve() else str(root)

    # -- catalogue -----------------------------------------------------------------------------
    @cached_property
    def model_slugs(self) -> list[str]:
        """The slugs of the atlas' models (one per ``models/model=<slug>`` folder), sorted."""
        return self.layout.model_slugs()

    def model(self, model: str) -> ModelRow:
        """Provenance row of ``model`` (a slug, or the Hub id it was built from: ``google/gemma-3-270m``).

        Args:
            model: a slug in any case, or the Hub id of the model it was built from (see ``resolve_model``).

        Returns:
            ModelRow: the model's row of the ``models`` table (``format.schema.ModelRow``: shape ``n_layers``,
            ``ffn_width``, ``hidden_size``; provenance ``hf_repo``, ``revision``, ``corpus``, ``dtype``, ``source``,
            ...), read once per Atlas.

        Raises:
            UnknownModelError: the atlas has no such model (the message names the closest slugs, or where to get it).
            InvalidParameterError: ``model`` is not a non-empty, printable string.
            AtlasFormatError: the model's row file is missing, corrupt or does not match the schema.
        """
        model = self.resolve_model(model)
        if model not in self._models:
            self._models[model] = read_model(self.layout, model, fingerprints=self.manifest.fingerprinted)
        return self._models[model]

    def resolve_model(self, name: str, langs: str | Sequence[str] | None = None) -> str:
        """The slug a user means by ``name``: the slug itself in any case, or a Hub id (``meta-llama/Llama-3.1-8B``).

        An unknown model names the closest slugs, and where published atlases or neuron sets for it live (for
        ``langs``: whether they cover them) with the import and build commands (``catalog.advice``).

        Args:
            name: a slug (any case), its slug spelling (``Gemma-3-270M``) or the Hub id it was built from.
            langs: the languages the caller asks for (a tag or a list), used only in the advice of an unknown
                model's error (default None: no languages).

        Returns:
            str: the model's slug as stored in the atlas.

        Raises:
            UnknownModelError: no model of the atlas matches ``name``.
            InvalidParameterError: ``name`` is not a non-empty, printable string.
            AtlasFormatError: a model row read to match a Hub id is corrupt.
        """
        slugs = self.model_slugs
        arguments.name(name, "model", repr(slugs[0] if slugs else "gemma-3-270m"))
        if name in slugs:
            return name
        named = catalog.weights_named(name)  # the exact weights of a packaged model: its Hub id, not other weights
        if named is not None and named[0] in slugs:
            slug, other = named
            if other is None:
                return slug
            exact = catalog.packaged(slug)
            raise UnknownModelError(
                f"{name!r} is {other}: other weights than the ones model {slug!r} of this atlas was built from "
                f"({exact['hub_id']}, {exact['variant']}; {exact['weights']}), so its neurons differ. Ask for "
                f"{slug!r} (or {exact['hub_id']!r}) for those, or build {name}: "
                f"`neuron-atlas build --model {name} --corpus udhr --lang all --out ATLAS`")
        wanted = {name.strip().lower(), catalog.slug_of(name)}
        hit = next((s for s in slugs if s.lower() in wanted), None)
        if hit is None and "/" in name:  # a Hub id: the repo a model of the atlas was built from
            hit = next((s for s in slugs if read_model(self.layout, s).hf_repo.lower() == name.strip().lower()), None)
        if hit is not None:
            return hit
        tags = [langs] if isinstance(langs, str) else list(langs or [])
        near = did_you_mean(name, slugs)  # a typo of a model we have needs no advice on building another
        raise UnknownModelError(
            f"model {name!r} is not in the atlas at {self.layout.root} (it has {', '.join(slugs) or 'no models'})."
            + (near or " " + catalog.advice(name, tags))
        )

    def models(self) -> pa.Table:
        """One row per model: slug, shape and provenance (the ``models`` table).

        Returns:
            pyarrow.Table: one row per model in ``model_slugs`` order, columns ``model``, ``hf_repo``, ``revision``,
            ``architecture``, ``n_layers``, ``ffn_width``, ``hidden_size``, ``activation``, ``gated``, ``corpus``,
            ``corpus_version``, ``tokens_per_language``, ``seq_len``, ``dtype``, ``source``, ``builder_version``,
            ``created``.

        Raises:
            AtlasFormatError: a model's row file is missing, corrupt or does not match the schema.
        """
        rows = [self.model(s).model_dump() for s in self.model_slugs]
        return pa.Table.from_pylist(rows, schema=ARROW_SCHEMAS["models"])

    def langs_of(self, model: str) -> list[str]:
        """Canonical tags of the languages the model has statistics (or imported sets) for.

        Args:
            model: a slug or the Hub id the model was built from.

        Returns:
            list[str]: canonical tags (``tgl_Latn``): the languages of the model's count shards (sorted), or for
            imported neuron sets the languages their file lists.

        Raises:
            UnknownModelError: the atlas has no such model.
            InvalidParameterError: ``model`` is not a non-empty, printable string.
            AtlasFormatError: the model's row or its imported ``lape`` table is corrupt.
        """
        model = self.resolve_model(model)
        derived = self._derived_table(model)
        if derived is not None and derived.imported:
            return derived.languages
        return self.layout.count_langs(model)

    def languages(self, model: str | None = None) -> pa.Table:
        """The ``languages`` table (lang, iso639_3, script, name), for one model with its token counts.

        Args:
            model: a slug or Hub id to keep only that model's languages (default None: every row of the table).

        Returns:
            pyarrow.Table: columns ``lang`` (canonical tag), ``iso639_3``, ``script`` and ``name``; with ``model``,
            only the rows of ``langs_of(model)`` and an int64 column ``tokens``: the tokens counted per language
            (null where the atlas records none, e.g. imported sets).

        Raises:
            AtlasFormatError: ``languages.parquet`` is missing or corrupt, or its rows are wrong for the atlas (a row
                listed twice, a wrong name or script, no row for a language with shards: what ``verify`` checks),
                or the model's row is corrupt.
            UnknownModelError: ``model`` is not in the atlas.
            InvalidParameterError: ``model`` is not a non-empty, printable string.
        """
        self._refresh()
        model = None if model is None else self.resolve_model(model)
        path = self.layout.file("languages")
        table = read_parquet(path, "languages", fs=self.layout.fs)
        # the rows must fit the languages asked about: each row its tag's, and with a model a row for each of its
        # languages (over hf://, nothing of the other models is read)
        wrong = language_row_problems(table.to_pylist(), self.langs_of(model) if model is not None else [])
        if wrong:
            raise AtlasFormatError(f"{path}: {wrong[0]}" + (f" (and {len(wrong) - 1} more problems; `neuron-atlas "
                                                            "verify` lists them)" if len(wrong) > 1 else ""))
        if model is None:
            return table
        tags = self.langs_of(model)
        table = table.filter(pc.is_in(table.column("lang"), pa.array(tags)))
        tokens = self._counted_tokens(model) or {}
        return table.append_column("tokens", pa.array([tokens.get(t) for t in table.column("lang").to_pylist()], pa.int64()))

    def disk_bytes(self, model: str) -> int:
        """Bytes of every file of ``model`` in the atlas (its row, statistics and derived tables).

        Args:
            model: a slug or the Hub id the model was built from.

        Returns:
            int: the summed size in bytes of the model's files in every table keyed by model.

        Raises:
            UnknownModelError: the atlas has no such model.
            InvalidParameterError: ``model`` is not a non-empty, printable string.
        """
        model = self.resolve_model(model)
        return sum(self.layout.size(path) for table in TABLES if "model" in table.keys
                   for _, path in self.layout.files(table.name, model=model))

    # -- neurons -------------------------------------------------------------------------------
    def neurons(
        self,
        model: str,
        lang: str | Sequence[str] | None = None,
        top: str | float | None = None,
        *,
        size: int | str | None = None,
        method: str = "lape",
        filter_rate: float = 0.95,
        bar_ratio: float = 0.95,
        among: str | Sequence[str] | None = None,
    ) -> NeuronSet:
        """Language-specific neurons of ``model``: for ``lang`` (one, several, or None for all).

        Default: LAPE over all the model's languages keeping the share ``top`` of all L·d neurons ('1%' or 0.01, the
        default): small, specific and stable sets, but tiny or empty for languages that share their neurons with
        relatives. Imported sets answer at their published rate (the default ``top`` gives it, with a notice).
        ``size=500`` (or '0.5%' of L·d) gives each language its own size: among neurons passing LAPE's filter
        whose p for that language exceeds the bar, the ``size`` lowest in entropy. ``method="ovr"`` ranks by the
        one-vs-rest score (p minus the 95th percentile of p over the other languages; needs ``size``); other
        registered methods: ``neuron_atlas.methods.method_names()``. ``among`` recomputes over a subset of
        languages: a list, or a panel name (see ``panels()``).

        Args:
            model: a slug or the Hub id the model was built from.
            lang: one language (any spelling: 'tl', 'tgl', 'Tagalog', 'tgl_Latn'), comma-separated tags ('tl,id')
                or a list (default None: every language compared).
            top: LAPE's share of all L·d neurons kept, a string ('1%') or a number in (0, 1] (default None: 1%, or
                an imported set's published rate).
            size: neurons per language, a count (500) or a share of L·d ('0.5%') (default None: LAPE's global
                ``top``); required by the scoring methods ``ovr``, ``mean_diff`` and ``t``.
            method: the registered selection method (default 'lape').
            filter_rate: LAPE's filter quantile: neurons whose highest p lies below this quantile of all p are
                dropped (default 0.95).
            bar_ratio: LAPE's activation-bar quantile: a language counts as reached where p exceeds it
                (default 0.95).
            among: the languages compared: a list of two or more, 'a,b' or a panel name (default None: all the
                model's languages); ``lang`` must lie among them.

        Returns:
            NeuronSet: the chosen neurons, one row per (lang, layer, neuron) sorted by those, with the query's
            parameters in ``params`` and a notice per language whose set is tiny or short of ``size``.

        Raises:
            UnknownModelError: the atlas has no such model.
            UnknownLanguageError: a language of ``lang`` or ``among`` is unknown, or the model lacks it.
            InvalidParameterError: a parameter is out of range or malformed (``top``, ``size``, rates, unknown
                ``method`` or panel, fewer than 2 languages compared, ``lang`` outside ``among``, a scoring method
                without ``size``), or imported sets are asked for what only statistics give (another ``top``,
                ``size``, ``among``, other rates or methods).
            MissingStatisticsError: the method needs act(gate) moments (``mean_diff``, ``t``) the atlas does not
                hold for the compared languages.
            AtlasFormatError: a file the answer is read from is corrupt.
            AtlasError: the model has no count shards to compute from.
        """
        self._refresh()
        model = self.resolve_model(model, lang)
        row = self.model(model)
        query = parse_query(row, lambda: self.langs_of(model), lang, top, size, method, filter_rate, bar_ratio, among)
        table, notices, extra = answer(self.layout, query, self._derived_table(model), self.langs_of(model),
                                       lambda: self._check(model).derived_ok, lambda: self._method_ranks(model))
        return NeuronSet(table=table, model=model, langs=query.wanted, n_layers=row.n_layers, ffn_width=row.ffn_width,
                         params={**query.meta(self.revision), "atlas": self.location, **extra}, notices=notices)

    def coverage(self, model: str, lang: str, top: str | float | None = None, **kw: Any) -> pa.Table:
        """Which other languages ``lang``'s neuron set reaches: on how many of its neurons each one's p exceeds the bar.

        The set is ``neurons(model, lang, top, **kw)``; languages reached by none of its neurons are left out, the
        rest sorted by ``n_neurons`` (of ``set_size``). E.g. Tagalog's default set reaches Cebuano and Hiligaynon.

        Args:
            model: a slug or the Hub id the model was built from.
            lang: the one language whose set is described (any spelling).
            top: LAPE's share of neurons, as in ``neurons`` (default None: 1%).
            **kw: the other keywords of ``neurons`` (``size``, ``method``, ``filter_rate``, ``bar_ratio``,
                ``among``); the languages compared are ``among``'s, else all the model's.

        Returns:
            pyarrow.Table: one row per other language reaching the set, by decreasing reach: ``lang`` (canonical
            tag), ``n_neurons`` (int32: neurons of the set on which its p exceeds the bar), ``set_size`` (int32)
            and ``share`` (float64: ``n_neurons / set_size``).

        Raises:
            InvalidParameterError: ``lang`` names more (or fewer) than one language, the model holds imported sets
                (no counts), or a keyword is invalid as for ``neurons``.
            UnknownModelError: the atlas has no such model.
            UnknownLanguageError: ``lang`` is unknown, or the model lacks it.
            MissingStatisticsError: the method asked for needs statistics the atlas does not hold.
            AtlasFormatError: a count shard is corrupt.
        """
        if len(arguments.names(lang, "lang", "'tl'")) != 1:
            raise InvalidParameterError(f"coverage() describes one language's set; got lang={lang!r}")
        model = self.resolve_model(model, lang)
        s = self.neurons(model, lang=lang, top=top, **kw)
        pool = s.params["among"] or self.langs_of(model)
        derived = self._derived_table(model)
        if derived is not None and derived.imported:
            raise InvalidParameterError(f"model {model!r} holds imported neuron sets without statistics; coverage needs counts")
        return coverage_table(s, s.langs[0], pool, activation_probs(*load_counts(self.layout, self.model(model), pool)))

    def steering_vector(self, model: str, lang: str, layer: int | None = None,
                        against: str | Sequence[str] | None = None) -> np.ndarray:
        """DiffMean steering vector of ``lang``: its mean residual-stream hidden state minus the mean of the other
        languages' (equal weight per language), from the stored residual means (atlas format v2), float32.

        ``layer``: an ``output_hidden_states`` index (0: the embeddings, n_layers: after the final norm) gives
        ``[hidden_size]``; None gives every layer, ``[n_layers + 1, hidden_size]``. ``against``: a language, a list
        or a panel name (default: all the model's other languages). Add it with ``interventions.steer_residual``.

        Args:
            model: a slug or the Hub id the model was built from.
            lang: the language steered towards (any spelling).
            layer: an ``output_hidden_states`` index from 0 to n_layers (default None: every layer).
            against: the languages contrasted: one, 'a,b', a list or a panel name (default None: all the model's
                other languages).

        Returns:
            numpy.ndarray: float32, ``[hidden_size]`` for one ``layer``, else ``[n_layers + 1, hidden_size]``.

        Raises:
            UnknownModelError: the atlas has no such model.
            UnknownLanguageError: ``lang`` or a language of ``against`` is unknown, or the model lacks it.
            InvalidParameterError: ``layer`` is out of range, ``against`` is malformed or leaves no other language.
            MissingStatisticsError: the atlas holds no residual means for ``lang`` or a contrasted language (v1
                atlases, imported sets).
            AtlasFormatError: a residual-means file is corrupt.
        """
        self._refresh()
        model = self.resolve_model(model, lang)
        if model not in self._residual:  # the model's languages are listed once per Atlas
            self._residual[model] = ResidualCache(self.layout, self.model(model), self.langs_of(model),
                                                  self._counted_tokens(model))
        cache = self._residual[model]
        target = langs_mod.resolve(lang, cache.langs, context=f"model {model!r}")
        others = self._against(model, target, against, cache.langs)
        self._require(model, [target, *others], ("residual",))
        return steering_vector(cache, target, others, layer)

    def activation_means(self, model: str, lang: str) -> np.ndarray:
        """Mean FFN activation act(gate) of every neuron over ``lang``'s tokens, ``[n_layers, ffn_width]`` float32,
        from the stored moments (atlas format v2): ``values=`` for ``interventions.steer`` without calibration.

        Args:
            model: a slug or the Hub id the model was built from.
            lang: the language (any spelling).

        Returns:
            numpy.ndarray: float32 ``[n_layers, ffn_width]``, the mean act(gate) of each neuron over the language.

        Raises:
            UnknownModelError: the atlas has no such model.
            UnknownLanguageError: ``lang`` is unknown, or the model lacks it.
            InvalidParameterError: ``model`` is not a non-empty, printable string.
            MissingStatisticsError: the atlas holds no act(gate) moments for ``lang`` (v1 atlases, imported sets,
                the embedded atlas).
            AtlasFormatError: the moments file is corrupt.
        """
        self._refresh()
        model = self.resolve_model(model, lang)
        row = self.model(model)
        target = langs_mod.resolve(lang, self.langs_of(model), context=f"model {model!r}")
        self._require(model, [target], ("moments",))
        mean, _, _ = load_moments(self.layout, row, [target], var=False, tokens=self._counted_tokens(model))
        return mean[0].astype(np.float32)

    def panels(self) -> pa.Table:
        """Named language panels usable as ``among=`` (papers' language sets and documented study panels).

        Returns:
            pyarrow.Table: one row per panel: ``panel`` (its name), ``n_langs``, ``langs`` (space-separated codes as
            the source writes them) and ``source``.
        """
        return panels_mod.panels()

    def overlap(self, model: str, langs: Sequence[str] | None = None, top: str | float | None = None,
                **kw: Any) -> pa.Table:
        """Jaccard matrix of the languages' neuron sets: column ``lang`` then one float column per language.

        Args:
            model: a slug or the Hub id the model was built from.
            langs: the languages of the matrix: a list, or 'a,b' (default None: every language compared).
            top: LAPE's share of neurons, as in ``neurons`` (default None: 1%).
            **kw: the other keywords of ``neurons`` (``size``, ``method``, ``filter_rate``, ``bar_ratio``,
                ``among``).

        Returns:
            pyarrow.Table: one row per language: ``lang`` (canonical tag), then one float64 column per language
            named by its tag holding the Jaccard index of the two sets (NaN where both are empty); the schema
            metadata holds the neuron sets' parameters, as ``NeuronSet.to_arrow()``.

        Raises:
            UnknownModelError: the atlas has no such model.
            UnknownLanguageError: a language is unknown, or the model lacks it.
            InvalidParameterError: a parameter is invalid, as for ``neurons``.
            MissingStatisticsError: the method asked for needs statistics the atlas does not hold.
            AtlasFormatError: a file the sets are read from is corrupt.
        """
        return overlap_table(self.neurons(model, lang=langs, top=top, **kw))

    def features(self, model: str, pair: str = "sw-en", top: int | None = 20, layer: int | None = None) -> pa.Table:
        """Large-magnitude hidden features (Kim et al.) of one translation pair: the top dimensions per layer.

        Args:
            model: a slug or the Hub id the model was built from.
            pair: the translation pair as 'source-target', each side any spelling of a language (default 'sw-en').
            top: the dimensions kept per layer, the largest norms first (default 20; None: every dimension).
            layer: one stored layer (0: the scaled embeddings, n_layers: the last block's output) (default None:
                every layer).

        Returns:
            pyarrow.Table: columns ``model``, ``pair`` (the stored canonical pair, ``swh_Latn-eng_Latn``),
            ``layer``, ``dim``, ``norm`` (L2 norm of the dimension over the prompts' tokens), ``rms`` (norm per
            square root of tokens) and ``rank`` (0: the layer's largest), sorted by (layer, rank).

        Raises:
            UnknownModelError: the atlas has no such model.
            InvalidParameterError: ``pair`` is malformed or has no features table, ``top`` < 1, or ``layer`` is
                not stored.
            AtlasFormatError: the features file is corrupt.
        """
        from ._query.features import features

        if not isinstance(pair, tuple):  # ("sw", "en") as resolve_pair takes it
            arguments.name(pair, "pair", "'sw-en' or ('sw', 'en')")
        return features(self.layout, self.resolve_model(model), pair, top, layer)

    def feature_overlap(self, model: str, pairs: Sequence[str] | None = None, top: int = 20) -> pa.Table:
        """Per layer, how many top-``top`` features two language pairs share (and their Jaccard index).

        Args:
            model: a slug or the Hub id the model was built from.
            pairs: a list of two or more pairs like ``['sw-en', 'tl-en']`` (default None: every stored pair).
            top: the dimensions per layer and pair compared (default 20).

        Returns:
            pyarrow.Table: one row per layer and pair of pairs: ``layer`` (int16), ``a`` and ``b`` (the stored
            canonical pairs), ``shared`` (int32: dimensions in both tops) and ``jaccard`` (float64).

        Raises:
            UnknownModelError: the atlas has no such model.
            InvalidParameterError: fewer than two pairs, a pair malformed or without features, or ``top`` < 1.
            AtlasFormatError: a features file is corrupt.
        """
        from ._query.features import overlap

        return overlap(self.layout, self.resolve_model(model), pairs, top)

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None, *,
            timeout: float | None = None) -> pa.Table:
        """Run a read-only SQL query (bound ``?``/``$name`` parameters) over the atlas' views; Arrow result.

        Views: models, languages, counts (with p), ranking, lape (the default top-1% sets of built models, as
        ``neurons(model)`` answers), lape_stored (built models' rows up to the stored top, and imported sets),
        imported (published sets with the ``top_rate`` and ``source`` they were published with), features
        (large-magnitude hidden features per translation pair). Files failing validation are left
        out with an AtlasWarning naming them. ``timeout`` (seconds) and Ctrl-C interrupt a running query.

        Args:
            query: one SELECT statement (DuckDB SQL).
            params: values bound to the query's parameters: a list or tuple for ``?``, a dict with string keys for
                ``$name`` (default None: the query has no parameters).
            timeout: seconds the query may run, in (0, one week] (default None: no limit).

        Returns:
            pyarrow.Table: the query's result.

        Raises:
            InvalidParameterError: the query is not a string or holds NUL, is not exactly one SELECT statement,
                fails to parse or bind (unknown view or column, wrong type), or ``params``/``timeout`` are
                malformed or do not match the query's parameters.
            AtlasError: the query ran past ``timeout``, or DuckDB failed while reading the atlas' files.
        """
        self._refresh()
        return self._sql.query(query, params, timeout=timeout)

    @cached_property
    def _sql(self):
        from ._query.sql import AtlasSQL  # duckdb is imported only when SQL is used

        return AtlasSQL(self.layout)

    # -- internals -----------------------------------------------------------------------------
    def _derived_table(self, model: str) -> Derived | None:
        if model not in self._derived:  # the lape table as the checks read it (one read), else read here
            self._derived[model] = read_derived(self.layout, model, self._check(model).tables.get("lape"))
        return self._derived[model]

    def _method_ranks(self, model: str) -> MethodRanks | None:
        """The stored rankings of the moment methods (an atlas without the moments), read once per Atlas."""
        if model not in self._ranks:
            self._ranks[model] = read_method_ranks(self.layout, model)
        return self._ranks[model]

    def _counted_tokens(self, model: str) -> dict[str, int] | None:
        """Each language's token count as its counts shard holds it (what statistics files must repeat)."""
        derived = self._derived_table(model)
        return derived.tokens if derived is not None else None

    def _require(self, model: str, langs: list[str], needs: tuple[str, ...]) -> None:
        """MissingStatisticsError (with the rebuild command) unless ``langs`` have every statistic of ``needs``."""
        key = (model, needs, tuple(langs))
        if key not in self._present:
            require(self.layout, self.model(model), langs, needs, lambda: self.langs_of(model))
            self._present.add(key)

    def _against(self, model: str, target: str, against: str | Sequence[str] | None, available: list[str]) -> list[str]:
        """The languages a DiffMean contrasts ``target`` with: all others, a panel's (those the model has), or a list."""
        if against is None:
            others = list(available)
        elif isinstance(against, str) and against.strip() in panels_mod.names():
            others, _ = compared(model, against.strip(), available)
        else:
            others = unique(langs_mod.resolve(a, available, context=f"model {model!r}") for a in tag_list(against, "against"))
        others = [t for t in others if t != target]
        if not others:
            raise InvalidParameterError(f"against={against!r} leaves no language to contrast {target} with")
        return others

    def _check(self, model: str) -> ModelCheck:
        """The cheap checks of ``model``'s files (Parquet footers), once per Atlas."""
        if model not in self._checks:
            # the derived tables' footers only: shards are checked as they are read (and by sql() and verify)
            self._checks[model] = check_model(self.layout, model, shards=False, fingerprints=self.manifest.fingerprinted,
                                              row=self.model(model))
        return self._checks[model]


def open(path: str | os.PathLike | None = None, *, revision: str | None = None, **kw: Any) -> Atlas:  # noqa: A001 - mirrors duckdb/zarr `open`
    """Open an atlas: the embedded default (no argument), a folder, or a Hub dataset: ``org/name`` (as
    ``datasets.load_dataset`` takes it: a local folder of that name wins) or ``hf://datasets/org/name[@rev]``.

    Hub atlases take ``revision`` (branch, tag or commit), ``mode`` ('lazy': read files on demand; 'snapshot':
    download, works offline), ``token`` and ``cache_dir`` (see ``neuron_atlas.hub.remote.locate``).

    Args:
        path: None for the embedded atlas; a local atlas folder (str or os.PathLike); ``org/name`` or
            ``hf://datasets/org/name[@rev][/folder]`` for a Hub dataset (default None).
        revision: Hub atlases only: the branch, tag or commit to pin (default None: the address' ``@rev``, else
            ``main``); it must agree with an ``@rev`` in the address.
        **kw: Hub atlases only: ``mode`` ('lazy', the default, or 'snapshot'), ``token`` (default: ``HF_TOKEN`` or
            the saved login) and ``cache_dir`` (default: the Hugging Face cache).

    Returns:
        Atlas: the atlas, opened read-only (a Hub atlas pinned to the commit its revision pointed at).

    Raises:
        AtlasNotFoundError: no atlas at ``path`` (no ``atlas.json``), no embedded atlas installed, or the Hub has
            no such dataset or revision (or it is gated, or not in the cache while offline).
        AtlasFormatError: ``atlas.json`` is not a neuron-atlas manifest (or of a newer format version), or a
            symlink in a local atlas leads outside its folder.
        InvalidParameterError: ``path`` is not a path or holds NUL, the Hub address or repo id is malformed, or
            ``revision`` is given for a local or the embedded atlas, or disagrees with the address' ``@rev``.
        AtlasError: ``mode`` is neither 'lazy' nor 'snapshot', or the Hub refused the request or could not be
            reached.
    """
    if path is not None:
        arguments.path(path, "the atlas")
    if path is None:
        if revision is not None:
            raise InvalidParameterError("revision= applies to Hub atlases; the embedded atlas has one version")
        if not (EMBEDDED / MANIFEST).exists():
            raise AtlasNotFoundError(
                "no embedded atlas is installed with this copy of neuron-atlas. Build one with "
                "`neuron-atlas build --model google/gemma-3-270m --corpus udhr --out ATLAS` (any causal LM's Hub id "
                "or folder) and open it with na.open('ATLAS')."
            )
        return Atlas(EMBEDDED)
    hub = hub_address(os.fspath(path), revision)
    if hub is not None:
        from .hub.remote import locate  # the Hub transport loads only for hf:// atlases

        where = locate(hub, **kw)
        return Atlas(where.root, fs=where.fs, revision=where.revision)
    if kw:
        raise InvalidParameterError(f"{', '.join(f'{k}=' for k in kw)} apply to Hub atlases (hf://datasets/org/name or "
                                    f"org/name); {os.fspath(path)!r} is a local folder")
    return Atlas(os.fspath(path))
