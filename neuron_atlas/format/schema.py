"""The atlas data model: pydantic models of every table's row, and their Arrow schemas.

The JSON schemas in ``schema/`` are generated from these models (``python -m neuron_atlas.format.schema``).
Layout of an atlas folder (all Parquet, long format, hive-partitioned by model so a query for one
model reads only that model's files)::

    atlas.json                              manifest (format name and version)
    languages.parquet                       LanguageRow, one per canonical tag
    models/model=<slug>/model.parquet       ModelRow, provenance of one model's statistics
    counts/model=<slug>/lang=<tag>/counts.parquet   CountRow, the LAPE sufficient statistic, one shard per (model, language)
    activations/model=<slug>/lang=<tag>/activations.parquet   ActivationRow, v2: act(gate) mean and variance per neuron
    residual/model=<slug>/lang=<tag>/residual.parquet   ResidualRow, v2: mean hidden state per output_hidden_states point
    lape/model=<slug>/ranking.parquet       RankingRow, derived: per-neuron entropy and rank over all the model's languages
    lape/model=<slug>/lape.parquet          LapeRow, derived: (language, neuron) pairs of the default LAPE sets, or imported sets
    features/model=<slug>/pair=<src>-<tgt>/features.parquet   FeatureRow, large-magnitude hidden features (Kim et al.)

Derived files carry JSON metadata (languages, rates, thresholds, stored top rate) in the Parquet footer.
Format v2 adds the ``activations`` and ``residual`` files, written before the language's counts shard, which
stays the commit marker of a language (a statistics file without its shard is unfinished and ignored).
"""
from __future__ import annotations

import datetime as dt
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

FORMAT_NAME = "neuron-atlas"
FORMAT_VERSION = 2  # the highest version this package reads; an atlas is written as v1 until it holds v2 files
STATS_VERSION = 2  # the version of an atlas holding activations/residual files
SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
TAG_PATTERN = r"^[a-z]{3}_[A-Z][a-z]{3}$"  # canonical language tag, FLORES-200 style
MANIFEST = "atlas.json"  # the atlas' manifest, at its root
META_KEY = b"neuron_atlas"  # the Parquet footer key of every file's neuron-atlas metadata
PARQUET_MAGIC = b"PAR1"  # the bytes a Parquet file starts and ends with
CORRUPT_VIEW_ROW = "the file is corrupt"  # what a SQL view's own check of a row says (sql() makes it a format error)
# Bounds of a model's shape, far above any released model (Llama 3.1 405B: 126 layers, 53,248 FFN neurons, hidden
# 16,384): a row beyond them is corrupt, refused before any array of its shape is allocated.
MAX_LAYERS, MAX_WIDTH = 4096, 1 << 20


class Manifest(BaseModel):
    """``atlas.json``: identifies a folder as an atlas and the format version it is written in."""

    model_config = ConfigDict(extra="allow")
    format: Literal["neuron-atlas"] = FORMAT_NAME
    format_version: int = Field(FORMAT_VERSION, ge=1, strict=True, description="a positive integer; '1' or 0 is refused")
    description: str = ""
    fingerprinted: bool = Field(False, description="every Parquet file carries a content fingerprint in its footer "
                                                   "(atlases written since it does); a file without one is refused")


class ModelRow(BaseModel):
    """One model whose neurons the atlas describes, with the provenance of its statistics."""

    model: str = Field(pattern=SLUG_PATTERN, description="short slug, e.g. gemma-3-270m")
    hf_repo: str = Field(description="Hugging Face repo id or local path the weights came from")
    revision: str = Field("", description="git revision of the repo, or sha256 of the weight file")
    architecture: str = Field(description="transformers architecture class, e.g. Gemma3ForCausalLM")
    n_layers: int = Field(gt=0, le=MAX_LAYERS)
    ffn_width: int = Field(gt=0, le=MAX_WIDTH, description="FFN neurons per layer (intermediate size)")
    hidden_size: int = Field(gt=0, le=MAX_WIDTH)
    activation: str = Field(description="FFN activation function; a neuron fires when act(gate) > 0")
    gated: bool = Field(True, description="gated FFN (gate/up/down) rather than fc_in/fc_out")
    corpus: str = Field(description="text the statistics were counted on, e.g. udhr")
    corpus_version: str = ""
    tokens_per_language: int = Field(0, ge=0, description="token budget per language (0: all text)")
    seq_len: int = Field(0, ge=0)
    dtype: str = ""
    source: str = Field("neuron-atlas", description="'neuron-atlas' for counts built here, else the importer")
    builder_version: str = ""
    created: dt.datetime


class LanguageRow(BaseModel):
    """One language, keyed by its canonical FLORES-200 style tag."""

    lang: str = Field(pattern=TAG_PATTERN, description="canonical tag, e.g. tgl_Latn")
    iso639_3: str
    script: str = Field(description="ISO 15924 script code")
    name: str = Field(description="English name")


