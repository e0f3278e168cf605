"""Language tags: parse ISO 639-1/3, BCP-47, FLORES-200 style and English names into one canonical form.

The canonical form is FLORES-200 style, ``<ISO 639-3>_<ISO 15924 script>`` (``tgl_Latn``, ``srp_Cyrl``),
so a language written in two scripts stays two languages. All parsing goes through ``langcodes``.
One language has one tag whatever the source: where ISO 639-3 has a macrolanguage code and an individual code for
the same language (Swahili ``swa``/``swh``), the table ``data/language_tags.csv`` names the one kept. The rule: the
individual language, as FLORES-200 and UDHR write it (``swh``, ``lvs``, ``npi``, ``arb``, ``cmn``), where the
macrolanguage code means one member in practice; a macrolanguage that is a family of distinct languages (Quechua
``que``, Guarani ``grn``, Akan ``aka``, Kongo ``kon``, Fula ``ful``, Serbo-Croatian ``hbs``) keeps its own code.
``parse`` applies it, so atlases are written, imported and queried under that tag; ``resolve`` still finds a
language an older atlas stored under the other code.
Names are taken exactly (an English name or the language's own, with an optional script word: "Serbian Latin",
"Uzbek (Cyrillic)"); a name that only resembles one ("Tagalogg", "Java") raises, suggesting the language.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import langcodes
from langcodes.data_dicts import ALL_SCRIPTS, LANGUAGE_ALPHA3, MACROLANGUAGES

from ..errors import InvalidParameterError, UnknownLanguageError, closest
from .._utils.files import PACKAGE_DATA

_ALPHA2 = {a3: a2 for a2, a3 in LANGUAGE_ALPHA3.items()}
TAG_TABLE = PACKAGE_DATA / "language_tags.csv"

# langcodes distance under which two tags name the same language: 0 for aliases and
# macrolanguage members ('cmn'~'zh', 'tl'~'fil', 'swh'~'sw'), 1 for 'nob'~'no'; another script is 5+.
_SAME_LANGUAGE = 1


@dataclass(frozen=True)
class LangInfo:
    """One language as stored in the atlas ``languages`` table."""

    tag: str  # canonical, e.g. "tgl_Latn"
    iso639_3: str
    script: str

    @property
    def name(self) -> str:
        """English name, e.g. "Tagalog" (looked up lazily: the names database takes ~0.1 s to load)."""
        return english_name(self.iso639_3)

    @property
    def bcp47(self) -> str:
        return f"{self.iso639_3}-{self.script}"


def _parse_code(text: str) -> langcodes.Language | None:
    try:
        lang = langcodes.Language.get(text.replace("_", "-"), normalize=False)
    except (langcodes.tag_parser.LanguageTagError, ValueError):
        return None
    if not lang.language or lang.language in ("und", "zxx", "mul", "mis"):
        return None
    if not langcodes.Language.get(lang.language).is_valid():  # normalised, so 'tgl' -> 'fil' is valid
        return None
    return lang


@lru_cache(maxsize=1)
def _script_words() -> dict[str, str]:
    """Script names as words in language names ('latin' -> Latn, 'cyrillic' -> Cyrl, 'traditional' -> Hant)."""
    words = {}
    for code in sorted(c for c in ALL_SCRIPTS if re.fullmatch(r"[A-Z][a-z]{3}", c)):
        name = langcodes.Language.get(f"und-{code}").script_name("en")
        if name and " " not in name and not name.startswith("Unknown"):
            words.setdefault(name.lower(), code)
    return words


def _find_name(text: str) -> tuple[langcodes.Language | None, bool]:
    """The language a name denotes, and whether the name is exact (English or the language's own) or only close."""
    from language_data.names import TRIES, code_to_names, name_to_code, normalize_name

    try:
        lang = langcodes.find(text)
    except LookupError:
        return None, False
    name_to_code("language", text, "en")  # loads the trie of English names, which the lookup below asks for exactness
    key = normalize_name(text)
    own = code_to_names(lang.language).get(lang.language, "")
    return lang, key in TRIES["en/name_to_language"] or key == normalize_name(own)


def _from_name(text: str) -> langcodes.Language | None:
    """An exact language name, or one with a script word ("Serbian Latin", "Uzbek (Cyrillic)"); a close name raises."""
    lang, exact = _find_name(text)
    if exact:
        return lang
    words = re.findall(r"[^\s(),/-]+", text)
    scripts = _script_words()
    for i in (len(words) - 1, 0):  # the script word last ('Serbian Latin') or first ('Traditional Chinese')
        rest = " ".join(words[:i] + words[i + 1:])
        if len(words) > 1 and words[i].lower() in scripts:
            base, base_exact = _find_name(rest)
            if base_exact:
                return langcodes.Language.make(language=base.language, script=scripts[words[i].lower()],
                                               territory=base.territory)
    if lang is not None:
        suggestion = lang.language_name("en")
        raise UnknownLanguageError(
            f"{text!r} is not a language name neuron-atlas knows exactly; did you mean {suggestion!r} "
            f"({lang.to_alpha3()})? Names are taken exactly, or use a code ('{lang.language}')."
        )
    return None


@lru_cache(maxsize=1)
def _canonical_codes() -> dict[tuple[str, str], str]:
    """(ISO 639-3 code, script or '') -> the code one language is stored under, from ``data/language_tags.csv``."""
    with TAG_TABLE.open(newline="", encoding="utf-8") as f:
        return {(r["code"], r["script"]): r["canonical"] for r in csv.DictReader(f)}


def canonical_code(alpha3: str, script: str) -> str:
    """The ISO 639-3 code a language written in ``script`` is stored under ('swa' -> 'swh', 'kur' in Arab -> 'ckb')."""
    table = _canonical_codes()
    return table.get((alpha3, script)) or table.get((alpha3, ""), alpha3)


@lru_cache(maxsize=4096)
def parse(tag: str) -> LangInfo:
    """Parse any accepted spelling of a language (case-insensitive) into its canonical ``LangInfo``.

    The code is the one ``data/language_tags.csv`` keeps for the language ('sw', 'swa', 'swh' -> ``swh_Latn``).
    Raises UnknownLanguageError naming close matches when the text is no known language, or only resembles a name.
    """
    raw = parse_code(tag)
    code = canonical_code(raw.iso639_3, raw.script)
    return raw if code == raw.iso639_3 else LangInfo(tag=f"{code}_{raw.script}", iso639_3=code, script=raw.script)


@lru_cache(maxsize=4096)
def parse_code(tag: str) -> LangInfo:
    """Like ``parse``, but keeping the ISO 639-3 code the text names ('sw' -> ``swa_Latn``): the tag an atlas written
    before the canonical-tag table stored."""
    text = str(tag).strip()
    lang = _parse_code(text) if text else None
    if lang is None and text:
        lang = _from_name(text)  # English (or native) language names
    if lang is None:
        raise UnknownLanguageError(
            f"{tag!r} is not a language tag or name that neuron-atlas understands. Use ISO 639-1 "
            "('tl'), ISO 639-3 ('tgl'), BCP-47 ('sr-Latn'), FLORES-200 ('tgl_Latn') or an English name ('Tagalog')."
        )
    regional = LANGUAGE_ALPHA3.get(f"{lang.language}-{lang.territory}") if lang.territory else None
    try:
        alpha3 = regional or lang.to_alpha3()  # 'Dari' is fa-AF to langcodes, and prs in ISO 639-3
    except LookupError as exc:
        raise UnknownLanguageError(f"{tag!r} has no ISO 639-3 code: {exc}") from None
    # likely script of the normalised tag: an unnormalised 'rus' maximises like 'und' to Latn
    script = lang.script or langcodes.Language.get(lang.to_tag()).maximize().script or "Zyyy"
    return LangInfo(tag=f"{alpha3}_{script}", iso639_3=alpha3, script=script)


@lru_cache(maxsize=4096)
def english_name(alpha3: str) -> str:
    """English name of an ISO 639-3 code ('tgl' -> 'Tagalog', not its alias 'Filipino')."""
    two = _ALPHA2.get(alpha3, alpha3)  # 'prs' -> 'fa-AF' names Persian in Afghanistan, not Dari: keep the alpha-3
    name = langcodes.Language.get(alpha3 if "-" in two else two, normalize=False).language_name("en")
    if name.startswith("Unknown language"):
        name = langcodes.Language.get(alpha3).language_name("en")
    return name


def canonical(tag: str) -> str:
    """The canonical tag (``tgl_Latn``) of any accepted spelling."""
    return parse(tag).tag


def noncanonical(tags: Sequence[str]) -> dict[str, str]:
    """The tags among ``tags`` that are not the canonical tag of their language, each with its canonical tag
    (``swa_Latn`` -> ``swh_Latn``: an atlas written before ``data/language_tags.csv``; fixed by ``migrate-tags``)."""
    out = {}
    for tag in tags:
        try:
            fixed = canonical(tag)
        except UnknownLanguageError:
            continue
        if fixed != tag:
            out[tag] = fixed
    return out


def resolve(tag: str, available: Sequence[str], *, context: str = "the atlas") -> str:
    """Match a user's tag to one of ``available`` canonical tags, or raise naming the closest ones.

    Exact canonical match first, then the tag as the text spells it (``swa_Latn`` in an atlas written before the
    canonical-tag table), then the same language under another code (``zh``/``cmn``, ``tl``/``fil``, ``ms``/``zsm``)
    in the same script.
    """
    avail = list(available)
    if tag in avail:
        return tag
    try:
        info = parse(tag)
    except UnknownLanguageError as exc:
        names = {_safe_name(a): a for a in avail}
        word = str(tag).strip().lower()  # a family named by a word of its members' names: Sami -> Northern Sami
        family = [a for a in avail if word and word in _safe_name(a).lower().split()]
        near = family + [names[n] for n in closest(str(tag), names, n=4)] + closest(str(tag), avail, n=2)
        hint = f" Closest in {context}: {', '.join(dict.fromkeys(f'{a} ({_safe_name(a)})' for a in near))}." if near else ""
        raise UnknownLanguageError(f"{exc}{hint}") from None
    if info.tag in avail:
        return info.tag
    raw = parse_code(tag)
    if raw.tag in avail:
        return raw.tag
    for spelled in dict.fromkeys((info.bcp47, raw.bcp47)):
        match = langcodes.closest_supported_match(spelled, [a.replace("_", "-") for a in avail], max_distance=_SAME_LANGUAGE)
        if match is not None:
            return match.replace("-", "_")
    asked, info = info, raw  # a macrolanguage ('ms') may stand for the one member an atlas has
    family = [a for a in avail if _macro(a.split("_")[0]) == _macro(info.iso639_3)]
    if _macro(info.iso639_3) == info.iso639_3:  # a macrolanguage ('ms') may stand for one member ('zlm'), not vice versa
        same_script = [a for a in family if a.endswith("_" + info.script)]
        named = [a for a in same_script if _safe_name(a).startswith(info.name)]
        if len(same_script) == 1 or len(named) == 1:
            return (named or same_script)[0]
    names = {a: _safe_name(a) for a in avail}
    by_name: dict[str, list[str]] = {}
    for a, n in names.items():
        by_name.setdefault(n, []).append(a)
    near = family + [a for n in closest(info.name, by_name, n=4) for a in by_name[n]]
    near += [a for c in closest(info.iso639_3, {a.split("_")[0] for a in avail}, n=3) for a in avail if a.startswith(c + "_")]
    near = list(dict.fromkeys(near))
    if near:
        hint = f" Closest: {', '.join(f'{a} ({names[a]})' for a in near[:6])}."
    elif len(avail) <= 12:
        hint = f" It has: {', '.join(avail)}."
    else:
        hint = " List them with `neuron-atlas languages MODEL`."
    raise UnknownLanguageError(
        f"{tag!r} ({asked.tag}, {asked.name}) is not among the {len(avail)} languages of {context}.{hint}"
    )


def _macro(alpha3: str) -> str:
    """The macrolanguage an ISO 639-3 code belongs to, as an alpha-3 code ('zlm' -> 'msa')."""
    two = _ALPHA2.get(alpha3)
    macro = MACROLANGUAGES.get(two or alpha3)
    return LANGUAGE_ALPHA3.get(macro, macro) if macro else alpha3


def macrolanguage(alpha3: str) -> str | None:
    """The ISO 639-3 macrolanguage an individual language belongs to ('zlm' -> 'msa'), or None if it has none."""
    macro = _macro(alpha3)
    return macro if macro != alpha3 else None


@lru_cache(maxsize=256)
def aliases(tag: str) -> list[str]:
    """Other spellings that name the canonical ``tag``, for search boxes: its ISO 639-1 and 639-3 codes, its English
    name and its own name, and the codes and names ``data/language_tags.csv`` folds into it ('fil', 'Filipino' for
    ``tgl_Latn``). Each resolves back to ``tag``."""
    info = parse(tag)
    codes = {info.iso639_3, _ALPHA2.get(info.iso639_3, "")} | {code for (code, script), kept in _canonical_codes().items()
                                                               if kept == info.iso639_3 and script in ("", info.script)}
    names = set()
    for code in codes - {""}:
        language = langcodes.Language.get(code, normalize=False)
        names |= {language.language_name("en"), language.autonym()}
    out = sorted({x for x in codes | names if x and not x.startswith("Unknown") and x != info.name})
    return [x for x in out if _resolves_to(x, tag)]


def _resolves_to(text: str, tag: str) -> bool:
    try:
        return parse(text).iso639_3 == parse(tag).iso639_3
    except (InvalidParameterError, UnknownLanguageError):  # an unknown autonym ('… [tgl]'), a name of another sense
        return False


def script_name(code: str) -> str:
    """English name of an ISO 15924 script code ('Latn' -> 'Latin'; the code itself if unknown)."""
    name = langcodes.Language.get(f"und-{code}").script_name("en")
    if not name or name.startswith("Unknown"):
        return code
    return f"Han ({name})" if code in ("Hans", "Hant") else name  # langcodes names them 'Simplified', 'Traditional'


def _safe_name(tag: str) -> str:
    try:
        return parse(tag).name
    except UnknownLanguageError:
        return tag


def parse_pair(pair: str | Sequence[str]) -> tuple[str, str]:
    """('sw', 'en') from 'sw-en', 'swa_Latn-eng_Latn' or a 2-sequence; each side must be a language."""
    if not isinstance(pair, str):
        if len(pair) != 2:
            raise InvalidParameterError(f"a language pair has two languages (source, target), got {pair!r}")
        return str(pair[0]), str(pair[1])
    for i, ch in enumerate(pair):
        if ch == "-":
            src, tgt = pair[:i], pair[i + 1:]
            try:
                parse(src), parse(tgt)
            except UnknownLanguageError:
                continue
            return src, tgt
    raise InvalidParameterError(f"{pair!r} is not a language pair; write it 'source-target', e.g. 'sw-en'")
