"""What an atlas is made of: the regular files under its root, resolved. A symlink (to a file or a folder) whose
target lies outside the root is refused, so neither the Python readers nor SQL read an outside file through it:
``check_contained`` when an atlas is opened, ``confined`` again as each file is read (a symlink put in place later).

One exception: a Hugging Face cache snapshot (``.../datasets--org--name/snapshots/<sha>/``) links every file to the
repo's ``blobs/`` folder, which then counts as inside.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import AtlasFormatError
from .schema import TABLES


def boundaries(root: str | os.PathLike) -> list[str]:
    """The resolved folders the atlas' files may live in: the root, and a Hub cache snapshot's blobs folder."""
    real = Path(os.path.realpath(root))
    out = [str(real)]
    for parent in [real, *real.parents]:
        if parent.parent.name == "snapshots" and (parent.parent.parent / "blobs").is_dir():
            out.append(str(parent.parent.parent / "blobs"))
            break
    return out


def _inside(path: str, bounds: list[str] | tuple[str, ...]) -> bool:
    return any(path == b or path.startswith(b.rstrip(os.sep) + os.sep) for b in bounds)


def escapes(root: str | os.PathLike) -> list[tuple[str, str]]:
    """(link, what is wrong) for every symlink under ``root`` that leads outside it or nowhere; folders are walked
    without following links (``DirEntry`` types, no extra system call per file), so a linked folder is one finding."""
    bounds, found, stack = boundaries(root), [], [os.fspath(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not os.path.exists(target):
                    found.append((entry.path, f"a symlink to {os.readlink(entry.path)!r}, which does not exist"))
                elif not _inside(target, bounds):
                    found.append((entry.path, (f"a symlink leading outside the atlas (to {target}); an atlas is the "
                                               "regular files under its folder: copy the file in instead of linking it")))
            elif entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return sorted(found)


def check_contained(root: str | os.PathLike) -> None:
    """Raise AtlasFormatError naming the symlinks under ``root`` that leave it (see ``escapes``)."""
    found = escapes(root)
    if found:
        more = f" (and {len(found) - 1} more; `neuron-atlas verify` lists all)" if len(found) > 1 else ""
        raise AtlasFormatError(f"{found[0][0]}: {found[0][1]}{more}")


def _root_of(path: str) -> str | None:
    """The atlas folder holding ``path``, read off the path itself: what is left above its place in the layout
    (``counts/model=m/lang=t/counts.parquet``), or None for a path that is no table's file."""
    parts = path.replace(os.sep, "/").split("/")
    for table in TABLES:
        pattern = table.path.split("/")
        if len(parts) > len(pattern) and all(
                got == want if "{" not in want else got.startswith(want.split("{")[0])
                for got, want in zip(parts[-len(pattern):], pattern)):
            return "/".join(parts[: -len(pattern)]) or "/"
    return None


def confined(path: str) -> str:
    """``path``, once it is confirmed to resolve inside its atlas now, as it is about to be read: a file swapped for a
    symlink after the atlas was opened (``check_contained`` ran then) is refused, not followed out of the atlas."""
    root = _root_of(path)
    if root is not None:
        real = os.path.realpath(path)
        if not _inside(real, _bounds(root)):
            raise AtlasFormatError(f"{path}: leads outside the atlas (to {real}), a symlink put in place after the "
                                   "atlas was opened; an atlas is the regular files under its folder")
    return path


@functools.lru_cache(maxsize=64)
def _bounds(root: str) -> tuple[str, ...]:
    """``boundaries(root)``, resolved once per atlas folder for the reads of a process (a root that later resolves
    elsewhere only narrows what passes: a file leading out of the old root is still refused)."""
    return tuple(boundaries(root))


def hive_safe(root: str | os.PathLike) -> bool:
    """Whether no folder above the atlas is named like a partition (``model=x``), which DuckDB's hive parsing of
    absolute paths would turn into a column for every row."""
    return not any("=" in p for text in (os.path.abspath(root), os.path.realpath(root)) for p in Path(text).parts)
