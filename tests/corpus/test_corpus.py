"""Corpora: UDHR tags and text on the real pinned tarball, download integrity, local files, HF-layout folders."""
from __future__ import annotations

import hashlib
import html
import json
import random
import re
import shutil
import sys
import tarfile
import types
import unicodedata
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neuron_atlas.languages import tags as langs
from neuron_atlas.corpus import (
    UDHR, CorpusError, HFCorpus, LocalCorpus, dominant_script, open_corpus, script_mismatch, split_by_min_chars,
)
from neuron_atlas.corpus import udhr as udhr_module
from neuron_atlas.corpus.download import cached_download
from neuron_atlas.corpus.hf import _patterns
from neuron_atlas.errors import UnknownLanguageError


@pytest.fixture(scope="module")
def udhr() -> UDHR:
    corpus = UDHR()  # the real tarball, downloaded once into the user cache and verified
    corpus.declarations
    return corpus


# ---------------------------------------------------------------- UDHR: tags


def test_udhr_has_every_translation_and_skips_und(udhr):
    decls = udhr.declarations
    assert len(decls) == 532
    assert all((d.tag is None) == (d.iso6393 == "und") for d in decls)
    assert len(udhr.languages()) == len({d.tag for d in decls if d.tag}) > 450
    assert udhr.languages() == sorted(udhr.languages())
    assert all(langs.canonical(t) == t for t in udhr.languages())


def test_udhr_tags_keep_scripts_apart(udhr):
    tags = set(udhr.languages())
    assert {"tgl_Latn", "tgl_Tglg", "srp_Cyrl", "srp_Latn", "cmn_Hans", "cmn_Hant", "uzn_Latn", "uzn_Cyrl"} <= tags
    assert udhr.describe("srp_Cyrl")["code"] == "srp_cyrl" and udhr.describe("srp_Latn")["code"] == "srp_latn"
    assert udhr.describe("cmn_Hant")["code"] == "cmn_hant"
    assert list(udhr.texts("srp_Cyrl")) != list(udhr.texts("srp_Latn"))


@pytest.mark.parametrize(("spelling", "tag"), [
    ("tl", "tgl_Latn"), ("Tagalog", "tgl_Latn"), ("tgl_Latn", "tgl_Latn"), ("zh", "cmn_Hans"), ("zh-Hant", "cmn_Hant"),
    ("sr", "srp_Cyrl"), ("sr-Latn", "srp_Latn"), ("sw", "swh_Latn"), ("ar", "arb_Arab"), ("ja", "jpn_Jpan"),
])
def test_udhr_resolves_any_spelling(udhr, spelling, tag):
    assert udhr.resolve(spelling) == tag
    assert udhr.describe(spelling)["lang"] == tag


def test_udhr_unknown_language_names_the_closest(udhr):
    with pytest.raises(UnknownLanguageError, match="not among the .* languages of the corpus 'udhr'.*Closest"):
        udhr.resolve("Klingon")


def test_udhr_script_of_every_tag_matches_its_text(udhr):
    """Independent check: count letters by Unicode block for a few scripts; all tags by the name-prefix check."""
    blocks = {"Cyrl": [(0x0400, 0x052F)], "Arab": [(0x0600, 0x06FF)], "Deva": [(0x0900, 0x097F)],
              "Latn": [(0x0041, 0x02AF), (0x1E00, 0x1EFF), (0xA720, 0xA7FF)]}  # basic to IPA, extended additional/D
    for tag in udhr.languages():
        text = "\n".join(udhr.texts(tag))
        script = tag.split("_")[1]
        assert script_mismatch(text, script) < 0.05, tag
        if script in blocks:
            letters = {c: n for c, n in Counter(text).items() if c.isalpha()}
            inside = sum(n for c, n in letters.items() if any(lo <= ord(c) <= hi for lo, hi in blocks[script]))
            assert inside / sum(letters.values()) > 0.9, tag


def test_udhr_fixes_guessed_scripts_from_the_text(udhr):
    # langcodes has no script for Altai or Evenki and guesses Latn; the texts are Cyrillic
    assert {"kjh_Cyrl", "evn_Cyrl"} <= set(udhr.languages())
    assert udhr_module.udhr_tag("kjh", "kjh", "Алтай тил") == "kjh_Cyrl"
    assert udhr_module.udhr_tag("kjh", "kjh", "") == "kjh_Latn"  # no text: the guess stands
    assert udhr_module.udhr_tag("und", "und", "text") is None


