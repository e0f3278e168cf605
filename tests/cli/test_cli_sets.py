"""CLI of per-language sets: neurons --size/--method/--coverage/--among PANEL and the panels command, against the API."""
import io

import pyarrow.csv as pacsv

import neuron_atlas as na
from test_cli import run


def _csv(text):
    return pacsv.read_csv(io.BytesIO(text.encode()))


def test_size_and_method_match_api(toy_atlas):
    for extra, kw in [(["--size", "7"], {"size": 7}), (["--size", "2%", "--method", "ovr"], {"size": "2%", "method": "ovr"})]:
        out = run("neurons", "toy", "-l", "tl,id", *extra, "-a", str(toy_atlas), "-f", "csv").stdout
        api = na.open(toy_atlas).neurons("toy", lang=["tl", "id"], **kw).to_arrow()
        table = _csv(out)
        assert table.column("neuron").to_pylist() == api.column("neuron").to_pylist()
        assert table.column("n_langs").to_pylist() == api.column("n_langs").to_pylist()


def test_coverage_matches_api(toy_atlas):
    out = run("neurons", "toy", "-l", "tl", "--top", "5%", "--coverage", "-a", str(toy_atlas), "-f", "csv").stdout
    api = na.open(toy_atlas).coverage("toy", "tl", top="5%")
    assert _csv(out).column("lang").to_pylist() == api.column("lang").to_pylist()
    bad = run("neurons", "toy", "-l", "tl,id", "--coverage", "-a", str(toy_atlas), check=False)
    assert bad.returncode != 0 and "exactly one --lang" in bad.stderr


def test_panels_and_among_panel(toy_atlas):
    listing = _csv(run("panels", "-f", "csv").stdout)
    assert {"tang-7", "seed-12", "clas-32", "diverse-10"} <= set(listing.column("panel").to_pylist())
    proc = run("neurons", "toy", "--among", "tang-7", "--top", "5%", "-a", str(toy_atlas), "-f", "csv")
    api = na.open(toy_atlas).neurons("toy", among="tang-7", top="5%").to_arrow()
    assert _csv(proc.stdout).column("neuron").to_pylist() == api.column("neuron").to_pylist()
    assert "not in" in proc.stderr  # the panel's missing languages are noted


def test_tiny_set_notice_and_bad_method(toy_atlas):
    proc = run("neurons", "toy", "-l", "tl", "--top", "1%", "-a", str(toy_atlas), "-f", "csv")
    assert "note:" in proc.stderr and "--size 500" in proc.stderr and "size=" not in proc.stderr  # the CLI's words
    bad = run("neurons", "toy", "--method", "ovr", "-a", str(toy_atlas), check=False)
    assert bad.returncode == 2 and "give --size" in bad.stderr and "size=" not in bad.stderr
