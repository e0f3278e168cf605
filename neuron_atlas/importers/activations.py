"""Import raw activation counts (``{'n': tokens, 'over_zero': [layers × d]}`` per language) as full statistics."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rich.progress import Progress

from ..languages import tags as langs_mod
from ..errors import AtlasError, InvalidParameterError
from ..stats.lape import LapeParams
from ..format.writer import AtlasWriter
from .config import IMPORT
from .model import model_row
from .torch_files import load_activation


def import_activations(
    files: Mapping[str, str | Path],
    atlas: str | Path,
    model_slug: str,
    *,
    source: str,
    hidden_size: int | None = IMPORT.hidden_size,
    hf_repo: str | None = IMPORT.hf_repo,
    architecture: str | None = None,
    activation: str | None = None,
    corpus: str = "",
    replace: bool = False,
    params: LapeParams = LapeParams(),
) -> dict[str, int]:
    """Write one count shard per ``{lang: file}`` and derive the model's LAPE tables; return tokens per language.

    The shape comes from the files' ``over_zero``; every file must agree on it.
    """
    if not files:
        raise AtlasError("no activation files given")
    writer = AtlasWriter(atlas)
    tokens: dict[str, int] = {}
    row = None
    with Progress(transient=True) as progress:
        task = progress.add_task(f"importing {model_slug}", total=len(files))
        for lang, path in files.items():
            n, over_zero = load_activation(path)
            if row is None:
                row = model_row(model_slug, hf_repo=hf_repo, n_layers=over_zero.shape[0], ffn_width=over_zero.shape[1],
                                hidden_size=hidden_size, architecture=architecture, activation=activation,
                                source=f"import:{source}", corpus=corpus)
                writer.add_model(row)
            if over_zero.shape != (row.n_layers, row.ffn_width):
                raise AtlasError(f"{path}: over_zero has shape {over_zero.shape}, the other files "
                                 f"({row.n_layers}, {row.ffn_width})")
            if over_zero.size and (over_zero.min() < 0 or over_zero.max() > n):
                raise AtlasError(f"{path}: over_zero counts must lie in [0, n={n}]; is 'n' the token count?")
            tag = writer.add_counts(model_slug, lang, over_zero, n, replace=replace)
            tokens[tag] = n
            progress.advance(task)
    writer.finalize(model_slug, params)
    return tokens


def languages_of(files: list[Path], languages: list[str] | None) -> dict[str, Path]:
    """Pair activation files with languages: given in order, else read from RUCAIBox names ``activation.<lang>.*``."""
    if languages is None:
        names = [f.name.split(".") for f in files]
        if not all(len(p) > 2 and p[0] == "activation" for p in names):
            raise InvalidParameterError("name the files' languages in order with --langs (file names are not activation.<lang>.*)")
        languages = [p[1] for p in names]
    if len(languages) != len(files):
        raise InvalidParameterError(f"{len(files)} activation files but {len(languages)} languages ({', '.join(languages)})")
    tags = [langs_mod.canonical(lang) for lang in languages]
    if len(set(tags)) != len(tags):
        raise AtlasError(f"languages {languages} name a language twice")
    return dict(zip(languages, files))