class CountRow(BaseModel):
    """The LAPE sufficient statistic: tokens on which one neuron fired, for one model and language.

    A shard holds every (layer, neuron) of its model in order, so p = fired / tokens is defined everywhere.
    """

    layer: int = Field(ge=0)
    neuron: int = Field(ge=0)
    fired: int = Field(ge=0, description="tokens of this language on which act(gate) > 0")
    tokens: int = Field(ge=0, description="tokens of this language seen (same in every row of a shard)")


class ActivationRow(BaseModel):
    """Moments of one neuron's activation act(gate) (act(fc_in) for ungated FFNs) over one (model, language)'s counted
    tokens, the tokens its counts shard counts (format v2). A file holds every (layer, neuron) of its model in order."""

    layer: int = Field(ge=0)
    neuron: int = Field(ge=0)
    tokens: int = Field(ge=0, description="tokens of this language (same in every row, equal to its counts shard's)")
    mean: float = Field(description="mean of act(gate) over the tokens")
    var: float = Field(ge=0, description="population variance of act(gate) over the tokens (sum of squares / tokens)")


class ResidualRow(BaseModel):
    """Mean residual-stream hidden state of one (model, language) at one point of transformers'
    ``output_hidden_states`` (format v2); a file holds layers 0..n_layers in order."""

    layer: int = Field(ge=0, description="index into output_hidden_states: 0 the embeddings as layer 0 receives them, "
                                         "l the output of decoder layer l-1, n_layers the last_hidden_state (final norm)")
    tokens: int = Field(ge=0, description="tokens of this language (same in every row, equal to its counts shard's)")
    mean: list[float] = Field(description="hidden_size floats: the mean hidden state over the tokens")


class RankingRow(BaseModel):
    """Derived per-neuron LAPE quantities over all languages of the model at the default filter rate."""

    layer: int = Field(ge=0)
    neuron: int = Field(ge=0)
    entropy: float = Field(description="entropy of the neuron's normalised activation probabilities over languages")
    rank: int = Field(description="position by (entropy, layer, neuron) among neurons passing the filter; -1 if filtered out")


class MethodRankRow(BaseModel):
    """One neuron of a language's set under a selection method that scores act(gate) moments (``mean_diff``, ``t``),
    ranked against all the model's languages and stored to a fixed depth, for an atlas that leaves the moments out
    (the embedded one): ``neurons(method=..., size=k)`` for k up to the depth answers from these rows."""

    method: str = Field(description="the registered selection method, e.g. mean_diff")
    lang: str
    rank: int = Field(ge=0, description="position by score within (method, language), best first")
    layer: int = Field(ge=0)
    neuron: int = Field(ge=0)
    score: float = Field(description="the method's score, computed from the float64 moments")


class LapeRow(BaseModel):
    """One (language, neuron) pair of a LAPE set, for neurons ranked within the stored top rate."""

    lang: str
    layer: int = Field(ge=0)
    neuron: int = Field(ge=0)
    p: float | None = Field(description="activation probability for this language; null for imported sets")
    entropy: float | None = Field(description="the neuron's LAPE entropy; null for imported sets")
    rank: int | None = Field(description="the neuron's rank; the top x share is rank < round(L·d·x); null if imported")


class FeatureRow(BaseModel):
    """Norm of one hidden dimension of the residual stream at one layer over a language pair's translation prompts."""

    layer: int = Field(ge=0, description="l < n_layers: input of decoder block l; n_layers: output of the last block")
    dim: int = Field(ge=0, description="hidden dimension")
    norm: float = Field(ge=0, description="L2 norm of this dimension over all non-padding prompt tokens")
    rms: float = Field(ge=0, description="norm / sqrt(tokens)")
    rank: int = Field(ge=0, description="0 for the largest norm of the layer")
    tokens: int = Field(ge=0, description="non-padding prompt tokens (same in every row of a file)")


@dataclass(frozen=True)
class Table:
    """One stored table: its row model and Arrow schema, where its files live (``path``, a pattern whose ``{key}``
    fields are its hive partition keys), whether it is derived from other tables, and how the SQL view and the
    published card's ``datasets`` config show it. Everything that iterates over tables reads ``TABLES``."""

    name: str
    row: type[BaseModel]
    arrow: pa.Schema
    path: str  # under the atlas root, e.g. "counts/model={model}/lang={lang}/counts.parquet"
    derived: bool = False  # computed from other tables (re-derive it, never edit it)
    view: str = ""  # SQL view name (default: the table's name)
    sql_columns: str = ""  # columns the SQL view adds, e.g. ", fired::DOUBLE / NULLIF(tokens, 0) AS p"
    card: str = ""  # card config name pattern (default: the keys then the name, e.g. "{model}-ranking")
    split: str | None = None  # partition key whose values are the card config's splits (else one "train" split)
    row_group_rows: int = 1 << 20  # rows per Parquet row group (1: each row read alone, as one residual layer is)
    holds: str = ""  # what a statistics table's files hold, as a message names it ("residual-stream means")

    @property
    def keys(self) -> tuple[str, ...]:
        """The hive partition keys, outermost first."""
        return tuple(field for _, field, _, _ in string.Formatter().parse(self.path) if field)

    @property
    def view_name(self) -> str:
        return self.view or self.name

    @property
    def card_name(self) -> str:
        return self.card or "-".join([f"{{{k}}}" for k in self.keys if k != self.split] + [self.name])


