"""The published LAPE neuron-set files neuron-atlas knows, so importing them needs no flags beyond the file.

Each entry (in ``data/catalog.json``) was read from the file and the script that wrote it (language order, top
rate) and is matched by the file's sha256, never by its name (names such as ``llama-1`` say little).
"""
from __future__ import annotations

from pathlib import Path

from ..catalog import KnownFile, published_sets
from ..errors import AtlasError, did_you_mean
from .._utils.files import sha256_file

KNOWN: tuple[KnownFile, ...] = published_sets()  # read from data/catalog.json


def find_known(path: str | Path) -> KnownFile | None:
    """The registry entry of the file at ``path`` (matched by content hash), or None.

    Args:
        path: a neuron-set file (``torch.save`` of ``list[lang][layer]`` index tensors).

    Returns:
        KnownFile | None: the published file with the same sha256 (its model, shape, language order, top rate,
        source and licence), or None when the file is not a known one.
    """
    digest = sha256_file(path)
    return next((k for k in KNOWN if k.sha256 == digest), None)


def known(name: str) -> KnownFile:
    """The registry entry called ``name`` (e.g. ``clas-bench/llama-3.1-8b-instruct``).

    Args:
        name: the entry's preset name, exactly as listed in ``KNOWN``.

    Returns:
        KnownFile: the published file's model, shape, language order, top rate, source and licence.

    Raises:
        AtlasError: no entry is called ``name`` (the message lists them, and the closest).
    """
    for entry in KNOWN:
        if entry.name == name:
            return entry
    names = [k.name for k in KNOWN]
    raise AtlasError(f"no known published file called {name!r}; known: {', '.join(names)}.{did_you_mean(name, names)}")
