"""General file helpers: atomic writes (readers see the old file or the new, never half), the one rule for files a
user names as an output (``write_output``), stale temporaries a killed writer left, sha256 of a file, and the download
cache folder. Nothing here knows the atlas layout (``format.layout`` does)."""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "data"  # the package's data: embedded atlas, tables, catalog


_TMP_PREFIX, _TMP_SUFFIX = ".", ".tmp"  # write_atomically's ".<name>.<pid>-<random>.tmp"


def remove_stale_temporaries(root: str | Path, max_age: float = 3600.0) -> list[Path]:
    """Delete the hidden ``.*.tmp`` files that killed writers left under ``root``; returns them.

    A file goes when the process named in it is gone or it is older than ``max_age`` seconds (another host's writer),
    so a concurrent writer's file in flight survives.
    """
    import time

    removed = []
    for path in Path(root).rglob(f"{_TMP_PREFIX}*{_TMP_SUFFIX}"):
        match = re.search(r"\.(\d+)-[0-9a-f]+\.tmp$", path.name)
        try:
            orphan = match is None or not _alive(int(match.group(1)))
            if not path.is_file() or not (orphan or time.time() - path.stat().st_mtime > max_age):
                continue
            path.unlink()
            removed.append(path)
        except FileNotFoundError:  # its writer renamed it meanwhile
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def write_atomically(path: str | Path, write) -> None:
    """Run ``write(tmp_path)`` then rename over ``path``: readers see the old file or the new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f"{_TMP_PREFIX}{path.name}.{os.getpid()}-{secrets.token_hex(6)}{_TMP_SUFFIX}")
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # 0666 minus the umask, unlike mkstemp's 0600
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(text: str, path: str | Path) -> None:
    """Write a small text file of the package's own (a manifest) atomically."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def write_output(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file a user named (``-o``, ``save(path)``) as a shell redirection would, the one rule for every command
    and API that does: a device or FIFO is opened and written, never replaced; a symlink is followed to its target; a
    regular file (or a new one) is replaced atomically (temporary file, rename). A folder is refused."""
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "is a folder; name a file to write", str(path))
    if mode is not None and not stat.S_ISREG(mode):
        with open(path, "wb") as f:
            write(f)
        return

    def to_file(tmp: str) -> None:
        with open(tmp, "wb") as f:
            write(f)

    write_atomically(os.path.realpath(path), to_file)


def write_bytes(data: bytes, path: str | Path) -> None:
    """Write ``data`` (safetensors, PNG, a mask) to a file a user named, by ``write_output``'s rule."""
    write_output(path, lambda f: f.write(data))


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (weights, downloads, published neuron sets)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    """Where downloads and converted models are cached: ``$NEURON_ATLAS_CACHE``, else ``~/.cache/neuron-atlas``."""
    return Path(os.environ.get("NEURON_ATLAS_CACHE") or Path.home() / ".cache" / "neuron-atlas")
