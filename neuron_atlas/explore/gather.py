"""What the explorer shows of one model, gathered once per model through the Atlas query API, vectorised in numpy.

One query per method at the largest size gives every smaller size too (a size-k set is the first k of the
size-K set in the method's rank order), and the language-similarity and relatives matrices come from one
membership product, so the cost per model is a few queries, not one per page.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..languages import tags as langs_mod
from ..atlas import Atlas
from ..errors import AtlasError, MissingStatisticsError
from ..stats.lape import LapeParams, parse_top
from ..methods import Statistics, get_method, method_names
from ..format.reader import read_derived
from ..format.schema import ModelRow
from .cluster import average_linkage_order

SIZES = (50, 100, 200, 500)  # per-language set sizes shown (size=); the largest also defines similarity
SIM_SIZE = SIZES[-1]
DEFAULT_TOP = "1%"
FAMILY_NAMES = {"hbs": "Serbo-Croatian"}  # langcodes names the macrolanguage after one member ('Serbian')


def size_methods() -> list[str]:
    """The registered selection methods: each ranks a language's neurons for ``size=`` (LAPE's own budget first)."""
    return method_names()


@dataclass(frozen=True)
class Variant:
    """One way of choosing a language's neurons: a method and a size (None: LAPE's default top share)."""

    method: str
    size: int | None
    counts: np.ndarray  # [languages, layers] neurons per layer
    title: str | None = None  # the label, where not the method's and size's (imported sets)

    @property
    def key(self) -> str:
        return f"{self.method}-{'top1' if self.size is None else self.size}"

    @property
    def label(self) -> str:
        if self.title:
            return self.title
        return f"LAPE top {DEFAULT_TOP} (default)" if self.size is None else f"{self.method} size={self.size}"


@dataclass(frozen=True)
class Language:
    """A language as the pages describe it."""

    tag: str
    name: str
    script: str
    script_name: str
    family: str  # the ISO 639-3 macrolanguage's English name, or "" for a language outside any
    tokens: int | None


@dataclass
class ModelData:
    """Everything the model's pages show, as arrays indexed by language (``langs`` order) and layer."""

    row: ModelRow
    langs: list[Language]
    variants: list[Variant]
    inter: np.ndarray  # [K, K] neurons two languages' similarity sets share
    set_size: np.ndarray  # [K] size of each language's similarity set
    sim_variant: str  # key of the variant the similarity sets come from
    unavailable: dict[str, str] = field(default_factory=dict)  # method -> why the atlas cannot answer it
    notices: dict[str, str] = field(default_factory=dict)  # tag -> the default query's notice
    diffmean: np.ndarray | None = None  # [K, K] cosine of the languages' DiffMean vectors (format v2), or None
    diffmean_layer: int | None = None  # the output_hidden_states point they are taken at

    @cached_property
    def tags(self) -> list[str]:
        return [x.tag for x in self.langs]

    def variant(self, key: str) -> Variant:
        return next(v for v in self.variants if v.key == key)

    @cached_property
    def jaccard(self) -> np.ndarray:
        """|A ∩ B| / |A ∪ B| of the similarity sets (0 where both are empty)."""
        union = self.set_size[:, None] + self.set_size[None, :] - self.inter
        return np.divide(self.inter, union, out=np.zeros(self.inter.shape), where=union > 0)

    @cached_property
    def share(self) -> np.ndarray:
        """share[i, j]: the fraction of language i's similarity set that lies in language j's set."""
        size = self.set_size[:, None].astype(np.float64)
        return np.divide(self.inter, size, out=np.zeros(self.inter.shape), where=size > 0)

    @cached_property
    def cluster_order(self) -> np.ndarray:
        """Languages in the leaf order of average-linkage clustering on 1 − Jaccard."""
        return average_linkage_order(1.0 - self.jaccard)

    def grouped_order(self, cluster: np.ndarray | None = None) -> np.ndarray:
        """Languages grouped by script (largest first), then macrolanguage, then in cluster order."""
        cluster = self.cluster_order if cluster is None else cluster
        pos = np.empty(len(cluster), np.int64)
        pos[cluster] = np.arange(len(cluster))
        by_script: dict[str, int] = {}
        for x in self.langs:
            by_script[x.script] = by_script.get(x.script, 0) + 1
        script_rank = {s: i for i, s in enumerate(sorted(by_script, key=lambda s: (-by_script[s], s)))}
        first: dict[tuple[str, str], int] = {}
        for i, x in enumerate(self.langs):
            if x.family:
                first[(x.script, x.family)] = min(first.get((x.script, x.family), pos[i]), pos[i])
        keys = [(script_rank[x.script], first.get((x.script, x.family), pos[i]), pos[i]) for i, x in enumerate(self.langs)]
        return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def gather_model(atlas: Atlas, model: str) -> ModelData:
    """Every method's sets of ``model`` at every size, from one read of its statistics, and what the pages derive.

    The default sets come from ``atlas.neurons`` (the stored table, with its notices); the ``size=`` sets from each
    registered method run once at the largest size on one shared ``Statistics`` (counts read, LAPE ranked once), as
    ``atlas.neurons(model, size=..., method=...)`` runs them.
    """
    row = atlas.model(model)
    tags = atlas.langs_of(model)
    langs = languages_of(atlas, model, tags)
    derived = read_derived(atlas.layout, model)
    imported = derived is not None and derived.imported
    if imported:  # published sets answer only at the rate they were published with
        rate = derived.stored_top_rate
        default = atlas.neurons(model, top=rate)
        title = f"published sets (top {rate:.2%}, {derived.meta.get('source') or 'imported'})"
    else:
        default, title = atlas.neurons(model, top=DEFAULT_TOP), None
    k, layer, neuron = _rows(default.table, tags)
    variants = [Variant("lape", None, _layer_counts(k, layer, len(tags), row.n_layers), title)]
    unavailable: dict[str, str] = {}
    sim_sets, sim_key = (k, layer * row.ffn_width + neuron), variants[0].key
    stats = Statistics(atlas.layout, row, tags, LapeParams(parse_top(DEFAULT_TOP)))
    rows = list(range(len(tags)))
    for name in size_methods():
        try:
            if imported:  # the query API says why: no statistics to rank by
                atlas.neurons(model, size=SIM_SIZE, method=name)
            method = get_method(name)
            for need in method.needs:
                stats.load(need)
            picks = method.select(stats, rows, SIM_SIZE).picks
        except AtlasError as exc:  # e.g. imported sets, or a method needing statistics this atlas lacks
            unavailable[name] = str(exc)
            continue
        pos = np.concatenate([np.arange(len(x)) for x in picks])
        k = np.repeat(np.arange(len(tags)), [len(x) for x in picks])
        flat = np.concatenate(picks).astype(np.int64)
        variants += [Variant(name, size, _layer_counts(k[pos < size], flat[pos < size] // row.ffn_width, len(tags),
                                                       row.n_layers)) for size in SIZES]
        if name == "lape":
            sim_sets, sim_key = (k, flat), f"lape-{SIM_SIZE}"
    inter, size = _intersections(*sim_sets, len(tags))
    layer = row.n_layers // 2
    return ModelData(row=row, langs=langs, variants=variants, inter=inter, set_size=size, sim_variant=sim_key,
                     unavailable=unavailable, notices=dict(default.notices),
                     diffmean=diffmean_cosines(atlas, model, tags, layer), diffmean_layer=layer)


