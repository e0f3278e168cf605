"""Data integrity: no read outside the atlas, no silent wrong answer, no lost piece unnoticed.

Each test tampers with a fresh copy of a small synthetic atlas the way the audit did and checks that the API, SQL and
`neuron-atlas verify` all name the problem (verify: exit 1, one line per problem, no traceback).
"""
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import neuron_atlas as na
from neuron_atlas.errors import AtlasWarning
from neuron_atlas.format.layout import write_parquet
from neuron_atlas.testing import make_atlas
from neuron_atlas.format.verify import verify
from neuron_atlas.format.writer import AtlasWriter

from toy_langs import SMALL_LANGS

LANGS = SMALL_LANGS


@pytest.fixture
def atlas(atlas_copy):
    return atlas_copy


def shard(root, lang="tgl_Latn", model="toy"):
    return Path(root) / "counts" / f"model={model}" / f"lang={lang}" / "counts.parquet"


def lape_file(root, model="toy", name="lape"):
    return Path(root) / "lape" / f"model={model}" / f"{name}.parquet"


def rewrite(path, keep_meta=True, **changes):
    """Rewrite a Parquet file with columns replaced, keeping its neuron-atlas metadata (and so a valid fingerprint:
    the writer's own function, as a careless tool would)."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"neuron_atlas")
    for name, value in changes.items():
        old = (table.column(name).to_numpy(zero_copy_only=False).copy() if name in table.column_names
               else np.zeros(table.num_rows))
        new = value(old) if callable(value) else value
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, pa.array(new, table.schema.field(name).type))
        else:
            table = table.append_column(name, pa.array(new))
    write_parquet(table.replace_schema_metadata(None), path, json.loads(raw) if raw and keep_meta else None)


def sql(root, query):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = na.open(root).sql(query)
    return result, " ".join(str(w.message) for w in caught if issubclass(w.category, AtlasWarning))


def cli_verify(root):
    proc = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", "verify", str(root)],
                          check=False, capture_output=True, text=True, env={**os.environ, "COLUMNS": "400"})
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc


def assert_verify_names(root, path, words):
    problems = [str(p) for p in verify(root)]
    assert any(str(path) in p and words in p for p in problems), problems


# -- containment ------------------------------------------------------------------------------------------------
def _outside(tmp_path):
    secret = tmp_path / "outside"
    make_atlas(secret, model="toy", n_layers=3, ffn_width=32, langs=["tgl_Latn"], tokens=999, seed=9, finalize=False)
    return secret


@pytest.mark.parametrize("what", ["shard", "lang folder", "languages.parquet", "lape.parquet"])
def test_symlink_out_of_the_atlas_is_refused(atlas, tmp_path, what):
    secret = _outside(tmp_path)
    if what == "shard":
        link, target = shard(atlas), shard(secret)
    elif what == "lang folder":
        link, target = shard(atlas).parent, shard(secret).parent
    elif what == "languages.parquet":
        link, target = atlas / "languages.parquet", secret / "languages.parquet"
        pq.write_table(pq.read_table(target).append_column("secret", pa.array(["x"])), target)
    else:
        link, target = lape_file(atlas), shard(secret)
    shutil.rmtree(link) if link.is_dir() else link.unlink()
    link.symlink_to(target, target_is_directory=target.is_dir())
    with pytest.raises(na.AtlasFormatError, match="symlink leading outside the atlas") as info:
        na.open(atlas)
    assert str(link) in str(info.value)
    assert_verify_names(atlas, link, "symlink leading outside")


@pytest.mark.parametrize("kind", ["residual", "activations", "counts"])
def test_file_swapped_for_a_symlink_after_open_is_not_followed(tmp_path, kind):
    """The atlas was contained when opened; a statistics file replaced by a symlink afterwards is refused as it is
    read (steering vectors, activation means, mean_diff sets, a recomputed LAPE), never read from outside."""
    inside = make_atlas(tmp_path / "a", model="toy", n_layers=2, ffn_width=8, langs=LANGS, tokens=100, seed=1,
                        stats=True)
    outside = make_atlas(tmp_path / "out", model="toy", n_layers=2, ffn_width=8, langs=LANGS, tokens=100, seed=2,
                         stats=True)
    atlas = na.open(inside)
    target = {"residual": lambda: atlas.steering_vector("toy", "tl", layer=1),
              "activations": lambda: atlas.neurons("toy", lang="tl", method="mean_diff", size=3),
              "counts": lambda: atlas.neurons("toy", lang="tl", among=LANGS[:3])}[kind]
    name = f"{kind}/model=toy/lang=tgl_Latn/{kind}.parquet"
    os.remove(inside / name)
    os.symlink(outside / name, inside / name)
    with pytest.raises(na.AtlasFormatError, match="leads outside the atlas"):
        target()


def test_symlink_inside_the_atlas_and_hub_cache_layout_are_fine(atlas):
    extra = atlas / "copy.parquet"
    extra.symlink_to(atlas / "languages.parquet")  # inside: harmless
    na.open(atlas).neurons("toy", lang="tl")
    assert not [p for p in verify(atlas) if "symlink" in str(p)]


@pytest.mark.parametrize("parent", ["model=evil", "lang=xxx_Latn", "pair=a-b"])
def test_partition_keys_come_from_below_the_root_only(pristine, tmp_path, parent):
    root = tmp_path / parent / "atlas"
    shutil.copytree(pristine, root)
    counts, _ = sql(root, "SELECT model, lang, count(*) AS n FROM counts GROUP BY ALL ORDER BY ALL")
    assert sorted(set(counts.column("model").to_pylist())) == ["other", "toy"]
    assert set(counts.column("lang").to_pylist()) == set(LANGS)
    ranking, _ = sql(root, "SELECT * FROM ranking LIMIT 1")
    assert ranking.column_names == ["layer", "neuron", "entropy", "rank", "model"]
    same, _ = sql(pristine, "SELECT model, lang, count(*) AS n FROM counts GROUP BY ALL ORDER BY ALL")
    assert counts.equals(same)


# -- derived tables validated as readers use them ----------------------------------------------------------------
def _set(i, value):
    def change(a):
        a[i] = value
        return a
    return change


DERIVED = {  # name -> (file, column changes, words of the problem)
    "NaN p": ("lape", {"p": _set(0, np.nan)}, "NaN p"),
    "infinite entropy": ("lape", {"entropy": _set(slice(None), np.inf)}, "infinite entropy"),
    "negative entropy": ("ranking", {"entropy": lambda a: a - 5}, "entropy values below 0"),
    "NaN ranking entropy": ("ranking", {"entropy": _set(3, np.nan)}, "NaN entropy"),
    "two neurons of rank 0": ("ranking", {"rank": lambda a: np.where(a == 1, 0, a)}, "two neurons hold rank 0"),
    "ranks out of entropy order": ("ranking", {"rank": lambda a: np.where(a == 0, 1, np.where(a == 1, 0, a))},
                                   "lower entropy"),
}


@pytest.mark.parametrize("name", DERIVED)
def test_bad_derived_values_are_not_served(atlas, pristine, name):
    kind, changes, words = DERIVED[name]
    path = lape_file(atlas, name=kind)
    if name == "ranks out of entropy order":  # swap ranks 0 and 1 only if their entropies differ
        table = pq.read_table(path)
        e = dict(zip(table.column("rank").to_pylist(), table.column("entropy").to_pylist()))
        assert e[0] < e[1] - 1e-4
    rewrite(path, **changes)
    # the Python fast path does not serve it: the answer is LAPE recomputed from the shards, as on the pristine atlas
    got = na.open(atlas).neurons("toy", lang="tl").to_arrow()
    want = na.open(pristine).neurons("toy", lang="tl").to_arrow()
    assert got.select(["lang", "layer", "neuron", "rank"]).equals(want.select(["lang", "layer", "neuron", "rank"]))
    table, warned = sql(atlas, "SELECT count(*) AS n FROM lape_stored WHERE model = 'toy'")
    assert table.column("n")[0].as_py() == 0 and str(path) in warned and words in warned
    assert_verify_names(atlas, path, words)


def test_shard_with_a_clashing_p_column(atlas):
    path = shard(atlas)
    rewrite(path, p=lambda a: np.full(len(a), 6.25))
    table, warned = sql(atlas, "SELECT max(p) AS p FROM counts")
    assert table.column("p")[0].as_py() <= 1 and "clashes" in warned
    assert_verify_names(atlas, path, "clashes")


def test_shard_with_an_unknown_column(atlas):
    path = shard(atlas)
    rewrite(path, extra=lambda a: np.zeros(len(a)))
    assert "unknown column 'extra'" in sql(atlas, "SELECT 1")[1]
    assert_verify_names(atlas, path, "unknown column")


# -- footer metadata through one typed model ---------------------------------------------------------------------
def _meta(path, **changes):
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"neuron_atlas"])
    for key, value in changes.items():
        if value is KeyError:
            del meta[key]
        else:
            meta[key] = value
    write_parquet(table.replace_schema_metadata(None), path, meta)


@pytest.mark.parametrize(("field", "value"), [("stored_top_rate", "abc"), ("stored_top_rate", None),
                                              ("filter_rate", KeyError), ("languages", "eng_Latn"),
                                              ("tau_bar", float("nan")), ("tokens", {"eng_Latn": -1})])
def test_malformed_derived_metadata_is_a_named_format_error(atlas, field, value):
    path = lape_file(atlas)
    _meta(path, **{field: value})
    with pytest.raises(na.AtlasFormatError, match=f"{field}") as info:
        na.open(atlas).neurons("toy", lang="tl")
    assert str(path) in str(info.value)
    _, warned = sql(atlas, "SELECT count(*) FROM lape")
    assert str(path) in warned and field in warned
    assert_verify_names(atlas, path, field)


def test_malformed_shard_metadata(atlas):
    path = shard(atlas)
    _meta(path, tokens="many")
    assert_verify_names(atlas, path, "tokens")


@pytest.mark.parametrize("created", [None, 2**62])
def test_model_row_with_a_bad_created(atlas, created):
    path = atlas / "models" / "model=toy" / "model.parquet"
    table = pq.read_table(path)
    column = pa.array([created], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    pq.write_table(table.set_column(table.column_names.index("created"), "created", column), path)
    with pytest.raises(na.AtlasFormatError, match="'created'") as info:
        na.open(atlas).neurons("toy", lang="tl")
    assert str(path) in str(info.value)
    assert_verify_names(atlas, path, "created")


# -- content fingerprints ----------------------------------------------------------------------------------------
def test_writer_fingerprints_every_file(pristine):
    from neuron_atlas.format import fingerprint

    assert json.loads((pristine / "atlas.json").read_text())["fingerprinted"] is True
    files = sorted(pristine.rglob("*.parquet"))
    assert len(files) == 2 + 2 * 2 + 4 + 3 + 1
    for path in files:
        md = pq.read_metadata(path)
        assert fingerprint.stored(md) == fingerprint.digest(md, fingerprint.identity(path)), path


def test_stamping_changes_no_data_page(tmp_path):
    from neuron_atlas.format import fingerprint

    table = pa.table({"layer": pa.array([0, 0, 1], pa.int16()), "x": [1.5, 2.5, -0.0]})
    plain, stamped = tmp_path / "plain.parquet", tmp_path / "counts" / "model=m" / "lang=eng_Latn" / "counts.parquet"
    pq.write_table(table, plain, write_page_checksum=True)
    stamped.parent.mkdir(parents=True)
    shutil.copy(plain, stamped)
    fingerprint.stamp(stamped)
    md, body = pq.read_metadata(plain), plain.read_bytes()
    assert stamped.read_bytes()[: md.row_group(0).column(1).data_page_offset + 40] == body[: md.row_group(0).column(1).data_page_offset + 40]
    assert pq.ParquetFile(stamped, page_checksum_verification=True).read().equals(table)
    assert fingerprint.stored(pq.read_metadata(stamped)) == fingerprint.digest(pq.read_metadata(stamped), "counts/model=m/lang=eng_Latn/counts.parquet")


def test_stripped_copy_from_another_language_is_caught_before_sql(atlas):
    path = shard(atlas)
    table = pq.read_table(shard(atlas, "eng_Latn")).replace_schema_metadata(None)  # footer metadata stripped
    pq.write_table(table, path)
    counts, warned = sql(atlas, "SELECT DISTINCT lang FROM counts WHERE model = 'toy'")
    assert "tgl_Latn" not in counts.column("lang").to_pylist() and "no content fingerprint" in warned
    assert_verify_names(atlas, path, "fingerprint")


def test_copy_with_metadata_into_another_folder_is_caught(atlas):
    path = shard(atlas, "tgl_Latn", "other")
    shutil.copy(shard(atlas, "eng_Latn", "other"), path)
    _, warned = sql(atlas, "SELECT 1")
    assert str(path) in warned and "holds the counts of other/eng_Latn" in warned  # the specific fault first
    assert_verify_names(atlas, path, "holds the counts of")


def test_legacy_atlas_without_fingerprints_still_opens(atlas):
    manifest = json.loads((atlas / "atlas.json").read_text())
    manifest.pop("fingerprinted")
    (atlas / "atlas.json").write_text(json.dumps(manifest))
    path = shard(atlas)
    table = pq.read_table(path)
    legacy = {b"neuron_atlas": table.schema.metadata[b"neuron_atlas"]}
    pq.write_table(table.replace_schema_metadata(legacy), path)  # an older writer: metadata kept, no fingerprint
    assert sql(atlas, "SELECT count(*) AS n FROM counts")[1] == ""
    assert verify(atlas) == []
    table = pq.read_table(shard(atlas, "eng_Latn"))
    pq.write_table(table.replace_schema_metadata({b"neuron_atlas": table.schema.metadata[b"neuron_atlas"]}), path)
    # another language's legacy shard: identity is still checked from the metadata
    assert "holds the counts of" in sql(atlas, "SELECT 1")[1]


def _flip_silently(path: Path, column: str) -> int:
    """Flip one byte inside ``column``'s data page so that pyarrow still decodes it without checking CRCs (the
    wrong value goes unnoticed by DuckDB); returns the position. Tries positions in a seeded order."""
    md = pq.read_metadata(path)
    names = [md.schema.column(j).name for j in range(md.num_columns)]
    chunk = md.row_group(0).column(names.index(column))
    start, size = chunk.data_page_offset, chunk.total_compressed_size
    original, good = path.read_bytes(), pq.read_table(path).column(column)
    for pos in np.random.default_rng(0).permutation(np.arange(start + 20, start + size)):
        data = bytearray(original)
        data[pos] ^= 0x10
        path.write_bytes(bytes(data))
        try:
            if not pq.read_table(path).column(column).equals(good):
                return int(pos)
        except (OSError, pa.ArrowException):
            pass
    raise AssertionError("no silent flip found")


def test_page_bit_flip_is_found_by_verify(atlas):
    path = shard(atlas)
    _flip_silently(path, "fired")
    with pytest.raises(na.AtlasFormatError, match="(?i)checksum|CRC"):
        na.open(atlas).neurons("toy", lang="tl", among=["tl", "en"])  # the Python readers check page CRCs
    assert_verify_names(atlas, path, "not a readable Parquet file")


def test_page_bit_flip_in_a_derived_table(atlas):
    path = lape_file(atlas)
    _flip_silently(path, "p")
    assert_verify_names(atlas, path, "")


# -- missing pieces ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lape", "ranking"])
def test_deleted_derived_table_is_a_problem(atlas, name):
    path = lape_file(atlas, name=name)
    path.unlink()
    assert str(path) in sql(atlas, "SELECT 1")[1]
    assert_verify_names(atlas, path, "missing")


def test_half_merged_model_is_a_problem(atlas, tmp_path):
    half = tmp_path / "half"
    make_atlas(half, model="late", n_layers=2, ffn_width=8, langs=LANGS[:2], finalize=False)
    shutil.copytree(half / "models" / "model=late", atlas / "models" / "model=late")  # killed after add_model
    shutil.copytree(half / "counts" / "model=late" / "lang=eng_Latn", atlas / "counts" / "model=late" / "lang=eng_Latn")
    assert_verify_names(atlas, lape_file(atlas, "late"), "missing")
    shutil.rmtree(atlas / "counts" / "model=late")
    assert_verify_names(atlas, lape_file(atlas, "late"), "half-built or half-merged")


def test_duplicated_languages_row(atlas):
    path = atlas / "languages.parquet"
    table = pq.read_table(path)
    write_parquet(pa.concat_tables([table, table.slice(1, 1)]), path)
    assert "more than once" in sql(atlas, "SELECT 1")[1]
    assert_verify_names(atlas, path, "more than once")


def test_open_atlas_reloads_when_another_process_rederives(atlas):
    opened = na.open(atlas)
    before = opened.sql("SELECT count(DISTINCT lang) AS n FROM counts WHERE model = 'toy'").column("n")[0].as_py()
    assert before == 4 and len(opened.neurons("toy").langs) == 4
    writer = AtlasWriter(atlas)
    writer.add_counts("toy", "deu_Latn", np.ones((3, 32), int), 100)
    writer.finalize("toy")
    langs = opened.sql("SELECT count(DISTINCT lang) AS n FROM counts WHERE model = 'toy'").column("n")[0].as_py()
    derived = opened.sql("SELECT count(DISTINCT lang) AS n FROM lape_stored WHERE model = 'toy'").column("n")[0].as_py()
    assert langs == 5 and derived <= 5 and len(opened.neurons("toy").langs) == 5


# -- merge -------------------------------------------------------------------------------------------------------
def test_merge_from_a_folder_that_is_not_an_atlas_writes_nothing_into_it(tmp_path):
    source = tmp_path / "notes"
    source.mkdir()
    with pytest.raises(na.AtlasNotFoundError):
        from neuron_atlas.maintenance.merge import merge_atlas
        merge_atlas(source, tmp_path / "out")
    assert list(source.iterdir()) == []


# -- the CLI -----------------------------------------------------------------------------------------------------
def test_cli_verify_lists_every_tampered_file_once_without_traceback(atlas, tmp_path):
    secret = _outside(tmp_path)
    link = shard(atlas, "fra_Latn")
    link.unlink()
    link.symlink_to(shard(secret))
    rewrite(lape_file(atlas, name="ranking"), rank=lambda a: np.where(a == 1, 0, a))
    rewrite(lape_file(atlas), p=_set(0, np.nan))
    rewrite(shard(atlas, "eng_Latn"), p=lambda a: np.full(len(a), 6.25))
    pq.write_table(pq.read_table(shard(atlas, "eng_Latn", "other")).replace_schema_metadata(None),
                   shard(atlas, "tgl_Latn", "other"))
    _flip_silently(shard(atlas, "ind_Latn", "other"), "fired")
    (lape_file(atlas, "other", "ranking")).unlink()
    proc = cli_verify(atlas)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("problem:")]
    assert len(lines) == len(verify(atlas)) and proc.stderr.splitlines()[-1].endswith(f"problems in {atlas}")
    text = proc.stderr
    for words in ("symlink leading outside", "two neurons hold rank 0", "NaN p", "clashes",
                  "no content fingerprint", "lang=ind_Latn/counts.parquet: not a readable Parquet file",
                  "ranking.parquet: missing"):
        assert words in text, (words, text)


def test_embedded_atlas_is_fingerprinted():
    from neuron_atlas.format import fingerprint
    from neuron_atlas.atlas import EMBEDDED

    if not (EMBEDDED / "atlas.json").exists():
        pytest.skip("no embedded atlas in this checkout")
    assert na.open().manifest.fingerprinted
    for path in EMBEDDED.rglob("*.parquet"):
        md = pq.read_metadata(path)
        assert fingerprint.stored(md) == fingerprint.digest(md, fingerprint.identity(path)), path


def test_remote_sql_gets_the_same_validation(atlas):
    """An atlas read through an fsspec filesystem (as hf:// is) is validated too: no p = 6.25 served."""
    import fsspec

    rewrite(lape_file(atlas), p=lambda a: np.full(len(a), 6.25))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = na.Atlas(str(atlas), fs=fsspec.filesystem("file")).sql("SELECT max(p) AS p FROM lape_stored")
    assert got.column("p")[0].as_py() is None or got.column("p")[0].as_py() <= 1
    assert any("lape.parquet" in str(w.message) for w in caught)


def test_upgrade_stamps_a_legacy_atlas_without_changing_answers(atlas):
    from neuron_atlas.maintenance.upgrade import fingerprint_atlas

    manifest = json.loads((atlas / "atlas.json").read_text())
    manifest.pop("fingerprinted")
    (atlas / "atlas.json").write_text(json.dumps(manifest))
    for path in atlas.rglob("*.parquet"):  # as an older writer left them: metadata, no fingerprint
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"neuron_atlas")
        pq.write_table(table.replace_schema_metadata({b"neuron_atlas": raw} if raw else None), path,
                       write_page_checksum=True)
    query = "SELECT model, lang, sum(fired) AS f FROM counts GROUP BY ALL ORDER BY ALL"
    before, sets = sql(atlas, query)[0], na.open(atlas).neurons("toy").to_arrow()
    data = {p: p.read_bytes()[: pq.read_metadata(p).row_group(0).column(0).data_page_offset + 8] for p in atlas.rglob("*.parquet")}
    assert fingerprint_atlas(atlas) == len(data)
    assert na.open(atlas).manifest.fingerprinted and verify(atlas) == []
    assert all(p.read_bytes().startswith(head) for p, head in data.items())
    assert sql(atlas, query)[0].equals(before) and na.open(atlas).neurons("toy").to_arrow().equals(sets)