# Every stored table; the card lists its configs in this order, after each model's default sets (the Hub's viewer
# opens the first model's: the card marks it the default config).
TABLES: list[Table] = [
    Table("lape", LapeRow, pa.schema(
        [("lang", pa.string()), ("layer", pa.int16()), ("neuron", pa.int32()), ("p", pa.float64()),
         ("entropy", pa.float64()), ("rank", pa.int32())]),
        "lape/model={model}/lape.parquet", derived=True, view="lape_stored", card="{model}-lape-stored"),
    Table("models", ModelRow, pa.schema(
        [("model", pa.string()), ("hf_repo", pa.string()), ("revision", pa.string()),
         ("architecture", pa.string()), ("n_layers", pa.int32()), ("ffn_width", pa.int32()),
         ("hidden_size", pa.int32()), ("activation", pa.string()), ("gated", pa.bool_()),
         ("corpus", pa.string()), ("corpus_version", pa.string()), ("tokens_per_language", pa.int64()),
         ("seq_len", pa.int32()), ("dtype", pa.string()), ("source", pa.string()),
         ("builder_version", pa.string()), ("created", pa.timestamp("ms", tz="UTC"))]),
        "models/model={model}/model.parquet", card="models"),
    Table("languages", LanguageRow, pa.schema(
        [("lang", pa.string()), ("iso639_3", pa.string()), ("script", pa.string()), ("name", pa.string())]),
        "languages.parquet"),
    Table("counts", CountRow, pa.schema(
        [("layer", pa.int16()), ("neuron", pa.int32()), ("fired", pa.int32()), ("tokens", pa.int64())]),
        "counts/model={model}/lang={lang}/counts.parquet",
        # a row no shard may hold stops the query (over hf:// the shards' footers are not all checked beforehand)
        sql_columns=(", CASE WHEN fired BETWEEN 0 AND tokens THEN fired::DOUBLE / NULLIF(tokens, 0) ELSE "
                     f"error('counts: a shard holds a fired count outside [0, tokens], a p above 1; {CORRUPT_VIEW_ROW}"
                     ", `neuron-atlas verify` names it') END AS p"),
        split="lang", holds="LAPE firing counts"),
    Table("activations", ActivationRow, pa.schema(
        [("layer", pa.int16()), ("neuron", pa.int32()), ("tokens", pa.int64()), ("mean", pa.float64()),
         ("var", pa.float64())]),
        "activations/model={model}/lang={lang}/activations.parquet", split="lang",
        holds="activation moments (mean/var of act(gate))"),
    Table("residual", ResidualRow, pa.schema(
        [("layer", pa.int16()), ("tokens", pa.int64()), ("mean", pa.list_(pa.float64()))]),
        "residual/model={model}/lang={lang}/residual.parquet", split="lang", row_group_rows=1,
        holds="residual-stream means"),
    Table("ranking", RankingRow, pa.schema(
        [("layer", pa.int16()), ("neuron", pa.int32()), ("entropy", pa.float32()), ("rank", pa.int32())]),
        "lape/model={model}/ranking.parquet", derived=True),
    Table("method_ranks", MethodRankRow, pa.schema(
        [("method", pa.string()), ("lang", pa.string()), ("rank", pa.int32()), ("layer", pa.int16()),
         ("neuron", pa.int32()), ("score", pa.float64())]),
        "lape/model={model}/method_ranks.parquet", derived=True),
    Table("features", FeatureRow, pa.schema(
        [("layer", pa.int16()), ("dim", pa.int32()), ("norm", pa.float32()), ("rms", pa.float32()),
         ("rank", pa.int32()), ("tokens", pa.int64())]),
        "features/model={model}/pair={pair}/features.parquet"),
]
TABLE: dict[str, Table] = {t.name: t for t in TABLES}
ARROW_SCHEMAS: dict[str, pa.Schema] = {t.name: t.arrow for t in TABLES}
ROW_MODELS: dict[str, type[BaseModel]] = {t.name: t.row for t in TABLES}


def add_table(table: Table) -> Table:
    """Describe one more stored table (Layout, SQL views, checks, the card and the JSON schemas then know it)."""
    if table.name in TABLE:
        raise ValueError(f"a table named {table.name!r} is already described")
    TABLES.append(table)
    TABLE[table.name], ARROW_SCHEMAS[table.name], ROW_MODELS[table.name] = table, table.arrow, table.row
    return table


def write_json_schemas(folder: str | Path) -> list[Path]:
    """Write one JSON Schema per table of ``TABLES`` (plus the manifest) from the pydantic models."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, model in {"manifest": Manifest, **ROW_MODELS}.items():
        schema = model.model_json_schema()
        if name in TABLE:
            table = TABLE[name]
            schema["x-arrow-types"] = {f.name: str(f.type) for f in table.arrow}
            schema["x-path"], schema["x-partition-keys"], schema["x-derived"] = table.path, list(table.keys), table.derived
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        out.append(path)
    return out


if __name__ == "__main__":
    for p in write_json_schemas(Path(__file__).resolve().parents[2] / "schema"):
        print(p)
