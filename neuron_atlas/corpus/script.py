"""A small script check: the share of a text's letters that are not in the ISO 15924 script expected.

Letters are classified by the prefix of their Unicode name ("CYRILLIC SMALL LETTER A" is Cyrillic),
which needs no extra data and is exact enough to catch a text in the wrong script.
"""
from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

import langcodes
from langcodes.data_dicts import ALL_SCRIPTS

# Scripts whose Unicode character names do not start with the upper-cased English script name.
_HAN = ("CJK ", "IDEOGRAPHIC")
_PREFIXES: dict[str, tuple[str, ...]] = {
    "Hans": _HAN,
    "Hant": _HAN,
    "Hani": _HAN,
    "Jpan": (*_HAN, "HIRAGANA", "KATAKANA"),
    "Kore": ("HANGUL", *_HAN),
    "Beng": ("BENGALI",),
    "Orya": ("ORIYA",),
    "Cans": ("CANADIAN SYLLABICS",),
    "Lana": ("TAI THAM",),
}


@lru_cache(maxsize=512)
def script_prefixes(script: str) -> tuple[str, ...]:
    """Unicode name prefixes of the letters of an ISO 15924 script ('Cyrl' -> ('CYRILLIC',))."""
    if script in _PREFIXES:
        return _PREFIXES[script]
    name = langcodes.Language.get(f"und-{script}").script_name()
    if not name or name.startswith("Unknown") or script in ("Zyyy", "Zinh", "Zzzz"):
        raise ValueError(
            f"{script!r} is not an ISO 15924 script code of a writing system (e.g. 'Latn', 'Cyrl', 'Deva')"
        )
    return (name.upper() + " ",)


@lru_cache(maxsize=65536)
def _letter_name(char: str) -> str | None:
    """The Unicode name of a letter, or None for non-letters and script-neutral modifier letters."""
    if not unicodedata.category(char).startswith("L"):
        return None
    name = unicodedata.name(char, "")
    return None if not name or name.startswith("MODIFIER LETTER") else name


def script_mismatch(text: str, script: str) -> float:
    """Share (0..1) of the letters of ``text`` that are not written in ``script``; 0.0 for a text with no letters."""
    prefixes = script_prefixes(script)
    n_letters = n_other = 0
    for char, count in Counter(text).items():
        name = _letter_name(char)
        if name is not None:
            n_letters += count
            n_other += count * (not name.startswith(prefixes))
    return n_other / n_letters if n_letters else 0.0


@lru_cache(maxsize=1)
def _prefix_index() -> tuple[tuple[str, str], ...]:
    """(name prefix, script) pairs, longest prefix first; the common code wins a shared prefix (Latn over Latf)."""
    index: dict[str, str] = {}
    for script in ("Latn", "Cyrl", "Arab", "Hani", "Deva", *sorted(ALL_SCRIPTS)):
        try:
            prefixes = script_prefixes(script)
        except ValueError:
            continue
        for prefix in prefixes:
            index.setdefault(prefix, script)
    return tuple(sorted(index.items(), key=lambda kv: -len(kv[0])))


@lru_cache(maxsize=65536)
def _letter_script(char: str) -> str | None:
    name = _letter_name(char)
    return None if name is None else next((s for p, s in _prefix_index() if name.startswith(p)), None)


def dominant_script(text: str) -> str | None:
    """The ISO 15924 script of most of the letters of ``text`` (Han, kana and Hangul count apart: Hani, Hira, Kana,
    Hang), or None for a text with no letters."""
    counts: Counter[str] = Counter()
    for char, count in Counter(text).items():
        script = _letter_script(char)
        if script is not None:
            counts[script] += count
    return counts.most_common(1)[0][0] if counts else None
