"""Arguments of the public API: wrong types, non-finite or out-of-range numbers, control characters and lone
surrogates are InvalidParameterErrors that say what was expected; SQL parameters and timeouts are checked, and a
timed-out query is cancelled, never left running."""
import subprocess
import sys

import pytest

import neuron_atlas as na
from neuron_atlas.errors import AtlasFormatError, InvalidParameterError
from neuron_atlas.hub.address import parse_hf_url

RUNAWAY = "SELECT count(*) FROM range(100000000000000)"


@pytest.fixture(scope="module")
def atlas(toy_atlas):
    return na.open(toy_atlas)


@pytest.mark.parametrize("model, expected", [(None, "NoneType"), (5, "got 5"), (["toy"], "list"), (b"toy", "bytes"),
                                             ("to\x00y", "control character"), ("\ud800", "lone surrogate")])
def test_model_must_be_a_printable_string(atlas, model, expected):
    calls = [lambda: atlas.neurons(model), lambda: atlas.model(model), lambda: atlas.overlap(model)]
    for call in calls + ([lambda: atlas.languages(model)] if model is not None else []):  # languages(None): all
        with pytest.raises(InvalidParameterError, match=f"model .*{expected}"):
            call()


@pytest.mark.parametrize("lang", ["\x00", "t\x1bl", "\ud800", ["tl", "\udcff"], ["tl", 5], 3.5, {"tl"}])
def test_language_tags_must_be_printable_strings(atlas, lang):
    with pytest.raises(InvalidParameterError, match="lang="):
        atlas.neurons("toy", lang=lang)
    with pytest.raises(InvalidParameterError, match="among"):
        atlas.neurons("toy", among=lang if isinstance(lang, list) else [lang, "tl"])


@pytest.mark.parametrize("kw, name", [
    ({"top": 10**400}, "top"), ({"top": float("inf")}, "top"), ({"top": -0.0}, "top"), ({"top": True}, "top"),
    ({"filter_rate": 10**400}, "filter_rate"), ({"bar_ratio": float("nan")}, "bar_ratio"),
    ({"filter_rate": "0.9"}, "filter_rate"), ({"size": 10**400}, "size"), ({"size": 2**31}, "size"),
    ({"method": 5}, "method"), ({"method": "ov\x00r"}, "method"), ({"among": "diverse\x00"}, "among"),
])
def test_numbers_and_names_out_of_range(atlas, kw, name):
    with pytest.raises(InvalidParameterError, match=name):
        atlas.neurons("toy", **kw)


def test_a_size_beyond_all_neurons_still_answers(atlas):
    assert atlas.neurons("toy", lang="tl", size=10 * 4 * 96).sizes()["tgl_Latn"] <= 4 * 96


def test_coverage_and_features_check_their_arguments(atlas):
    with pytest.raises(InvalidParameterError, match="lang"):
        atlas.coverage("toy", None)
    with pytest.raises(InvalidParameterError, match="one language"):
        atlas.coverage("toy", ["tl", "id"])
    with pytest.raises(InvalidParameterError, match="pair"):
        atlas.features("toy", pair=5)


@pytest.mark.parametrize("path", [5, None.__class__, b"x\x00", "a\x00b"])
def test_open_takes_a_path(path):
    with pytest.raises(InvalidParameterError, match="the atlas"):
        na.open(path)


@pytest.mark.parametrize("params", [5, "ab", b"ab", {1: "x"}, {"lang": "\ud800"}, ["\ud800"], {"toy"}])
def test_sql_params_must_be_a_list_or_dict(atlas, params):
    with pytest.raises(InvalidParameterError, match="param"):
        atlas.sql("SELECT ? AS x", params)


@pytest.mark.parametrize("query", [5, None, b"SELECT 1", "SELECT '\x00'", "SELECT '\ud800'"])
def test_sql_query_must_be_text(atlas, query):
    with pytest.raises(InvalidParameterError, match="query"):
        atlas.sql(query)


