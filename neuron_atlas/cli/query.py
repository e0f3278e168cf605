"""Query commands: models, languages, neurons, methods, panels, overlap, sql, info."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import pyarrow as pa
import typer

from ._common import AtlasOpt, FormatOpt, LangOpt, OutputOpt, WideOpt, err, open_atlas, say, split_list
from .output import emit
from .wording import cli_words

_NOTES_SHOWN = 10  # notices printed before the rest are counted
_SIZES_LISTED = 6  # languages whose set sizes a title lists; more are summarised

TopOpt = Annotated[Optional[str], typer.Option("--top", help="share of all neurons kept, e.g. 1% or 0.01 (default 1%; imported sets: their published rate)", show_default=False)]
FilterOpt = Annotated[float, typer.Option("--filter-rate", help="quantile of p a neuron must exceed for some language")]
BarOpt = Annotated[float, typer.Option("--bar-ratio", help="quantile of p above which a kept neuron belongs to a language")]


def models(
    available: Annotated[bool, typer.Option("--available", help="list what the catalog knows exists elsewhere: published atlases and neuron sets, with how to get each")] = False,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False,
) -> None:
    """List the models in the atlas with their shape and provenance (or, with --available, where others are)."""
    if available:
        from ..catalog import available as known

        emit(known(), format, output, "published atlases and neuron sets (neuron-atlas import FILE adds a set)",
             wide=wide)
        return
    emit(open_atlas(atlas).models(), format, output, "models", wide=wide)


def languages(model: str, atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None,
              wide: WideOpt = False) -> None:
    """List a model's languages (canonical tag, ISO 639-3, script, name, tokens counted)."""
    emit(open_atlas(atlas).languages(model), format, output, f"languages of {model}", wide=wide)


def neurons(
    model: str,
    lang: LangOpt = None,
    top: TopOpt = None,
    size: Annotated[Optional[str], typer.Option("--size", help="neurons per language instead of --top: a count (500) or a share of all neurons (0.5%)")] = None,
    method: Annotated[str, typer.Option("--method", help="lape (lowest entropy), ovr, mean_diff or t (the last three need --size); `neuron-atlas methods` lists them")] = "lape",
    filter_rate: FilterOpt = 0.95,
    bar_ratio: BarOpt = 0.95,
    among: Annotated[Optional[list[str]], typer.Option("--among", help="recompute over only these languages, or a panel name (see `panels`)")] = None,
    coverage: Annotated[bool, typer.Option("--coverage", help="show which other languages the (one) language's set reaches")] = False,
    by_layer: Annotated[bool, typer.Option("--by-layer", help="count neurons per layer instead of listing them")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="also save a neurons-per-layer bar chart PNG here")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False,
) -> None:
    """The language-specific neurons of MODEL by LAPE (or one-vs-rest), with the languages each one reaches."""
    opened, langs = open_atlas(atlas), split_list(lang)
    kw = dict(top=top, size=_size(size), method=method, filter_rate=filter_rate, bar_ratio=bar_ratio,
              among=_among(among))
    if coverage:
        if not langs or len(langs) != 1:
            raise typer.BadParameter("--coverage describes one language's set: give exactly one --lang")
        emit(opened.coverage(model, langs[0], **kw), format, output, f"{model}: languages {langs[0]}'s set reaches",
             wide=wide)
        return
    s = opened.neurons(model, lang=langs, **kw)
    notices = list(s.notices.values())
    for line in notices[:_NOTES_SHOWN]:
        say("note", "yellow", cli_words(line))
    if len(notices) > _NOTES_SHOWN:
        say("note", "yellow", f"and {len(notices) - _NOTES_SHOWN} more like these")
    what = f"size {s.params['size']} ({method})" if size else f"top {s.params['top_rate'] * 100:g}%"
    if plot is not None:
        from ..plots import neurons_per_layer

        names = ", ".join(s.langs) if len(s.langs) <= 4 else f"{len(s.langs)} languages"
        neurons_per_layer(s.by_layer(), plot, title=f"{model}: neurons per layer ({what}; {names})")
        err.print(f"[green]chart written to {plot}")
    if by_layer:
        emit(s.by_layer(), format, output, f"{model}: neurons per layer ({what})", wide=wide)
    else:
        emit(s.to_arrow(), format, output, f"{model} {what}: {_sizes(s.sizes())}", wide=wide)