def test_udhr_keeps_one_text_per_tag_by_the_documented_rule(udhr):
    by_tag: dict[str, list] = {}
    for d in udhr.declarations:
        if d.tag:
            by_tag.setdefault(d.tag, []).append(d)
    for tag, group in by_tag.items():
        info = udhr.describe(tag)
        kept = next(d for d in group if d.code == info["code"])
        assert sorted(info["alternatives"]) == sorted(d.code for d in group if d is not kept)
        assert list(udhr.texts(tag)) == list(kept.sections)
        for other in group:  # nothing else ranks above the kept one
            if other is not kept and kept.code not in udhr_module._PREFERRED:
                assert (other.is_plain, other.stage, other.n_chars) <= (kept.is_plain, kept.stage, kept.n_chars)
    assert udhr.describe("zh")["code"] == "cmn_hans" and len(udhr.describe("zh")["alternatives"]) == 5
    assert udhr.describe("spa_Latn")["code"] == "spa" and udhr.describe("spa_Latn")["alternatives"] == ["042"]
    assert udhr.describe("ell_Grek")["code"] == "ell_monotonic"


# ---------------------------------------------------------------- UDHR: text


def _reference_text(page: str) -> str:
    """Every non-space character of the page body, by regex: tags dropped, entities decoded."""
    body = page[page.index("<body>") + 6: page.index("</body>")]
    return "".join(c for c in html.unescape(re.sub(r"<[^>]*>", " ", body)) if not c.isspace())


def test_udhr_text_is_the_page_text_without_markup(udhr):
    with tarfile.open(udhr.tarball) as tar:
        pages = {m.name.split("/")[-1][:-5]: tar.extractfile(m).read().decode()
                 for m in tar.getmembers() if m.name.startswith("package/declaration/")}
    markup = re.compile(r"</?(p|li|ol|h[1-6]|article|header|body)\b|&#x?[0-9a-f]+;|&amp;", re.I)
    for d in udhr.declarations:
        text = "\n".join(d.sections)
        assert "".join(c for c in text if not c.isspace()) == _reference_text(pages[d.code]), d.code
        assert not markup.search(text), d.code
        assert all(s == s.strip() and "\n\n" not in s and "  " not in s for s in d.sections), d.code
    tl = list(udhr.texts("tl"))
    assert tl[0] == "PANDAIGDIG NA PAGPAPAHAYAG NG MGA KARAPATAN NG TAO"
    assert tl[2].startswith("Artikulo 1\nAng lahat ng tao'y isinilang na malaya")
    bambara = next(d for d in udhr.declarations if d.code == "bam")  # its page has '&#x26;1'
    assert any("&1" in s for s in bambara.sections)


def test_udhr_line_wraps_join_without_spaces_in_chinese():
    assert udhr_module._join_lines("\n  本宣言的任何条文\n  破坏本宣言\n") == "本宣言的任何条文破坏本宣言"
    assert udhr_module._join_lines("\n  Juu nunkanam\n  nuka iniuiti  mash\n") == "Juu nunkanam nuka iniuiti mash"


def test_udhr_describe_and_min_chars(udhr):
    info = udhr.describe("tl")
    assert info["corpus"] == "udhr" and info["version"] == "6.0.0" and info["sha256"] == udhr_module.SHA256
    assert info["file"] == "package/declaration/tgl.html" and info["name"] == "Tagalog"
    assert info["n_chars"] == sum(len(t) for t in udhr.texts("tl")) == udhr.n_chars("tl")
    assert udhr.n_chars("tl", stop_at=100) < info["n_chars"]
    kept, short = split_by_min_chars(udhr, ["tl", "tzm_Tfng", "sr-Latn"], 1000)
    assert kept == ["tgl_Latn", "srp_Latn"]
    assert short == {"tzm_Tfng": udhr.describe("tzm_Tfng")["n_chars"]} and short["tzm_Tfng"] < 1000


# ---------------------------------------------------------------- UDHR: download integrity


