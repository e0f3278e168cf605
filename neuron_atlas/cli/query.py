"""Query commands: models, languages, neurons, overlap, sql, info."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import pyarrow as pa
import typer

from ._common import AtlasOpt, FormatOpt, OutputOpt, err, open_atlas, split_list
from .output import emit

TopOpt = Annotated[str, typer.Option("--top", help="share of all neurons kept, e.g. 1% or 0.01")]
FilterOpt = Annotated[float, typer.Option("--filter-rate", help="quantile of p a neuron must exceed for some language")]
BarOpt = Annotated[float, typer.Option("--bar-ratio", help="quantile of p above which a kept neuron belongs to a language")]


def models(atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None) -> None:
    """List the models in the atlas with their shape and provenance."""
    emit(open_atlas(atlas).models(), format, output, "models")


def languages(model: str, atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None) -> None:
    """List a model's languages (canonical tag, ISO 639-3, script, name, tokens counted)."""
    emit(open_atlas(atlas).languages(model), format, output, f"languages of {model}")


def neurons(
    model: str,
    lang: Annotated[Optional[list[str]], typer.Option("--lang", "-l", help="language(s): tl, tgl, tgl_Latn, Tagalog; repeat or comma-separate; default all")] = None,
    top: TopOpt = "1%",
    filter_rate: FilterOpt = 0.95,
    bar_ratio: BarOpt = 0.95,
    among: Annotated[Optional[list[str]], typer.Option("--among", help="recompute LAPE over only these languages")] = None,
    by_layer: Annotated[bool, typer.Option("--by-layer", help="count neurons per layer instead of listing them")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="also save a neurons-per-layer bar chart PNG here")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None,
) -> None:
    """The language-specific neurons of MODEL by LAPE."""
    s = open_atlas(atlas).neurons(model, lang=split_list(lang), top=top, filter_rate=filter_rate, bar_ratio=bar_ratio,
                             among=split_list(among))
    if plot is not None:
        from ..plots import neurons_per_layer

        langs = ", ".join(s.langs) if len(s.langs) <= 4 else f"{len(s.langs)} languages"
        neurons_per_layer(s.by_layer(), plot, title=f"{model}: LAPE neurons per layer (top {top}; {langs})")
        err.print(f"[green]chart written to {plot}")
    if by_layer:
        emit(s.by_layer(), format, output, f"{model}: neurons per layer (top {top})")
    else:
        sizes = ", ".join(f"{k} {v}" for k, v in s.sizes().items())
        emit(s.to_arrow(), format, output, f"{model} top {top}: {sizes}")


def overlap(
    model: str,
    langs: Annotated[Optional[list[str]], typer.Option("--langs", "-l", help="languages to compare (default all)")] = None,
    top: TopOpt = "1%",
    plot: Annotated[Optional[Path], typer.Option("--plot", help="also save a heatmap PNG here")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None,
) -> None:
    """Jaccard overlap matrix of the languages' neuron sets."""
    table = open_atlas(atlas).overlap(model, split_list(langs), top=top)
    if plot is not None:
        from ..plots import overlap_heatmap

        overlap_heatmap(table, plot, title=f"{model}: Jaccard overlap of LAPE sets (top {top})")
        err.print(f"[green]heatmap written to {plot}")
    emit(table, format, output, f"{model}: Jaccard overlap (top {top})")


def sql(
    query: str,
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="bound ? parameter, in order")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None,
) -> None:
    """Run a read-only SQL query over the views models, languages, counts, ranking, lape, lape_stored."""
    emit(open_atlas(atlas).sql(query, param or None), format, output)


def info(atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None) -> None:
    """Summarise the atlas: where it is, its models, languages and size on disk."""
    a = open_atlas(atlas)
    rows = []
    for slug in a.model_slugs:
        row = a.model(slug)
        rows.append({"model": slug, "layers": row.n_layers, "ffn_width": row.ffn_width,
                     "languages": len(a.langs_of(slug)), "corpus": row.corpus, "source": row.source,
                     "hf_repo": row.hf_repo})
    err.print(f"atlas [bold]{a.layout.root}[/] (format v{a.manifest.format_version})")
    emit(pa.Table.from_pylist(rows), format, output, "models")
