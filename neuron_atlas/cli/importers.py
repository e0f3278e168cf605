"""``neuron-atlas import``: bring published neuron sets or raw activation files into an atlas."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._utils.settings import help_of
from ..errors import InvalidParameterError
from ..importers.config import IMPORT, ImportConfig
from ._common import err, split_list


def import_command(
    files: Annotated[list[Path], typer.Argument(help="torch.save files: one neuron-set file, or one activation file per language", exists=True, dir_okay=False)],
    atlas: Annotated[Path, typer.Option("--atlas", help="atlas folder to add the model to (created if missing)")],
    model: Annotated[str | None, typer.Option("--model", help=help_of(ImportConfig, "model"))] = IMPORT.model,
    langs: Annotated[str | None, typer.Option("--lang", "--langs", "-l", help=help_of(ImportConfig, "langs"))] = IMPORT.langs,
    top_rate: Annotated[float | None, typer.Option("--top-rate", help=help_of(ImportConfig, "top_rate"))] = IMPORT.top_rate,
    missing: Annotated[str | None, typer.Option("--missing", help=help_of(ImportConfig, "missing"))] = IMPORT.missing,
    source: Annotated[str | None, typer.Option("--source", help=help_of(ImportConfig, "source"))] = IMPORT.source,
    hf_repo: Annotated[str | None, typer.Option("--hf-repo", help=help_of(ImportConfig, "hf_repo"))] = IMPORT.hf_repo,
    n_layers: Annotated[int | None, typer.Option("--n-layers", help=help_of(ImportConfig, "n_layers"))] = IMPORT.n_layers,
    ffn_width: Annotated[int | None, typer.Option("--ffn-width", help=help_of(ImportConfig, "ffn_width"))] = IMPORT.ffn_width,
    hidden_size: Annotated[int | None, typer.Option("--hidden-size", help=help_of(ImportConfig, "hidden_size"))] = IMPORT.hidden_size,
    preset: Annotated[str | None, typer.Option("--preset", help=help_of(ImportConfig, "preset"))] = IMPORT.preset,
) -> None:
    """Import published LAPE neuron sets, or raw activation counts, as a model of the atlas folder --atlas.

    The published files `neuron-atlas models --available` lists (RUCAIBox, the Sparse Subnetwork paper, CLaS-Bench)
    are recognised by their content: give the file and --atlas, nothing else. Any other neuron-set file needs
    --model, --lang (its language order), --top-rate, --source and the model's shape (--hf-repo, or --n-layers
    --ffn-width --hidden-size); activation files need --model and --source.
    """
    # errors reach the CLI's entry point, which prints them on stderr and exits 2 for bad input, 1 for a failure
    from ..importers.activations import import_activations, languages_of
    from ..importers.neuron_sets import import_neuron_sets
    from ..importers.registry import find_known, known
    from ..importers.torch_files import is_activation_file

    if is_activation_file(files[0]):
        if not model or not source:
            raise InvalidParameterError("importing activation files needs --model and --source")
        tokens = import_activations(languages_of(files, split_list(langs)), atlas, model, source=source,
                                    hidden_size=hidden_size, hf_repo=hf_repo)
        err.print(f"imported counts of {len(tokens)} languages as {model} into {atlas} "
                  f"({sum(tokens.values()):,} tokens)", highlight=False, soft_wrap=True)
        return
    if len(files) != 1:
        raise InvalidParameterError("import one neuron-set file at a time")
    entry = known(preset) if preset else find_known(files[0])
    if entry is None and None in (model, langs, top_rate, source):
        raise InvalidParameterError(
            f"{files[0]} is not a known published file: give --model, --lang (the file's language order), "
            "--top-rate, --source and the shape (--hf-repo, or --n-layers --ffn-width --hidden-size)"
        )
    sizes = import_neuron_sets(
        files[0], atlas, model or entry.model, split_list(langs) or list(entry.languages),
        top_rate=top_rate or entry.top_rate, source=source or entry.source,
        n_layers=n_layers or (entry and entry.n_layers), ffn_width=ffn_width or (entry and entry.ffn_width),
        hidden_size=hidden_size or (entry and entry.hidden_size),
        missing=split_list(missing) or (list(entry.missing) if entry else []),
        hf_repo=hf_repo or (entry and entry.hf_repo), architecture=entry and entry.architecture,
        activation=entry and entry.activation, corpus=entry.corpus if entry else "",
        tokens_per_language=entry.tokens_per_language if entry else 0, licence=entry.licence if entry else "",
    )
    name = f" ({entry.name})" if entry else ""
    err.print(f"imported {sum(sizes.values()):,} language-neuron pairs of {len(sizes)} languages{name} "
              f"into {atlas} as {model or entry.model}", highlight=False, soft_wrap=True)
