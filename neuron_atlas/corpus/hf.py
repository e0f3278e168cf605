"""Hugging Face datasets with one config per language (FLORES+, GlotCC, CulturaX, FineWeb-2, Wikipedia), streamed.

Configs come from the dataset card's ``configs:`` list (each with its ``data_files``) or, without one,
from the top-level folders (``<config>/**/*.parquet``). A local folder laid out like the repository
works in place of the id. Rows are streamed with ``datasets`` when installed, else the repository's
Parquet files are read batch by batch through ``huggingface_hub``'s file system.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from ..languages import tags as langs
from ..errors import CorpusError, UnknownLanguageError, did_you_mean
from .base import Corpus

# Wikipedia editions whose subdomain is not the ISO 639 code of their language.
_WIKI_CODES = {"als": "gsw", "simple": None, "zh-classical": "lzh", "zh-yue": "yue", "zh-min-nan": "nan",
               "fiu-vro": "vro", "bat-smg": "sgs", "roa-rup": "rup", "cbk-zam": "cbk", "be-x-old": None}


def _strip_date(config: str) -> str:
    """'20231101.tl' -> 'tl' (dump-dated configs); other names unchanged."""
    return re.sub(r"^\d{8}\.", "", config)


def _fineweb2(config: str) -> str | None:
    """'tgl_Latn' -> 'tgl_Latn'; 'tgl_Latn_removed' (the documents FineWeb-2's filters dropped) -> None."""
    return None if config.endswith("_removed") else config


def _wikipedia(config: str) -> str | None:
    date, _, code = config.partition(".")
    return _WIKI_CODES.get(code, code) if date.isdigit() else None


@dataclass(frozen=True)
class HFLayout:
    """How a dataset spells the language in its config names, which column holds the text, which configs to use."""

    language: Callable[[str], str | None]  # config name -> a spelling langs.parse understands, None: not a language
    text_column: str = "text"
    config_pattern: str = "*"


LAYOUTS: dict[str, HFLayout] = {
    "openlanguagedata/flores_plus": HFLayout(_strip_date),  # 'tgl_Latn' (splits dev, devtest)
    "cis-lmu/GlotCC-V1": HFLayout(_strip_date),  # 'tgl-Latn'
    "uonlp/CulturaX": HFLayout(_strip_date),  # 'tl'
    "HuggingFaceFW/fineweb-2": HFLayout(_fineweb2),  # 'tgl_Latn' in data/tgl_Latn/{train,test}/*.parquet
    "wikimedia/wikipedia": HFLayout(_wikipedia, config_pattern="20231101.*"),  # '20231101.tl'
}
GENERIC = HFLayout(_strip_date)


class HFCorpus(Corpus):
    """One language per config of a Hugging Face dataset (or a local folder in the same layout).

    ``config_pattern`` (a glob) picks among configs, e.g. a Wikipedia dump date; ``layout`` names an entry
    of ``LAYOUTS`` to apply to a local mirror; ``revision`` is a branch, tag or commit of the repository.
    """

    def __init__(self, repo: str, config_pattern: str | None = None, revision: str | None = None,
                 text_column: str | None = None, layout: str | None = None) -> None:
        if layout is not None and layout not in LAYOUTS:
            raise CorpusError(f"unknown layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
        self.repo = repo
        self.layout = LAYOUTS.get(layout or repo, GENERIC)
        self.config_pattern = config_pattern or self.layout.config_pattern
        self.text_column = text_column or self.layout.text_column
        self.revision = revision
        local = Path(repo).expanduser()
        self._local = local.resolve() if local.is_dir() else None
        self.name = f"hf:{repo}"
        self.version = revision or ("local" if self._local else "main")

    @cached_property
    def _use_datasets(self) -> bool:
        """Stream a Hub dataset through ``datasets`` when it is installed (local folders are read directly)."""
        if self._local is not None:
            return False
        try:
            import datasets  # noqa: F401
        except ImportError:
            return False
        return True

    @cached_property
    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        """The file system holding the repository, and the repository's root in it."""
        if self._local is not None:
            return fsspec.filesystem("file"), self._local.as_posix()
        from huggingface_hub import HfFileSystem

        root = f"datasets/{self.repo}" + (f"@{quote(self.revision, safe='')}" if self.revision else "")
        return HfFileSystem(), root

    @cached_property
    def _files(self) -> list[str]:
        """Paths of the repository's files relative to its root, sorted."""
        fs, root = self._fs
        try:
            found = fs.find(root)
        except Exception as exc:  # network, auth (gated datasets need HF_TOKEN), missing repo
            raise CorpusError(f"cannot list the files of dataset {self.repo!r} ({type(exc).__name__}: {exc})") from exc
        return sorted(p[len(root) + 1:] for p in found if p.startswith(root + "/"))

    @cached_property
    def _configs(self) -> dict[str, list[str]]:
        """config name -> glob patterns of its data files (empty: the files under the folder of that name)."""
        if self._use_datasets:
            import datasets

            try:
                names = datasets.get_dataset_config_names(self.repo, revision=self.revision)
            except Exception as exc:  # network, auth (gated datasets need HF_TOKEN), missing repo
                raise CorpusError(
                    f"cannot list the configs of dataset {self.repo!r} ({type(exc).__name__}: {exc})"
                ) from exc
            return {c: [] for c in names}
        declared = self._card_configs()
        if declared:
            return declared
        return {f.split("/")[0]: [] for f in self._files if f.endswith(".parquet") and "/" in f}

    def _card_configs(self) -> dict[str, list[str]]:
        """The ``configs:`` of the dataset card's YAML header, as config -> data file globs."""
        if "README.md" not in self._files:
            return {}
        fs, root = self._fs
        with fs.open(f"{root}/README.md", "r", encoding="utf-8") as f:
            text = f.read()
        match = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
        meta = yaml.safe_load(match.group(1)) if match else None
        configs = (meta or {}).get("configs") or []
        return {c["config_name"]: _patterns(c.get("data_files")) for c in configs if "config_name" in c}

    @cached_property
    def _chosen(self) -> dict[str, tuple[str, list[str]]]:
        """canonical tag -> (config read, other matching configs of the same language)."""
        groups: dict[str, list[str]] = {}
        for config in self._configs:
            if not fnmatch.fnmatchcase(config, self.config_pattern):
                continue
            spelling = self.layout.language(config)
            try:
                tag = langs.canonical(spelling) if spelling else None
            except UnknownLanguageError:
                tag = None
            if tag is not None:
                groups.setdefault(tag, []).append(config)
        if not groups:
            raise CorpusError(
                f"dataset {self.repo!r} has no per-language configs matching {self.config_pattern!r} "
                f"(configs: {', '.join(list(self._configs)[:10]) or 'none'})"
            )
        # the last name wins: the newest of several dated dumps
        return {t: (max(cs), sorted(cs, reverse=True)[1:]) for t, cs in sorted(groups.items())}

    def languages(self) -> list[str]:
        return list(self._chosen)

    def _describe(self, tag: str) -> dict:
        config, others = self._chosen[tag]
        return {"dataset": self.repo, "config": config, "revision": self.revision, "text_column": self.text_column,
                "alternatives": others, "n_chars": None}

    def _texts(self, tag: str) -> Iterator[str]:
        config = self._chosen[tag][0]
        return self._stream_datasets(config) if self._use_datasets else self._stream_parquet(config)

    def _stream_datasets(self, config: str) -> Iterator[str]:
        import datasets

        splits = datasets.load_dataset(self.repo, config, revision=self.revision, streaming=True)
        for split in sorted(splits):
            for row in splits[split]:
                if self.text_column not in row:
                    raise CorpusError(f"{self.repo} config {config!r} has no column {self.text_column!r} "
                                      f"(columns: {sorted(row)}); pass text_column=")
                if row[self.text_column]:
                    yield row[self.text_column]

    def _stream_parquet(self, config: str) -> Iterator[str]:
        patterns = self._configs[config]
        files = [f for f in self._files if f.endswith(".parquet") and (
            any(fnmatch.fnmatch(f, p) for p in patterns) if patterns else f.startswith(config + "/"))]
        if not files:
            raise CorpusError(f"{self.repo} config {config!r} has no Parquet data files "
                              f"(looked for {patterns or [config + '/**/*.parquet']})")
        fs, root = self._fs
        for rel in files:
            with fs.open(f"{root}/{rel}", "rb") as f:
                try:
                    parquet = pq.ParquetFile(f)
                except pa.ArrowException as exc:
                    raise CorpusError(f"{self.repo}/{rel}: not a readable Parquet file ({exc})") from exc
                if self.text_column not in parquet.schema_arrow.names:
                    raise CorpusError(
                        f"{self.repo}/{rel} has no column {self.text_column!r} (columns: {parquet.schema_arrow.names})."
                        f"{did_you_mean(self.text_column, parquet.schema_arrow.names)} Pass text_column=."
                    )
                for batch in parquet.iter_batches(batch_size=1024, columns=[self.text_column]):
                    yield from (t for t in batch.column(0).to_pylist() if t)


def _patterns(data_files: object) -> list[str]:
    """fnmatch patterns of a card's ``data_files`` (a glob, a list of globs or of {split, path}, or {split: glob})."""
    if data_files is None:
        return []
    if isinstance(data_files, str):
        return [data_files.replace("**/", "").replace("**", "*")]  # fnmatch's '*' also matches '/'
    if isinstance(data_files, dict):
        return _patterns(data_files["path"]) if "path" in data_files else [
            p for v in data_files.values() for p in _patterns(v)]
    return [p for item in data_files for p in _patterns(item)]