def _no_partial_files(folder: Path) -> bool:
    return not folder.exists() or not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_download_with_wrong_checksum_is_an_error_and_caches_nothing(tmp_path):
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"not the udhr tarball")
    corpus = UDHR(cache=tmp_path / "cache", url=bad.as_uri())
    with pytest.raises(CorpusError, match=re.escape(bad.as_uri()) + ".*" + udhr_module.SHA256):
        corpus.declarations
    assert not corpus.tarball.exists() and _no_partial_files(corpus.tarball.parent)


def test_unreachable_download_is_an_error_and_caches_nothing(tmp_path):
    corpus = UDHR(cache=tmp_path / "cache", url=(tmp_path / "missing.tgz").as_uri())
    with pytest.raises(CorpusError, match="could not download .*missing.tgz.*expected sha256"):
        corpus.declarations
    assert not corpus.tarball.exists() and _no_partial_files(corpus.tarball.parent)


def test_corrupt_cached_file_is_replaced_or_removed(tmp_path, udhr):
    good = tmp_path / "good.tgz"
    shutil.copy(udhr.tarball, good)
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(good.read_bytes()[:-100])  # truncated
    cache = tmp_path / "cache"
    corrupt = UDHR(cache=cache, url=bad.as_uri())
    corrupt.tarball.parent.mkdir(parents=True)
    corrupt.tarball.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="cached file"), pytest.raises(CorpusError, match="corrupt"):
        corrupt.declarations
    assert not corrupt.tarball.exists() and _no_partial_files(corrupt.tarball.parent)  # consistent: nothing cached

    corrupt.tarball.write_bytes(b"garbage again")
    with pytest.warns(UserWarning, match="cached file"):  # the same file from a good source heals the cache
        assert cached_download(good.as_uri(), udhr_module.SHA256, corrupt.tarball) == corrupt.tarball
    assert hashlib.sha256(corrupt.tarball.read_bytes()).hexdigest() == udhr_module.SHA256
    assert cached_download(bad.as_uri(), udhr_module.SHA256, corrupt.tarball) == corrupt.tarball  # valid: not fetched
    assert _no_partial_files(corrupt.tarball.parent)


# ---------------------------------------------------------------- script check


def test_script_mismatch_against_a_counted_reference():
    rng = random.Random(0)
    latin, cyrillic = "abcdefghijklmnopqrstuvwxyzÀéßŋ", "абвгдежзийклмнопрстуфхцчшщыэюяЁ"
    neutral = " 0123456789.,;:!?-'\"()\nʼʻ\u0301"  # digits, punctuation, modifier letters, combining marks
    for _ in range(200):
        n_lat, n_cyr, n_neu = rng.randrange(0, 50), rng.randrange(0, 50), rng.randrange(0, 50)
        chars = [rng.choice(latin) for _ in range(n_lat)] + [rng.choice(cyrillic) for _ in range(n_cyr)]
        chars += [rng.choice(neutral) for _ in range(n_neu)]
        rng.shuffle(chars)
        text = "".join(chars)
        total = n_lat + n_cyr
        assert script_mismatch(text, "Latn") == pytest.approx(n_cyr / total if total else 0.0)
        assert script_mismatch(text, "Cyrl") == pytest.approx(n_lat / total if total else 0.0)
        if n_lat != n_cyr:
            assert dominant_script(text) == ("Latn" if n_lat > n_cyr else "Cyrl")


def test_script_check_knows_multi_script_writing_systems():
    assert script_mismatch("日本語のテキスト", "Jpan") == 0.0
    assert script_mismatch("日本語のテキスト", "Hans") == pytest.approx(5 / 8)  # kana are not Han
    assert script_mismatch("한국어 漢字", "Kore") == 0.0
    assert script_mismatch("ᐃᓄᒃᑎᑐᑦ", "Cans") == 0.0 and script_mismatch("বাংলা", "Beng") == 0.0
    assert dominant_script("Привет, мир") == "Cyrl" and dominant_script("123 !") is None
    with pytest.raises(ValueError, match="not an ISO 15924 script"):
        script_mismatch("abc", "Qqqq")


def test_unicode_names_classify_letters_like_unicodedata_script_blocks():
    """Every letter of the Cyrillic block and of basic Greek is classified into its own script, nothing else."""
    for script, (lo, hi) in {"Cyrl": (0x0400, 0x04FF), "Grek": (0x0386, 0x03CE)}.items():
        letters = [chr(i) for i in range(lo, hi + 1)
                   if unicodedata.category(chr(i)).startswith("L") and "MODIFIER" not in unicodedata.name(chr(i), "")]
        assert script_mismatch("".join(letters), script) == 0.0
        assert script_mismatch("".join(letters), "Latn") == 1.0


