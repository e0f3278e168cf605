"""Bring an atlas written before content fingerprints up to them: stamp every file's footer, then say so in the
manifest. Data pages are left byte for byte, so every query answers exactly as before.

    python -c "from neuron_atlas.maintenance.upgrade import fingerprint_atlas; print(fingerprint_atlas('ATLAS'))"
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from ..format import fingerprint
from .._utils.files import write_atomically, write_text
from ..errors import AtlasFormatError
from ..format.reader import read_manifest
from ..format.layout import Layout, atlas_lock


def fingerprint_atlas(root: str | Path) -> int:
    """Stamp every atlas file under ``root`` that lacks a fingerprint and mark the manifest; returns how many.

    Runs ``verify`` first: a fingerprint vouches for the file as it is, so a damaged atlas is refused.
    """
    from ..format.verify import verify

    layout = Layout(str(root))
    manifest = read_manifest(layout)
    problems = verify(layout)
    if problems:
        raise AtlasFormatError(f"{root}: {len(problems)} problems (first: {problems[0]}); fix them before "
                               "fingerprinting, or the fingerprints would vouch for damaged files")
    stamped = 0
    with atlas_lock(root):
        for path in sorted(Path(root).rglob("*.parquet")):
            ident = fingerprint.identity(path.relative_to(root))
            if ident is None or path.name.startswith("."):
                continue
            if fingerprint.stored(pq.read_metadata(path)) is not None:
                continue
            write_atomically(path, lambda tmp, src=path, ident=ident: (shutil.copyfile(src, tmp),
                                                                       fingerprint.stamp(tmp, ident)))
            stamped += 1
        if not manifest.fingerprinted:
            write_text(manifest.model_copy(update={"fingerprinted": True}).model_dump_json(indent=2) + "\n",
                       layout.manifest)
    return stamped
