"""SQL stays read-only and inside the atlas whatever the query, the atlas' path or its filesystem; it can be stopped."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import neuron_atlas as na
from neuron_atlas.atlas import Atlas

SECRET = "TOPSECRET-4242"


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Files outside the atlas a query must not read: text, CSV, JSON, Parquet."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "secret.txt").write_text(SECRET + "\n")
    (folder / "secret.csv").write_text(f"a\n{SECRET}\n")
    (folder / "secret.json").write_text(f'{{"a": "{SECRET}"}}\n')
    pq.write_table(pa.table({"a": [SECRET]}), folder / "secret.parquet")
    return folder


def _escapes(o, root):
    return [
        f"SELECT * FROM read_text('{o}/secret.txt')",
        f"SELECT * FROM read_blob('{o}/secret.txt')",
        f"SELECT * FROM read_csv('{o}/secret.csv')",
        f"SELECT * FROM read_csv_auto('{o}/secret.csv')",
        f"SELECT * FROM read_json_auto('{o}/secret.json')",
        f"SELECT * FROM read_parquet('{o}/secret.parquet')",
        f"SELECT * FROM '{o}/secret.parquet'",
        f"SELECT * FROM read_parquet('{o}/*.parquet')",
        f"SELECT * FROM glob('{o}/*')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM read_text('/etc/passwd')",
        f"SELECT * FROM read_text('{root}/../outside*/secret.txt')",
        f"/* comment */ SELECT * FROM read_text('{o}/secret.txt') -- trailing",
        f"SELECT 1; SELECT * FROM read_text('{o}/secret.txt')",
        f"SELECT 1 /* ; */ UNION ALL SELECT content FROM read_text('{o}/secret.txt')",
        f"WITH t AS (SELECT * FROM read_csv('{o}/secret.csv')) SELECT * FROM t",
        f"SELECT * FROM (FROM read_text('{o}/secret.txt'))",
        f"COPY (SELECT 1) TO '{o}/out.csv'",
        f"ATTACH '{o}/x.db' AS x",
        "INSTALL httpfs", "LOAD httpfs", "SET enable_external_access = true",
        "SET allowed_directories = ['/']", "RESET enable_external_access", "PRAGMA enable_profiling",
        "CREATE TABLE t AS SELECT 1", "DROP VIEW counts", "EXPORT DATABASE '/tmp/x'", "CALL pragma_version()",
        "SELECT * FROM duckdb_settings() WHERE name = 'x'; SELECT 2",
        "CREATE MACRO m() AS 1", "DETACH memory", "USE system",
    ]


def _assert_confined(atlas, outside, query):
    try:
        result = atlas.sql(query)
    except na.AtlasError as exc:
        assert "\n" not in str(exc)
        return
    assert SECRET not in str(result.to_pylist()), query
    assert "read_" not in query and "glob" not in query and "FROM '" not in query, f"{query} ran"


def test_classic_escapes_stay_inside(toy_atlas, outside):
    atlas = na.open(toy_atlas)
    for query in _escapes(outside, toy_atlas):
        _assert_confined(atlas, outside, query)
    assert not (outside / "out.csv").exists()
    assert atlas.sql("SELECT count(*) AS n FROM models").column("n")[0].as_py() == 2  # still usable afterwards


def test_filesystem_atlas_is_confined_too(toy_atlas, outside):
    from fsspec.implementations.local import LocalFileSystem

    atlas = Atlas(str(toy_atlas), fs=LocalFileSystem())
    assert atlas.sql("SELECT count(DISTINCT lang) AS n FROM counts WHERE model = 'toy'").column("n")[0].as_py() == 9
    for query in _escapes(outside, toy_atlas):
        _assert_confined(atlas, outside, query)


def test_duckdb_temp_folder_is_not_readable(toy_atlas, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "x.csv").write_text(f"a\n{SECRET}\n")
    atlas = na.open(toy_atlas)
    for query in ["SELECT * FROM read_csv('.tmp/x.csv')", f"SELECT * FROM read_csv('{tmp_path}/.tmp/x.csv')"]:
        with pytest.raises(na.AtlasError, match="(?i)permission|disabled"):
            atlas.sql(query)


@pytest.mark.parametrize("name", ["x','", "o'brien", "a\"b", "x') UNION SELECT * FROM read_text('/etc/passwd') --",
                                  "star*[1]?"])
def test_atlas_paths_with_quotes_work_and_open_nothing_else(toy_atlas, outside, tmp_path, name):
    root = tmp_path / "data" / name / "atlas"
    shutil.copytree(toy_atlas, root)
    atlas = na.open(root)
    got = atlas.sql("SELECT count(*) AS n FROM lape WHERE model = ?", ["toy"]).column("n")[0].as_py()
    assert got == na.open(toy_atlas).sql("SELECT count(*) AS n FROM lape WHERE model = 'toy'").column("n")[0].as_py()
    assert atlas.sql("SELECT count(DISTINCT lang) AS n FROM counts").column("n")[0].as_py() == 9
    for query in _escapes(outside, root)[:12]:
        _assert_confined(atlas, outside, query)


def test_timeout_interrupts_a_runaway_query(toy_atlas):
    atlas = na.open(toy_atlas)
    started = time.perf_counter()
    with pytest.raises(na.AtlasError, match="timeout"):
        atlas.sql("SELECT count(*) FROM range(100000000000000)", timeout=0.5)
    assert time.perf_counter() - started < 20
    assert atlas.sql("SELECT 1 AS x", timeout=5).column("x")[0].as_py() == 1  # the connection still works
    with pytest.raises(na.AtlasError, match="positive"):
        atlas.sql("SELECT 1", timeout=0)


def test_ctrl_c_interrupts_a_runaway_query(toy_atlas):
    code = (f"import neuron_atlas as na; a = na.open({str(toy_atlas)!r}); a.sql('SELECT 1'); print('ready', flush=True)\n"
            "try:\n    a.sql('SELECT count(*) FROM range(100000000000000)')\n"
            "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n"
            "print(a.sql('SELECT 2 AS x').column('x')[0].as_py(), flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert out.split() == ["interrupted", "2"], err


@pytest.mark.parametrize("query, match", [
    ("SELEC 1", "syntax error"),
    ("SELECT * FROM nope", "nope"),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "depth"),
    ("SELECT " + "1+" * 5000 + "1", "depth"),
    ("", "exactly one statement"),
])
def test_sql_errors_are_one_clear_line(toy_atlas, query, match):
    with pytest.raises(na.AtlasError, match=match) as info:
        na.open(toy_atlas).sql(query)
    assert "\n" not in str(info.value) and "SET max_expression_depth" not in str(info.value)


@pytest.mark.parametrize("query, hint", [("SELECT * FROM lapes", 'Did you mean "lape"'),
                                         ("SELECT modle FROM models", 'Candidate bindings: "model"')])
def test_sql_errors_keep_duckdbs_suggestions(toy_atlas, query, hint):
    with pytest.raises(na.InvalidParameterError, match=hint) as info:
        na.open(toy_atlas).sql(query)
    assert "\n" not in str(info.value)


def test_impossible_counts_stop_a_query_where_footers_were_not_checked(pristine, tmp_path):
    """Over hf:// the shards' footers are not all read before SQL: a shard whose fired exceeds its tokens stops
    the query with a format error instead of serving p above 1 (a local filesystem stands in for the Hub's)."""
    import json

    from fsspec.implementations.local import LocalFileSystem

    from neuron_atlas.format.layout import write_parquet

    root = tmp_path / "atlas"
    shutil.copytree(pristine, root)
    path = root / "counts" / "model=toy" / "lang=tgl_Latn" / "counts.parquet"
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b"neuron_atlas"])
    fired = pa.array([10**6] * table.num_rows, pa.int32())
    write_parquet(table.set_column(table.column_names.index("fired"), "fired", fired).replace_schema_metadata(None),
                  path, meta)
    with pytest.raises(na.AtlasFormatError, match="fired count outside"):
        Atlas(str(root), fs=LocalFileSystem()).sql("SELECT max(p) FROM counts")
