"""Local text: one file per language named by its tag (``tgl_Latn.txt``, ``sw.jsonl``, ``en.parquet``),
or a folder of them.

``.txt`` holds paragraphs separated by blank lines (or, with no blank line in its first MiB, one text a line),
``.jsonl`` one JSON object a line with a text field, ``.parquet`` a text column.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from functools import cached_property, lru_cache
from pathlib import Path

import langcodes
import pyarrow as pa
import pyarrow.parquet as pq
from langcodes.data_dicts import LANGUAGE_ALPHA3

from ..languages import tags as langs
from ..errors import CorpusError, UnknownLanguageError, closest, did_you_mean
from .base import Corpus
from .._utils.files import sha256_file

SUFFIXES = (".txt", ".jsonl", ".parquet")
_PEEK = 1 << 20  # bytes of a .txt looked at to decide between paragraphs and lines
_FINGERPRINT = 1 << 20  # bytes at each end of a file that its version digest covers


class LocalCorpus(Corpus):
    """Texts from a file or a folder of files, one language per file.

    ``text_field`` names the JSONL field or Parquet column holding the text.
    """

    def __init__(self, path: Path, text_field: str = "text") -> None:
        path = Path(path)
        if path.is_file():
            if path.suffix not in SUFFIXES:
                raise CorpusError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
            files = [path]
        elif path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith(".")
            )
            if not files:
                raise CorpusError(
                    f"{path}: no {'/'.join(SUFFIXES)} files; put one file per language there, named by its tag "
                    "(tgl_Latn.txt, sw.jsonl, en.parquet)"
                )
        else:
            raise CorpusError(f"{path}: no such file or folder")
        self.path = path
        self.text_field = text_field
        self.name = f"local:{path.name}"
        self._files: dict[str, Path] = {}
        for file in files:
            tag = _stem_tag(file)
            if tag in self._files:
                raise CorpusError(f"{self._files[tag].name} and {file.name} are both {tag}; keep one file per language")
            self._files[tag] = file

    @cached_property
    def version(self) -> str:  # type: ignore[override]
        """'sha256:' and 16 hex digits over every file's size and its first and last MiB, so a changed corpus has
        a new version without reading corpora of any size in full."""
        digest = hashlib.sha256()
        for tag, file in sorted(self._files.items()):
            size = file.stat().st_size
            digest.update(f"{tag}={size}\n".encode())
            with open(file, "rb") as f:
                digest.update(f.read(_FINGERPRINT))
                f.seek(max(size - _FINGERPRINT, 0))
                digest.update(f.read(_FINGERPRINT))
        return "sha256:" + digest.hexdigest()[:16]

    def languages(self) -> list[str]:
        return sorted(self._files)

    def _describe(self, tag: str) -> dict:
        file = self._files[tag]
        return {"file": str(file.resolve()), "sha256": sha256_file(file), "n_chars": sum(map(len, self._texts(tag)))}

    def _texts(self, tag: str) -> Iterator[str]:
        file = self._files[tag]
        reader = {".txt": _read_txt, ".jsonl": _read_jsonl, ".parquet": _read_parquet}[file.suffix]
        return reader(file, self.text_field)


def _stem_tag(file: Path) -> str:
    """The canonical tag a file's name spells ('tl.txt' -> 'tgl_Latn'), or CorpusError with the closest names."""
    try:
        return langs.canonical(file.stem)
    except UnknownLanguageError:
        names = _language_names()
        near = list(dict.fromkeys(names[k] for k in closest(file.stem, names, n=4)))
        hint = f" Did you mean: {', '.join(near)}?" if near else ""
        raise CorpusError(
            f"{file}: the file name {file.stem!r} is not a language.{hint} Name each file by its language "
            "tag, e.g. tgl_Latn.txt, sw.jsonl, en.parquet"
        ) from None


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    """English names and codes of the ISO 639-1 languages, for suggestions: {'Tagalog': 'Tagalog (tl)', 'tgl': ...}."""
    names = {}
    for two, three in LANGUAGE_ALPHA3.items():
        if len(two) != 2:
            continue
        name = langcodes.Language.get(two).language_name("en")
        names[name] = names[two] = names[three] = f"{name} ({two})"
    return names


def _read_txt(file: Path, _field: str) -> Iterator[str]:
    with open(file, encoding="utf-8", errors="strict") as f:
        try:
            paragraphs = re.search(r"\n[ \t\r]*\n", f.read(_PEEK)) is not None
            f.seek(0)
            block: list[str] = []
            for line in f:
                line = line.strip()
                if not paragraphs:
                    if line:
                        yield line
                elif line:
                    block.append(line)
                elif block:
                    yield "\n".join(block)
                    block = []
            if block:
                yield "\n".join(block)
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{file}: not UTF-8 text ({exc})") from exc


def _read_jsonl(file: Path, field: str) -> Iterator[str]:
    with open(file, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{file}:{number}: not a JSON object ({exc})") from exc
            if not isinstance(row, dict) or field not in row:
                keys = sorted(row) if isinstance(row, dict) else type(row).__name__
                raise CorpusError(f"{file}:{number}: no {field!r} field (found {keys}); pass text_field= to name it")
            if row[field]:
                yield row[field]


def _read_parquet(file: Path, field: str) -> Iterator[str]:
    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{file}: not a readable Parquet file ({exc})") from exc
    names = parquet.schema_arrow.names
    if field not in names:
        raise CorpusError(
            f"{file}: no column {field!r} (columns: {names}).{did_you_mean(field, names)} Pass text_field=."
        )
    for batch in parquet.iter_batches(batch_size=1024, columns=[field]):
        yield from (t for t in batch.column(0).to_pylist() if t)