@pytest.mark.parametrize("fault", ["a duplicated row", "a missing row", "a wrong name", "deleted"])
def test_languages_table_that_disagrees_with_the_atlas_is_refused_on_the_query_path(atlas, fault):
    path = atlas / "languages.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    if fault == "deleted":
        path.unlink()
    else:
        if fault == "a duplicated row":
            rows.append(rows[0])
        elif fault == "a missing row":
            rows = [r for r in rows if r["lang"] != "tgl_Latn"]
        else:
            rows[0]["name"] = "Klingon"
        write_parquet(pa.Table.from_pylist(rows, schema=table.schema), path)
    opened = na.open(atlas)
    with pytest.raises(na.AtlasFormatError, match="languages.parquet"):
        opened.languages("toy")
    assert any("languages.parquet" in str(p) for p in verify(atlas))


def test_manifest_that_is_a_folder_is_a_named_format_error(atlas):
    (atlas / "atlas.json").unlink()
    (atlas / "atlas.json").mkdir()
    with pytest.raises(na.AtlasFormatError, match="atlas.json: cannot be read"):
        na.open(atlas)


def test_model_row_whose_shape_no_model_has_is_refused_before_anything_is_allocated(atlas):
    path = atlas / "models" / "model=toy" / "model.parquet"
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"neuron_atlas")
    meta = json.loads(raw) if raw else None
    table = table.set_column(table.column_names.index("hidden_size"), "hidden_size", pa.array([2**31 - 1], pa.int32()))
    write_parquet(table.replace_schema_metadata(None), path, meta)
    with pytest.raises(na.AtlasFormatError, match="hidden_size"):
        na.open(atlas).model("toy")