# ---------------------------------------------------------------- local files


@pytest.fixture
def local_folder(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "tgl_Latn.txt").write_text("Unang talata,\nikalawang linya.\n\n  \nIkalawang talata.\n\n\n", encoding="utf-8")
    (folder / "sw.jsonl").write_text(
        "\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(["Habari ya dunia.", "", "Kitabu kizuri."]))
        + "\n\n", encoding="utf-8")
    pq.write_table(pa.table({"text": ["Hello world.", None, "Second doc."], "n": [1, 2, 3]}), folder / "en.parquet")
    (folder / "README.md").write_text("not a language file")
    return folder


def test_local_folder_reads_all_three_formats(local_folder):
    corpus = open_corpus(local_folder)
    assert isinstance(corpus, LocalCorpus)
    assert corpus.languages() == ["eng_Latn", "swh_Latn", "tgl_Latn"]
    assert list(corpus.texts("Tagalog")) == ["Unang talata,\nikalawang linya.", "Ikalawang talata."]
    assert list(corpus.texts("sw")) == ["Habari ya dunia.", "Kitabu kizuri."]
    assert list(corpus.texts("eng_Latn")) == ["Hello world.", "Second doc."]
    info = corpus.describe("en")
    assert info["file"].endswith("en.parquet") and info["n_chars"] == len("Hello world.Second doc.")
    assert info["sha256"] == hashlib.sha256((local_folder / "en.parquet").read_bytes()).hexdigest()
    with pytest.raises(UnknownLanguageError, match="not among the 3 languages"):
        corpus.texts("fr")


def test_local_txt_without_blank_lines_is_one_text_a_line(tmp_path):
    path = tmp_path / "sr-Latn.txt"
    path.write_text("prva linija\r\n\r\ndruga\r\n".replace("\r\n\r\n", "\r\n") + "  treća  \n", encoding="utf-8")
    corpus = open_corpus(path)
    assert corpus.languages() == ["srp_Latn"]
    assert list(corpus.texts("sr-Latn")) == ["prva linija", "druga", "treća"]


def test_local_version_follows_the_content(local_folder):
    before = LocalCorpus(local_folder).version
    assert before == LocalCorpus(local_folder).version and before.startswith("sha256:")
    (local_folder / "sw.jsonl").write_text(json.dumps({"text": "Mpya."}) + "\n")
    assert LocalCorpus(local_folder).version != before


def test_local_wrong_stem_suggests_language_names(tmp_path):
    (tmp_path / "swahli_v2.txt").write_text("x")
    with pytest.raises(CorpusError, match=r"'swahli_v2' is not a language\. Did you mean: Swahili \(sw\)"):
        open_corpus(tmp_path)


def test_local_errors_name_the_file_and_the_fix(tmp_path):
    (tmp_path / "sw.jsonl").write_text(json.dumps({"content": "x"}) + "\n")
    with pytest.raises(CorpusError, match=r"sw.jsonl:1: no 'text' field \(found \['content'\]\); pass text_field="):
        list(open_corpus(tmp_path).texts("sw"))
    assert list(open_corpus(tmp_path, text_field="content").texts("sw")) == ["x"]
    pq.write_table(pa.table({"txt": ["a"]}), tmp_path / "sw.parquet")
    with pytest.raises(CorpusError, match="sw.jsonl and sw.parquet are both swh_Latn"):
        open_corpus(tmp_path)
    (tmp_path / "sw.jsonl").unlink()
    with pytest.raises(CorpusError, match=r"no column 'text' \(columns: \['txt'\]\)\. Did you mean: txt\?"):
        list(open_corpus(tmp_path).texts("sw"))
    (tmp_path / "other").mkdir()
    with pytest.raises(CorpusError, match="no .txt/.jsonl/.parquet files"):
        open_corpus(tmp_path / "other")
    with pytest.raises(CorpusError, match="is not a corpus: use 'udhr'"):
        open_corpus(tmp_path / "nowhere")


# ---------------------------------------------------------------- Hugging Face layouts on local folders


