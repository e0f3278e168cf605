"""The ``neuron-atlas`` command line: query atlases (models, languages, neurons, overlap, sql, info) and build them."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import pyarrow as pa
import typer
from rich.console import Console

from . import atlas as atlas_mod
from .errors import AtlasError
from .output import Format, emit

app = typer.Typer(
    name="neuron-atlas", no_args_is_help=True, add_completion=False,
    help="Language-specific neurons of LLMs (LAPE), precomputed and queryable.",
)
err = Console(stderr=True)

AtlasOpt = Annotated[Optional[str], typer.Option("--atlas", "-a", help="atlas folder or hf://datasets/org/name[@rev]; default: the embedded atlas")]
FormatOpt = Annotated[Optional[Format], typer.Option("--format", "-f", help="table (terminal default), csv (pipe default), json, parquet")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="write to this file instead of stdout")]
TopOpt = Annotated[str, typer.Option("--top", help="share of all neurons kept, e.g. 1% or 0.01")]
FilterOpt = Annotated[float, typer.Option("--filter-rate", help="quantile of p a neuron must exceed for some language")]
BarOpt = Annotated[float, typer.Option("--bar-ratio", help="quantile of p above which a kept neuron belongs to a language")]


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _open(path: str | None) -> atlas_mod.Atlas:
    return atlas_mod.open(path)


@app.command()
def models(atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None) -> None:
    """List the models in the atlas with their shape and provenance."""
    emit(_open(atlas).models(), format, output, "models")


@app.command()
def languages(model: str, atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None) -> None:
    """List a model's languages (canonical tag, ISO 639-3, script, name, tokens counted)."""
    emit(_open(atlas).languages(model), format, output, f"languages of {model}")


@app.command()
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
    s = _open(atlas).neurons(model, lang=_split(lang), top=top, filter_rate=filter_rate, bar_ratio=bar_ratio,
                             among=_split(among))
    if plot is not None:
        from .plots import neurons_per_layer

        langs = ", ".join(s.langs) if len(s.langs) <= 4 else f"{len(s.langs)} languages"
        neurons_per_layer(s.by_layer(), plot, title=f"{model}: LAPE neurons per layer (top {top}; {langs})")
        err.print(f"[green]chart written to {plot}")
    if by_layer:
        emit(s.by_layer(), format, output, f"{model}: neurons per layer (top {top})")
    else:
        sizes = ", ".join(f"{k} {v}" for k, v in s.sizes().items())
        emit(s.to_arrow(), format, output, f"{model} top {top}: {sizes}")


@app.command()
def overlap(
    model: str,
    langs: Annotated[Optional[list[str]], typer.Option("--langs", "-l", help="languages to compare (default all)")] = None,
    top: TopOpt = "1%",
    plot: Annotated[Optional[Path], typer.Option("--plot", help="also save a heatmap PNG here")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None,
) -> None:
    """Jaccard overlap matrix of the languages' neuron sets."""
    table = _open(atlas).overlap(model, _split(langs), top=top)
    if plot is not None:
        from .plots import overlap_heatmap

        overlap_heatmap(table, plot, title=f"{model}: Jaccard overlap of LAPE sets (top {top})")
        err.print(f"[green]heatmap written to {plot}")
    emit(table, format, output, f"{model}: Jaccard overlap (top {top})")


@app.command()
def sql(
    query: str,
    param: Annotated[Optional[list[str]], typer.Option("--param", "-p", help="bound ? parameter, in order")] = None,
    atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None,
) -> None:
    """Run a read-only SQL query over the views models, languages, counts, ranking, lape, lape_stored."""
    emit(_open(atlas).sql(query, param or None), format, output)


@app.command()
def info(atlas: AtlasOpt = None, format: FormatOpt = None, output: OutputOpt = None) -> None:
    """Summarise the atlas: where it is, its models, languages and size on disk."""
    a = _open(atlas)
    rows = []
    for slug in a.model_slugs:
        row = a.model(slug)
        rows.append({"model": slug, "layers": row.n_layers, "ffn_width": row.ffn_width,
                     "languages": len(a.langs_of(slug)), "corpus": row.corpus, "source": row.source,
                     "hf_repo": row.hf_repo})
    err.print(f"atlas [bold]{a.layout.root}[/] (format v{a.manifest.format_version})")
    emit(pa.Table.from_pylist(rows), format, output, "models")


def _register_optional_commands() -> None:
    """Commands whose modules are imported lazily inside them (no torch or hub import at CLI start)."""
    from .build.command import build_command
    from .hub import push_command
    from .importers.command import import_command
    from .prune.features import features_command

    app.command("build")(build_command)
    app.command("push")(push_command)
    app.command("import")(import_command)
    app.command("features")(features_command)


_register_optional_commands()


def main() -> None:
    """Entry point: run the app, turning neuron-atlas errors into one red line and exit code 2."""
    try:
        app(standalone_mode=False)
    except AtlasError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
