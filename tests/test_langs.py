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


@pytest.mark.parametrize("name, tag", [
    ("Serbian Latin", "srp_Latn"), ("Serbian (Latin)", "srp_Latn"), ("Uzbek (Cyrillic)", "uzb_Cyrl"),
    ("Chinese Traditional", "zho_Hant"), ("Traditional Chinese", "zho_Hant"), ("Dari", "prs_Arab"), ("prs", "prs_Arab"),
    ("Egyptian Arabic", "arz_Arab"), ("Arabic", "ara_Arab"), ("Latin", "lat_Latn"), ("Northern Sami", "sme_Latn"),
])
def test_script_words_and_regional_names(name, tag):
    assert langs.canonical(name) == tag


def test_dari_is_labelled_dari_and_resolves_to_prs():
    assert langs.parse("prs").name == "Dari"
    assert langs.resolve("Dari", ["pes_Arab", "prs_Arab"]) == "prs_Arab"
    assert langs.resolve("Uzbek (Cyrillic)", ["uzn_Latn", "uzn_Cyrl"]) == "uzn_Cyrl"
    assert langs.resolve("Serbian Latin", ["srp_Cyrl", "srp_Latn"]) == "srp_Latn"


@pytest.mark.parametrize("close, suggestion", [("Tagalogg", "Tagalog"), ("Hindu", "Hindi"), ("Java", "Javanese")])
def test_close_names_raise_with_the_suggestion(close, suggestion):
    with pytest.raises(UnknownLanguageError, match=f"did you mean '{suggestion}'"):
        langs.parse(close)
    with pytest.raises(UnknownLanguageError, match=f"did you mean '{suggestion}'"):
        langs.resolve(close, AVAILABLE + ["hin_Deva", "jav_Latn"])


@pytest.mark.parametrize("exact", ["Tagalog", "tagalog", "Filipino", "Français", "Deutsch", "Persian", "Malay"])
def test_exact_names_pass_silently(exact, recwarn):
    langs.parse(exact)
    assert not recwarn.list


def test_sami_suggests_the_sami_languages_first():
    with pytest.raises(UnknownLanguageError) as info:
        langs.resolve("Sami", ["ami_Latn", "tam_Taml", "sme_Latn", "smn_Latn", "sms_Latn", "eng_Latn"])
    hint = str(info.value).split("Closest in the atlas: ")[1]
    assert [h.split(" ")[0] for h in hint.split(", ")[:3]] == ["sme_Latn", "smn_Latn", "sms_Latn"]


def test_macrolanguage_and_script_names():
    from neuron_atlas.langs import macrolanguage, script_name

    assert (macrolanguage("zlm"), macrolanguage("arb"), macrolanguage("tgl")) == ("msa", "ara", None)
    assert [script_name(c) for c in ("Latn", "Cyrl", "Hans", "Hant", "Zzzq")] == [
        "Latin", "Cyrillic", "Han (Simplified)", "Han (Traditional)", "Zzzq"]