def _sizes(sizes: dict[str, int]) -> str:
    """Neurons per language for a title: each language's count for a few, a summary for many."""
    if len(sizes) <= _SIZES_LISTED:
        return ", ".join(f"{k} {v}" for k, v in sizes.items())
    counts = sizes.values()
    return f"{len(sizes)} languages, {sum(counts):,} neurons ({min(counts)}–{max(counts)} per language)"


def methods(format: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False) -> None:
    """List the registered neuron selection methods: whether each needs --size, the statistics it reads (format v2
    atlases hold moments; v1 atlases counts only) and what it scores."""
    from ..methods import get_method, method_names
    from ..methods import STATISTICS

    rows = [{"method": m.name, "size": m.size, "needs": ",".join(m.needs),
             "statistics": "; ".join(STATISTICS[n].description for n in m.needs), "summary": m.summary}
            for m in map(get_method, method_names())]
    emit(pa.Table.from_pylist(rows), format, output, "selection methods (neuron-atlas neurons --method NAME)", wide=wide)


def panels(format: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False) -> None:
    """Named language panels for --among: the published papers' language sets and documented study panels."""
    from ..languages.panels import panels as table

    emit(table(), format, output, "language panels", wide=wide)


def _size(size: str | None) -> int | str | None:
    """'500' -> 500; '0.5%' stays a share; anything else is left for the library to reject with its message."""
    return int(size) if size is not None and size.strip().isdigit() else size


def _among(among: list[str] | None) -> str | list[str] | None:
    """One name stays a string, for the library to resolve as a panel (or to refuse with the panel it is closest to:
    one language cannot be compared); several are the list of languages."""
    items = split_list(among)
    return items[0] if items and len(items) == 1 else items


def overlap(
    model: str,
    lang: LangOpt = None,
    top: TopOpt = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="also save a heatmap PNG here")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False,
) -> None:
    """Jaccard overlap matrix of the languages' neuron sets."""
    table = open_atlas(atlas).overlap(model, split_list(lang), top=top)
    top = top or "1%"
    if plot is not None:
        from ..plots import overlap_heatmap

        overlap_heatmap(table, plot, title=f"{model}: Jaccard overlap of LAPE sets (top {top})")
        err.print(f"[green]heatmap written to {plot}")
    emit(table, format, output, f"{model}: Jaccard overlap (top {top})", wide=wide)


def sql(
    query: str,
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="bound ? parameter, in order")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="stop the query after this many seconds")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None, wide: WideOpt = False,
) -> None:
    """Run a read-only SQL query over the views models, languages, counts, ranking, lape (default top-1% sets),
    lape_stored (rows up to the stored top), imported (published sets at their rate), features."""
    emit(open_atlas(atlas).sql(query, param or None, timeout=timeout), format, output, wide=wide)


def info(atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None,
         wide: WideOpt = False) -> None:
    """Summarise the atlas: where it is, its models, languages and size on disk."""
    a = open_atlas(atlas)
    rows = []
    for slug in a.model_slugs:
        row = a.model(slug)
        rows.append({"model": slug, "layers": row.n_layers, "ffn_width": row.ffn_width,
                     "languages": len(a.langs_of(slug)), "bytes": a.disk_bytes(slug),
                     "corpus": row.corpus, "source": row.source, "hf_repo": row.hf_repo})
    total = sum(r["bytes"] for r in rows) / 2**20
    from rich.markup import escape

    err.print(f"atlas [bold]{escape(str(a.layout.root))}[/] (format v{a.manifest.format_version}, {total:.1f} MiB)",
              highlight=False)
    emit(pa.Table.from_pylist(rows), format, output, "models", wide=wide)
