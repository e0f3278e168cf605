"""Language tags: every accepted spelling maps to one canonical, script-keeping tag."""
import pytest

from neuron_atlas.languages import tags as langs
from neuron_atlas.errors import UnknownLanguageError


@pytest.mark.parametrize("spelling,tag", [
    ("tl", "tgl_Latn"), ("tgl", "tgl_Latn"), ("TGL_latn", "tgl_Latn"), ("tgl-Latn", "tgl_Latn"), ("Tagalog", "tgl_Latn"),
    ("tagalog", "tgl_Latn"), ("zh-Hant", "cmn_Hant"), ("zh", "cmn_Hans"), ("ZHO_HANT", "cmn_Hant"), ("sr-Latn", "srp_Latn"),
    ("sr", "srp_Cyrl"), ("srp_Cyrl", "srp_Cyrl"), ("en", "eng_Latn"), ("English", "eng_Latn"), ("rw", "kin_Latn"),
    ("ja", "jpn_Jpan"), ("ar", "arb_Arab"), ("bo", "bod_Tibt"), ("Swahili", "swh_Latn"),
    ("sw", "swh_Latn"), ("swa", "swh_Latn"), ("et", "ekk_Latn"), ("lv", "lvs_Latn"), ("ne", "npi_Deva"), ("ms", "zlm_Latn"),
    ("zsm", "zlm_Latn"), ("fil", "tgl_Latn"), ("ku-Arab", "ckb_Arab"), ("ku", "kmr_Latn"), ("no", "nob_Latn"), ("que", "que_Latn"),
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
    ("Serbian Latin", "srp_Latn"), ("Serbian (Latin)", "srp_Latn"), ("Uzbek (Cyrillic)", "uzn_Cyrl"),
    ("Chinese Traditional", "cmn_Hant"), ("Traditional Chinese", "cmn_Hant"), ("Dari", "prs_Arab"), ("prs", "prs_Arab"),
    ("Egyptian Arabic", "arz_Arab"), ("Arabic", "arb_Arab"), ("Latin", "lat_Latn"), ("Northern Sami", "sme_Latn"),
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


def test_one_tag_per_language_table():
    """Every row of data/language_tags.csv maps a code to an individual language that maps to itself, and the embedded
    atlas (built on UDHR) stores every language under its canonical tag already."""
    import csv

    import pyarrow.parquet as pq

    with langs.TAG_TABLE.open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["why"] for r in rows)
    for r in rows:
        tag = f"{r['code']}_{r['script'] or 'Latn'}"
        assert langs.canonical(tag) == f"{r['canonical']}_{r['script'] or 'Latn'}"
        assert langs.canonical(langs.canonical(tag)) == langs.canonical(tag)  # idempotent
    embedded = pq.read_table(langs.TAG_TABLE.parent / "atlas" / "languages.parquet").column("lang").to_pylist()
    assert langs.noncanonical(embedded) == {}
    assert langs.noncanonical(["swa_Latn", "swh_Latn", "est_Latn", "zho_Hant"]) == {
        "swa_Latn": "swh_Latn", "est_Latn": "ekk_Latn", "zho_Hant": "cmn_Hant"}


@pytest.mark.parametrize("spelling", ["sw", "swa", "swh", "Swahili", "swa_Latn", "sw-Latn"])
def test_every_spelling_of_swahili_finds_the_one_tag_old_or_new(spelling):
    assert langs.resolve(spelling, ["eng_Latn", "swh_Latn"]) == "swh_Latn"
    assert langs.resolve(spelling, ["eng_Latn", "swa_Latn"]) == "swa_Latn"  # an atlas written before the table


def test_macrolanguage_and_script_names():
    from neuron_atlas.languages.tags import macrolanguage, script_name

    assert (macrolanguage("zlm"), macrolanguage("arb"), macrolanguage("tgl")) == ("msa", "ara", None)
    assert [script_name(c) for c in ("Latn", "Cyrl", "Hans", "Hant", "Zzzq")] == [
        "Latin", "Cyrillic", "Han (Simplified)", "Han (Traditional)", "Zzzq"]


@pytest.mark.parametrize("tag", ["tgl_Latn", "zlm_Latn", "srp_Cyrl", "pes_Arab", "swh_Latn", "cmn_Hans"])
def test_every_alias_resolves_back_to_its_language(tag):
    """The other names a search box offers for a language are names the API takes for it."""
    names = langs.aliases(tag)
    assert names and all(langs.resolve(n, [tag, "eng_Latn"]) == tag for n in names)
    if tag == "tgl_Latn":
        assert "Filipino" in names and "tl" in names