@pytest.mark.parametrize("query, params, match", [
    ("SELECT ? AS x", None, "1 \\? parameter"), ("SELECT ?, ? AS x", ["a"], "2 \\? parameters"),
    ("SELECT ? AS x", ["a", "b"], "1 \\? parameter"), ("SELECT $lang AS x", ["a"], "\\$lang"),
    ("SELECT $lang AS x", {"other": 1}, "\\$lang"), ("SELECT 1 AS x", ["a"], "0 \\? parameters"),
])
def test_sql_params_must_bind_every_parameter(atlas, query, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        atlas.sql(query, params)


def test_sql_params_bind(atlas):
    assert atlas.sql("SELECT ? AS x, ? AS y", ("a", 2)).to_pylist() == [{"x": "a", "y": 2}]
    assert atlas.sql("SELECT $lang AS x", {"lang": "tgl_Latn"}).to_pylist() == [{"x": "tgl_Latn"}]
    assert atlas.sql("SELECT ? AS x", ["tab\there"]).to_pylist() == [{"x": "tab\there"}]


@pytest.mark.parametrize("timeout", ["5", float("inf"), float("nan"), 1e300, 10**400, True, 0, -1, [1]])
def test_timeout_is_a_bounded_number_of_seconds(atlas, timeout):
    with pytest.raises(InvalidParameterError, match="timeout must be a positive number of seconds"):
        atlas.sql("SELECT 1", timeout=timeout)
    assert atlas.sql("SELECT 1 AS x").to_pylist() == [{"x": 1}]  # nothing left running on the connection


def test_a_timed_out_query_is_cancelled_not_orphaned(toy_atlas):
    """After a timeout the connection answers at once, and the process exits normally (DuckDB aborts the process,
    status 134, when it exits under a query still running in a thread)."""
    code = (f"import neuron_atlas as na, time\na = na.open({str(toy_atlas)!r})\n"
            "for t in (0.001, 0.3):\n"
            "    try:\n"
            f"        a.sql({RUNAWAY!r}, timeout=t)\n"
            "    except na.AtlasError as e:\n"
            "        assert 'timeout' in str(e), e\n"
            "    start = time.monotonic()\n"
            "    assert a.sql('SELECT 42 AS x').to_pylist() == [{'x': 42}]\n"
            "    assert time.monotonic() - start < 5\n"
            "for bad in (float('inf'), 1e300):\n"
            "    try:\n"
            f"        a.sql({RUNAWAY!r}, timeout=bad)\n"
            "    except na.InvalidParameterError:\n"
            "        pass\n"
            "print('done', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]


def test_no_progress_bar_on_stdout(toy_atlas):
    """DuckDB draws a progress bar on stdout during a query longer than 2 s unless told not to."""
    code = (f"import neuron_atlas as na\na = na.open({str(toy_atlas)!r})\ntry:\n    a.sql({RUNAWAY!r}, timeout=3)\n"
            "except na.AtlasError:\n    print('stopped')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout == "stopped\n", proc.stdout[:200]


def test_a_manifest_that_is_not_utf8(tmp_path, toy_atlas):
    import shutil

    root = tmp_path / "atlas"
    shutil.copytree(toy_atlas, root)
    (root / "atlas.json").write_bytes(b'{"format": "neuron-atlas\xff", "format_version": 1}')
    with pytest.raises(AtlasFormatError, match="atlas.json: not UTF-8"):
        na.open(root)


@pytest.mark.parametrize("url", ["hf://datasets/", "hf://datasets/a b/c", "hf://datasets/org/na--me",
                                 "hf://datasets/org/name@v1\x00", "hf://models/org/name", "hf://org/name", "hf:/x"])
def test_malformed_hub_addresses_are_bad_input(url):
    with pytest.raises(InvalidParameterError):
        parse_hf_url(url)


@pytest.mark.parametrize("repo", ["not a valid/repo id!!", "a/b/c", "org/na..me", "x" * 97 + "/y", "", 5])
def test_invalid_repo_ids(repo):
    from neuron_atlas.hub.address import check_repo_id

    with pytest.raises(InvalidParameterError, match="repo id"):
        check_repo_id(repo)
    assert check_repo_id("org/name-1.0_x") == "org/name-1.0_x"


def test_checks_name_what_was_given():
    from neuron_atlas._utils import arguments

    with pytest.raises(InvalidParameterError, match="an integer of 401 digits"):
        arguments.number(10**400, "x", 0, 1)
    with pytest.raises(InvalidParameterError, match=r"got \[1\] \(list\)"):
        arguments.integer([1], "n", 0)
    assert arguments.integer(3, "n", 0) == 3 and arguments.timeout(None) is None and arguments.timeout(2) == 2.0