def _write(path: Path, texts: list[str | None], column: str = "text") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({column: texts, "id": list(range(len(texts)))}), path, row_group_size=2)


def test_hf_folder_per_config(tmp_path):
    """CulturaX-like: <config>/*.parquet, config names are language codes; non-language folders are skipped."""
    _write(tmp_path / "tl" / "tl_part_00000.parquet", ["isa", "dalawa", None, "tatlo"])
    _write(tmp_path / "tl" / "tl_part_00001.parquet", ["apat"])
    _write(tmp_path / "sw" / "sw_part_00000.parquet", ["moja"])
    _write(tmp_path / "zzqq" / "x.parquet", ["?"])
    (tmp_path / "notes.parquet").write_bytes(b"")  # top-level files are no config
    corpus = open_corpus(f"hf:{tmp_path}")
    assert isinstance(corpus, HFCorpus) and corpus.version == "local"
    assert corpus.languages() == ["swh_Latn", "tgl_Latn"]
    assert list(corpus.texts("Tagalog")) == ["isa", "dalawa", "tatlo", "apat"]
    assert corpus.describe("tl")["config"] == "tl" and corpus.n_chars("sw") == 4


def test_hf_card_configs_flores_layout(tmp_path):
    """FLORES+-like: the card's configs list data files per split."""
    card = {"configs": [
        {"config_name": c, "data_files": [{"split": s, "path": f"{s}/{c}.parquet"} for s in ("dev", "devtest")]}
        for c in ("tgl_Latn", "cmn_Hant")]}
    (tmp_path / "README.md").write_text("---\n" + json.dumps(card) + "\n---\n# FLORES+\n")
    for c in ("tgl_Latn", "cmn_Hant", "fra_Latn"):  # fra_Latn has files but no config: not a language here
        _write(tmp_path / "dev" / f"{c}.parquet", [f"{c} dev 1", f"{c} dev 2"])
        _write(tmp_path / "devtest" / f"{c}.parquet", [f"{c} devtest"])
    corpus = HFCorpus(str(tmp_path), layout="openlanguagedata/flores_plus")
    assert corpus.languages() == ["cmn_Hant", "tgl_Latn"]
    assert list(corpus.texts("zh-Hant")) == ["cmn_Hant dev 1", "cmn_Hant dev 2", "cmn_Hant devtest"]


def test_hf_wikipedia_layout_picks_the_dump(tmp_path):
    for date in ("20231101", "20240301"):
        for code in ("tl", "als", "simple"):
            _write(tmp_path / f"{date}.{code}" / "train-00000-of-00001.parquet", [f"{date} {code}"])
    corpus = HFCorpus(str(tmp_path), layout="wikimedia/wikipedia")
    assert corpus.languages() == ["gsw_Latn", "tgl_Latn"]  # 'als' is Alemannic on Wikipedia; 'simple' is skipped
    assert list(corpus.texts("tl")) == ["20231101 tl"]
    newer = open_corpus(f"hf:{tmp_path}:20240301.*", layout="wikimedia/wikipedia")
    assert list(newer.texts("tl")) == ["20240301 tl"]
    both = open_corpus(f"hf:{tmp_path}:*", layout="wikimedia/wikipedia")
    assert both.describe("tl")["config"] == "20240301.tl" and both.describe("tl")["alternatives"] == ["20231101.tl"]


def test_hf_errors(tmp_path):
    _write(tmp_path / "tgl-Latn" / "a.parquet", ["x"], column="content")
    corpus = HFCorpus(str(tmp_path), layout="cis-lmu/GlotCC-V1")
    assert corpus.languages() == ["tgl_Latn"]
    with pytest.raises(CorpusError, match=r"no column 'text' \(columns: \['content', 'id'\]\).*Did you mean: content"):
        list(corpus.texts("tl"))
    assert list(HFCorpus(str(tmp_path), text_column="content").texts("tl")) == ["x"]
    with pytest.raises(CorpusError, match="unknown layout 'nope'; known layouts: openlanguagedata/flores_plus"):
        HFCorpus(str(tmp_path), layout="nope")
    with pytest.raises(CorpusError, match="no per-language configs matching 'zz'"):
        HFCorpus(str(tmp_path), config_pattern="zz").languages()