def diffmean_cosines(atlas: Atlas, model: str, tags: list[str], layer: int) -> np.ndarray | None:
    """Cosine similarity of the languages' DiffMean steering vectors (each against all others) at ``layer``; None
    when the atlas holds no residual means for the model (format v1, imported sets)."""
    try:
        vectors = np.stack([atlas.steering_vector(model, t, layer=layer) for t in tags]).astype(np.float64)
    except MissingStatisticsError:
        return None
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return np.clip(unit @ unit.T, -1.0, 1.0)


def method_summaries() -> dict[str, str]:
    """Each registered method's one-line description, for the pages' key."""
    return {name: get_method(name).summary for name in method_names()}


def token_summary(langs: list[Language]) -> str:
    """'2048' when every language has the same tokens, else 'min–max (median m)'."""
    values = [x.tokens for x in langs if x.tokens is not None]
    if not values:
        return "unknown"
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,} (median {statistics.median(values):,.0f})"


def languages_of(atlas: Atlas, model: str, tags: list[str]) -> list[Language]:
    """The model's languages with their names, scripts, families and token counts, in ``tags`` order."""
    table = atlas.languages(model)
    rows = {r["lang"]: r for r in table.to_pylist()}
    out = []
    for tag in tags:
        r = rows.get(tag) or {"iso639_3": tag.split("_")[0], "script": tag.split("_")[-1], "name": tag, "tokens": None}
        macro = langs_mod.macrolanguage(r["iso639_3"])
        family = FAMILY_NAMES.get(macro, langs_mod.english_name(macro)) if macro else ""
        out.append(Language(tag=tag, name=r["name"], script=r["script"], script_name=langs_mod.script_name(r["script"]),
                            family=family, tokens=r.get("tokens")))
    return out


def _rows(table: pa.Table, tags: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A neuron table's rows as language index (in ``tags``), layer and neuron."""
    k = pc.index_in(table.column("lang"), pa.array(tags)).to_numpy(zero_copy_only=False).astype(np.int64)
    return k, table.column("layer").to_numpy().astype(np.int64), table.column("neuron").to_numpy().astype(np.int64)


def _layer_counts(k: np.ndarray, layer: np.ndarray, n_langs: int, n_layers: int) -> np.ndarray:
    """Neurons per (language, layer) of rows given as language index and layer."""
    flat = np.asarray(k, np.int64) * n_layers + np.asarray(layer, np.int64)
    return np.bincount(flat, minlength=n_langs * n_layers).reshape(n_langs, n_layers).astype(np.int32)


def _intersections(k: np.ndarray, flat: np.ndarray, n_langs: int) -> tuple[np.ndarray, np.ndarray]:
    """inter[i, j] = |set_i ∩ set_j| and the set sizes (rows: language index, flat neuron), from one product of
    the membership matrix."""
    cols, inv = np.unique(flat, return_inverse=True)
    member = np.zeros((n_langs, cols.size), dtype=np.float32)
    member[k, inv] = 1.0
    inter = np.rint(member @ member.T).astype(np.int64)  # exact: integer counts far below 2**24
    return inter, np.rint(member.sum(axis=1)).astype(np.int64)
