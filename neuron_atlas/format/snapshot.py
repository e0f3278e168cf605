"""Whether a local atlas folder changed since it was opened: another process added shards or re-derived tables.

An open Atlas compares this state before answering and reloads what it cached when it moved, so it never serves
new derived views beside the old list of counts. Hub atlases are pinned to one commit and never change.
"""
from __future__ import annotations

import os

from .layout import Layout


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def state(layout: Layout) -> tuple | None:
    """A value that changes whenever a shared or derived file of the atlas is written (every write renames a new
    file into place, so inode and time change) or a shard folder appears or goes (its parent folder's time
    changes); None for remote atlases. A few stat calls per model, not a listing of the shards."""
    if layout.fs is not None:
        return None
    out: list = [_stat(layout.manifest), _stat(layout.file("languages")), _stat(layout.path("models"))]
    for slug in layout.model_slugs():
        out += [slug, _stat(layout.file("models", model=slug)), _stat(layout.file("lape", model=slug)), _stat(layout.file("ranking", model=slug)),
                _stat(layout.counts_dir(slug))]
    return tuple(out)