def test_card_data_files_forms():
    assert _patterns("a/*.parquet") == ["a/*.parquet"]
    assert _patterns(["a/**/*.parquet", {"split": "train", "path": ["b/x.parquet", "b/y.parquet"]}]) == [
        "a/*.parquet", "b/x.parquet", "b/y.parquet"]
    assert _patterns({"train": "t/*", "test": ["s/*"]}) == ["t/*", "s/*"]
    assert _patterns(None) == []


def test_hf_streams_through_datasets_when_it_is_installed(monkeypatch):
    """With `datasets` importable, a Hub id is listed and streamed through it (a stub stands in: no network here)."""
    calls = []

    def load_dataset(repo, config, revision=None, streaming=False):
        calls.append((repo, config, revision, streaming))
        return {"train": [{"text": f"{config} b"}, {"text": ""}], "dev": [{"text": f"{config} a"}]}

    stub = types.ModuleType("datasets")
    stub.get_dataset_config_names = lambda repo, revision=None: ["20231101.tl", "20231101.sw", "20231101.simple"]
    stub.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", stub)
    corpus = open_corpus("hf:wikimedia/wikipedia", revision="r1")
    assert corpus.languages() == ["swh_Latn", "tgl_Latn"] and corpus.version == "r1"
    assert list(corpus.texts("tl")) == ["20231101.tl a", "20231101.tl b"]  # splits in name order
    assert calls == [("wikimedia/wikipedia", "20231101.tl", "r1", True)]
    with pytest.raises(CorpusError, match=r"config '20231101.sw' has no column 'body' \(columns: \['text'\]\)"):
        list(HFCorpus("wikimedia/wikipedia", text_column="body").texts("sw"))


def test_hf_fineweb2_layout_reads_the_kept_documents_only_as_far_as_needed(tmp_path):
    """FineWeb-2-like: card configs 'tgl_Latn' and 'tgl_Latn_removed' (the filtered-out documents) over
    data/<config>/<split>/*.parquet; only the kept documents are read, lazily, in a fixed order."""
    configs = ["tgl_Latn", "tgl_Latn_removed", "swh_Latn"]
    card = {"configs": [{"config_name": c, "data_files": [{"split": s, "path": f"data/{c}/{s}/*"}
                                                          for s in ("train", "test")]} for c in configs]}
    (tmp_path / "README.md").write_text("---\n" + json.dumps(card) + "\n---\n# FineWeb-2\n")
    for c in configs:
        for s in ("train", "test"):
            for part in range(2):
                _write(tmp_path / "data" / c / s / f"00{part}_00000.parquet", [f"{c} {s} {part} {i}" for i in range(50)])
    corpus = HFCorpus(str(tmp_path), layout="HuggingFaceFW/fineweb-2")
    assert corpus.languages() == ["swh_Latn", "tgl_Latn"]
    assert corpus.describe("tl")["config"] == "tgl_Latn" and corpus.describe("tl")["alternatives"] == []
    texts = corpus.texts("tl")
    first = [next(texts) for _ in range(3)]
    assert first == ["tgl_Latn test 0 0", "tgl_Latn test 0 1", "tgl_Latn test 0 2"]
    assert first + list(texts) == list(HFCorpus(str(tmp_path), layout="HuggingFaceFW/fineweb-2").texts("tl"))
    assert all("removed" not in t for t in HFCorpus(str(tmp_path), layout="HuggingFaceFW/fineweb-2").texts("tl"))


def test_local_version_does_not_read_large_files_in_full(tmp_path, monkeypatch):
    """The version of a corpus of any size comes from sizes and file ends; a change at either end shows."""
    import builtins

    big = tmp_path / "tgl_Latn.txt"
    big.write_text("Isang pangungusap.\n" * 400_000)  # ~7.6 MB
    read = []
    real_open = builtins.open

    def counting_open(file, mode="r", *a, **kw):
        f = real_open(file, mode, *a, **kw)
        if "b" in mode and Path(file) == big:
            orig = f.read
            f.read = lambda n=-1: (lambda d: read.append(len(d)) or d)(orig(n))
        return f

    monkeypatch.setattr(builtins, "open", counting_open)
    before = LocalCorpus(tmp_path).version
    assert read and sum(read) <= 2 << 20
    monkeypatch.undo()
    with open(big, "a") as f:
        f.write("Bago.\n")
    assert LocalCorpus(tmp_path).version != before
