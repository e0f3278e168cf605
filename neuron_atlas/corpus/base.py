"""The corpus interface the builder counts activations on (``registry.open_corpus`` picks one from a spec).

A corpus holds text per language under canonical tags (``tgl_Latn``); any spelling of a language
(``tl``, ``Tagalog``) is resolved against the tags it actually has.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

from ..languages import tags as langs


class Corpus(ABC):
    """Texts per language. Subclasses implement ``languages``, ``_texts`` and ``_describe`` on canonical tags."""

    name: str
    version: str

    @abstractmethod
    def languages(self) -> list[str]:
        """The canonical tags (``tgl_Latn``) this corpus has text for, sorted."""

    @abstractmethod
    def _texts(self, tag: str) -> Iterator[str]:
        """The documents or paragraphs of the canonical ``tag``."""

    @abstractmethod
    def _describe(self, tag: str) -> dict:
        """Where the text of the canonical ``tag`` comes from."""

    def resolve(self, lang: str) -> str:
        """The corpus' canonical tag for any spelling of ``lang``; UnknownLanguageError names the closest."""
        return langs.resolve(lang, self.languages(), context=f"the corpus '{self.name}'")

    def texts(self, lang: str) -> Iterator[str]:
        """The documents or paragraphs of ``lang`` (any accepted spelling), in corpus order."""
        return self._texts(self.resolve(lang))

    def describe(self, lang: str) -> dict:
        """Provenance of ``lang``'s text: corpus, version, tag, source (file / id / name) and ``n_chars`` if known."""
        tag = self.resolve(lang)
        return {"corpus": self.name, "version": self.version, "lang": tag, **self._describe(tag)}

    def n_chars(self, lang: str, stop_at: int | None = None) -> int:
        """Characters of text in ``lang``; counting stops once ``stop_at`` is reached (for streamed corpora)."""
        total = 0
        for text in self.texts(lang):
            total += len(text)
            if stop_at is not None and total >= stop_at:
                break
        return total


def split_by_min_chars(corpus: Corpus, tags: Iterable[str], min_chars: int) -> tuple[list[str], dict[str, int]]:
    """Split ``tags`` into those with at least ``min_chars`` characters of text and the rest ({tag: n_chars})."""
    kept: list[str] = []
    short: dict[str, int] = {}
    for tag in tags:
        n = corpus.n_chars(tag, stop_at=min_chars)
        if n >= min_chars:
            kept.append(corpus.resolve(tag))
        else:
            short[corpus.resolve(tag)] = n
    return kept, short
