"""Which corpus class opens a spec string: one table of (kind, matcher, opener), first match wins."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import CorpusSpecError
from .base import Corpus
from .hf import HFCorpus
from .local import LocalCorpus
from .udhr import UDHR


def _open_hf(text: str, **kw: Any) -> Corpus:
    repo, _, pattern = text[3:].partition(":")
    if not repo:
        raise CorpusSpecError(f"{text!r}: expected 'hf:<dataset id>' such as 'hf:openlanguagedata/flores_plus'")
    return HFCorpus(repo, config_pattern=pattern or None, **kw)


# (kind, does the spec name this kind?, open it); keyword arguments go to the corpus class.
CORPORA: tuple[tuple[str, Callable[[str], bool], Callable[..., Corpus]], ...] = (
    ("udhr", lambda text: text.lower() == "udhr", lambda text, **kw: UDHR(**kw)),
    ("hf", lambda text: text.startswith("hf:"), _open_hf),
    ("local", lambda text: Path(text).expanduser().exists(),
     lambda text, **kw: LocalCorpus(Path(text).expanduser(), **kw)),
)


def open_corpus(spec: str | os.PathLike, **kw: Any) -> Corpus:
    """Open a corpus: ``'udhr'``, ``'hf:<dataset id or local repo>[:<config glob>]'``, or a local file or folder."""
    text = os.fspath(spec)
    for _kind, matches, opener in CORPORA:
        if matches(text):
            return opener(text, **kw)
    raise CorpusSpecError(
        f"{text!r} is not a corpus: use 'udhr', an existing file or folder of per-language files "
        "(tgl_Latn.txt, sw.jsonl, en.parquet), or 'hf:<dataset id>[:<config glob>]'"
    )
