"""Language tags: every accepted spelling maps to one canonical, script-keeping tag."""
import pytest

from neuron_atlas import langs
from neuron_atlas.errors import UnknownLanguageError


@pytest.mark.parametrize("spelling,tag", [
    ("tl", "tgl_Latn"), ("tgl", "tgl_Latn"), ("TGL_latn", "tgl_Latn"), ("tgl-Latn", "tgl_Latn"), ("Tagalog", "tgl_Latn"),
    ("tagalog", "tgl_Latn"), ("zh-Hant", "zho_Hant"), ("zh", "zho_Hans"), ("ZHO_HANT", "zho_Hant"), ("sr-Latn", "srp_Latn"),
    ("sr", "srp_Cyrl"), ("srp_Cyrl", "srp_Cyrl"), ("en", "eng_Latn"), ("English", "eng_Latn"), ("rw", "kin_Latn"),
    ("ja", "jpn_Jpan"), ("ar", "ara_Arab"), ("bo", "bod_Tibt"), ("Swahili", "swa_Latn"),
])
def test_canonical(spelling, tag):
    assert langs.canonical(spelling) == tag


def test_names_are_english():
    assert langs.parse("tgl").name == "Tagalog"
    assert langs.parse("srp_Latn").name == "Serbian"


@pytest.mark.parametrize("bad", ["", "xx", "Qwertyish", "123", "und"])
def test_unknown(bad):
    with pytest.raises(UnknownLanguageError, match="not a language tag"):
        langs.parse(bad)


AVAILABLE = ["tgl_Latn", "srp_Latn", "zho_Hans", "eng_Latn", "zlm_Latn", "ind_Latn", "swh_Latn"]


@pytest.mark.parametrize("spelling,tag", [
    ("fil", "tgl_Latn"), ("cmn", "zho_Hans"), ("ms", "zlm_Latn"), ("Malay", "zlm_Latn"), ("sw", "swh_Latn"),
    ("sr-Latn", "srp_Latn"),
])
def test_resolve_aliases(spelling, tag):
    assert langs.resolve(spelling, AVAILABLE) == tag


@pytest.mark.parametrize("spelling,hint", [
    ("sr", "srp_Latn"),  # Cyrillic Serbian is not Latin Serbian, but it is the closest
    ("zh-Hant", "zho_Hans"),
    ("yue", "zho_Hans"),  # Cantonese is not Mandarin
    ("Indonesain", "ind_Latn"),  # typo
])
def test_resolve_refuses_other_script_or_language_and_suggests(spelling, hint):
    with pytest.raises(UnknownLanguageError, match=hint):
        langs.resolve(spelling, AVAILABLE)
