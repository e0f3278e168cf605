"""``neuron-atlas features``: build the large-magnitude feature tables of a model (Kim et al. 2024)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import err


def features_command(
    model: Annotated[str, typer.Argument(help="packaged slug (gemma-3-270m), Hub id or local path")],
    pair: Annotated[list[str], typer.Option("--pair", help="language pair source-target, e.g. sw-en; repeatable")],
    atlas: Annotated[Path, typer.Option("--atlas", "-a", help="atlas folder to write the features into (created if missing); no default: the embedded atlas is read-only")],
    slug: Annotated[str | None, typer.Option(help="model slug in the atlas (default: MODEL)")] = None,
    corpus: Annotated[str, typer.Option(help="parallel corpus of the prompts")] = "udhr",
    nsamples: Annotated[int, typer.Option(help="prompts per pair")] = 100,
    shots: Annotated[int, typer.Option(help="translation pairs per prompt")] = 4,
    max_length: Annotated[int, typer.Option(help="tokens per prompt (truncated)")] = 512,
    batch_size: Annotated[int, typer.Option(help="prompts per forward pass")] = 4,
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16")] = "float32",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars (transformers' and Hub downloads' included)")] = False,
) -> None:
    """Build the large-magnitude feature table of MODEL for each --pair (norms of the residual stream)."""
    from ..modeling.load import PACKAGES, load_model
    from .._utils.progress import quieted
    from ..prune.feature_norms import build_features

    with quieted(quiet):
        loaded = load_model(model, dtype=dtype)
        name = slug or (model if model in PACKAGES else Path(model).name.lower())
        for path in build_features(loaded.model, loaded.tokenizer, atlas, name, pair, corpus=corpus,
                                   nsamples=nsamples, shots=shots, max_length=max_length, batch_size=batch_size):
            err.print(f"wrote {path}", soft_wrap=True)
