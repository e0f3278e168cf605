"""Import published LAPE neuron sets (``torch.save`` of ``list[lang][layer]`` index tensors) into an atlas."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..languages import tags as langs_mod
from ..errors import AtlasError, InvalidParameterError
from ..format.layout import Layout
from ..format.writer import write_imported_sets
from .config import IMPORT
from .model import model_row
from .._utils.files import sha256_file
from .torch_files import load_neuron_sets


def assign_languages(path: str | Path, lists: int, languages: Sequence[str], missing: Sequence[str]) -> list[str]:
    """The languages the file's lists belong to, in order: ``languages`` without ``missing``, checked against ``lists``.

    Args:
        path: the file, named in error messages.
        lists: the number of language lists the file holds.
        languages: the file's language order, the lost languages included.
        missing: languages of ``languages`` whose lists the file lost.

    Returns:
        list[str]: ``languages`` without ``missing``, one per list of the file, in order.

    Raises:
        AtlasError: a language of ``missing`` is not in ``languages``, or ``languages`` names one twice.
        InvalidParameterError: the file holds another number of lists than the languages left.
    """
    unknown = [m for m in missing if m not in languages]
    if unknown:
        raise AtlasError(f"missing={list(unknown)} are not among the languages given ({', '.join(languages)})")
    if len(set(languages)) != len(languages):
        raise AtlasError(f"languages {list(languages)} name a language twice")
    present = [lang for lang in languages if lang not in missing]
    if lists != len(present):
        hint = ""
        if lists < len(languages) and not missing:
            hint = (f" If the file lost languages (LAPE writers drop trailing languages that got no neuron), name "
                    f"them with missing= / --missing, e.g. --missing {','.join(languages[lists:])}")
        raise InvalidParameterError(
            f"{path}: holds {lists} language lists but {len(present)} languages were given "
            f"({', '.join(present)}{'; missing: ' + ', '.join(missing) if missing else ''}).{hint}"
        )
    return present


def import_neuron_sets(
    path: str | Path,
    atlas: str | Path,
    model_slug: str,
    languages: Sequence[str],
    *,
    top_rate: float,
    source: str,
    n_layers: int | None = IMPORT.n_layers,
    ffn_width: int | None = IMPORT.ffn_width,
    hidden_size: int | None = IMPORT.hidden_size,
    missing: Sequence[str] = (),
    hf_repo: str | None = IMPORT.hf_repo,
    architecture: str | None = None,
    activation: str | None = None,
    corpus: str = "",
    tokens_per_language: int = 0,
    licence: str = "",
) -> dict[str, int]:
    """Store the file's neuron sets as model ``model_slug``'s ``lape`` table; return neurons per canonical language.

    ``languages`` is the file's language order (files carry no names); languages in ``missing`` get empty
    sets. Only ``top_rate`` can be queried afterwards (the files hold no statistics).

    Args:
        path: the neuron-set file (``torch.save`` of ``list[lang][layer]`` index tensors).
        atlas: the local atlas folder (created if missing).
        model_slug: the model's name in the atlas; must not hold counts built here.
        languages: the file's language order (any spelling), the lost languages included.
        top_rate: the share of neurons the sets were published at, in (0, 1] (e.g. 0.01).
        source: where the file comes from (repo @ commit), recorded with the sets.
        n_layers: the model's layers (default None: the file's).
        ffn_width: the model's FFN width (default None: from ``hf_repo``'s config.json).
        hidden_size: the model's hidden size (default None: from ``hf_repo``'s config.json).
        missing: languages of ``languages`` whose lists the file lost; they get empty sets (default: none).
        hf_repo: the model's Hub id, recorded and used for shapes not given (default None).
        architecture: the model's architecture (default None: from config.json, else 'unknown').
        activation: the FFN activation (default None: from config.json, else 'silu').
        corpus: the corpus the sets were computed on (default '': 'unknown').
        tokens_per_language: tokens counted per language by the publishers (default 0: unknown).
        licence: the file's licence, shown on the data card (default '': not stated).

    Returns:
        dict[str, int]: neurons per canonical language tag (0 for ``missing`` languages).

    Raises:
        AtlasError: ``top_rate`` lies outside (0, 1], the model has counts built here, the file's lists disagree
            with each other or with the model's shape (layers, FFN width, a neuron twice), ``missing`` is not
            within ``languages`` or a language is named twice, or config.json cannot be read.
        InvalidParameterError: the file holds another number of lists than the languages given, or the shape is
            unknown (neither given nor ``hf_repo``).
        AtlasFormatError: the file is not a ``torch.save`` list of index tensors, holds negative indices, or
            ``atlas`` is a non-empty folder without ``atlas.json``.
        UnknownLanguageError: a language of ``languages`` is unknown.
    """
    if not 0 < top_rate <= 1:
        raise AtlasError(f"top_rate={top_rate} must lie in (0, 1]; published LAPE files use 0.01 or 0.05")
    layout = Layout(str(atlas))
    if layout.exists(layout.counts_dir(model_slug)) and layout.count_langs(model_slug):
        raise AtlasError(
            f"model {model_slug!r} in {atlas} has activation counts built here; importing published sets would "
            f"replace its LAPE table. Import under another slug (e.g. {model_slug}-imported)."
        )
    sets = load_neuron_sets(path)
    present = assign_languages(path, len(sets), list(languages), list(missing))
    layers_in_file = {len(per_layer) for per_layer in sets}
    if len(layers_in_file) != 1:
        raise AtlasError(f"{path}: languages have different numbers of layers {sorted(layers_in_file)}")
    file_layers = layers_in_file.pop()
    row = model_row(model_slug, hf_repo=hf_repo, n_layers=n_layers or file_layers, ffn_width=ffn_width,
                    hidden_size=hidden_size, architecture=architecture, activation=activation,
                    source=f"import:{source}", corpus=corpus, tokens_per_language=tokens_per_language)
    if file_layers != row.n_layers:
        raise AtlasError(f"{path}: holds {file_layers} layers per language, but model {model_slug} has {row.n_layers}")
    for lang, per_layer in zip(present, sets):
        for layer, idx in enumerate(per_layer):
            if idx.size and idx.max() >= row.ffn_width:
                raise AtlasError(
                    f"{path}: language {lang} layer {layer} holds neuron {int(idx.max())}, beyond the FFN width "
                    f"{row.ffn_width} of {model_slug}: wrong model, wrong ffn_width, or wrong language order?"
                )
            if np.unique(idx).size != idx.size:
                raise AtlasError(f"{path}: language {lang} layer {layer} lists a neuron twice")
    empty = [np.zeros(0, dtype=np.int64)] * row.n_layers
    by_lang = {lang: (sets[present.index(lang)] if lang in present else empty) for lang in languages}
    params = {"file": Path(path).name, "sha256": sha256_file(path), "language_order": list(languages),
              "missing": [langs_mod.canonical(m) for m in missing], "licence": licence}
    write_imported_sets(atlas, row, by_lang, top_rate=top_rate, source=source, params=params)
    return {langs_mod.canonical(lang): int(sum(idx.size for idx in per_layer)) for lang, per_layer in by_lang.items()}
