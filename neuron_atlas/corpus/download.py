"""Checksum-pinned downloads into the cache: written to a temporary file, verified, then renamed into place."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from .._utils.files import sha256_file
from ..errors import CorpusError


def cached_download(url: str, sha256: str, dest: Path, timeout: float = 60.0) -> Path:
    """``dest`` holding the bytes of ``url`` with the given SHA-256, downloading them if not cached yet.

    A cached file with the wrong checksum is fetched again. A failed or mismatching download raises
    CorpusError naming the URL and the expected checksum, and leaves nothing at ``dest``.
    """
    if dest.is_file():
        if sha256_file(dest) == sha256:
            return dest
        warnings.warn(f"{dest}: cached file does not have sha256 {sha256}; downloading {url} again", stacklevel=2)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    hint = f"expected sha256 {sha256}; you can also download it by hand and save it as {dest}"
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise CorpusError(f"download of {url} is corrupt: sha256 {digest.hexdigest()}, {hint}")
        os.replace(tmp, dest)
    except (OSError, urllib.error.URLError) as exc:
        raise CorpusError(f"could not download {url} ({exc}); {hint}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest
