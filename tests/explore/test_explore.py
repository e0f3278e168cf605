"""The explorer site without a browser: its numbers against direct queries, clustering against a naive reference,
incremental regeneration, links, and the command."""
import itertools
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import neuron_atlas as na
from neuron_atlas.explore import build_site
from neuron_atlas.explore.charts import png
from neuron_atlas.explore.cluster import average_linkage_order
from neuron_atlas.explore.gather import SIZES, gather_model, size_methods
from neuron_atlas.testing import make_atlas


def naive_average_linkage(dist: np.ndarray) -> list[int]:
    """UPGMA by definition: the distance of two clusters is the mean of their members' pairwise distances."""
    clusters = {i: [i] for i in range(len(dist))}
    while len(clusters) > 1:
        keys = sorted(clusters)
        best = min(((float(np.mean(dist[np.ix_(clusters[a], clusters[b])])), a, b)
                    for i, a in enumerate(keys) for b in keys[i + 1:]))
        _, a, b = best
        clusters[a] = clusters[a] + clusters.pop(b)
    return next(iter(clusters.values()))


@pytest.mark.parametrize("n", [2, 3, 7, 25])
def test_average_linkage_matches_the_definition(rng, n):
    x = rng.random((n, 4))
    dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    assert average_linkage_order(dist).tolist() == naive_average_linkage(dist)


def test_average_linkage_keeps_blocks_together(rng):
    labels = rng.permutation(np.repeat(np.arange(4), 6))
    dist = np.where(labels[:, None] == labels[None], 0.1, 0.9) + rng.random((24, 24)) * 0.01
    dist = (dist + dist.T) / 2
    order = average_linkage_order(dist)
    runs = 1 + int((np.diff(labels[order]) != 0).sum())
    assert sorted(order.tolist()) == list(range(24)) and runs == 4


def test_png_encodes_the_pixels(rng):
    rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    data = png(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    length = struct.unpack(">I", data[33:37])[0]
    raw = np.frombuffer(zlib.decompress(data[41:41 + length]), np.uint8).reshape(height, 1 + width * 3)
    assert (width, height) == (7, 5) and (raw[:, 0] == 0).all()
    assert np.array_equal(raw[:, 1:].reshape(5, 7, 3), rgb)


@pytest.fixture(scope="module")
def v2_atlas(tmp_path_factory):
    """A synthetic format-v2 atlas: moments and residual means, so every registered method answers."""
    return make_atlas(tmp_path_factory.mktemp("v2"), model="toy-v2", n_layers=3, ffn_width=48, langs=7, stats=True)


@pytest.mark.parametrize("model", ["toy", "toy-b", "toy-v2"])
def test_gathered_numbers_equal_direct_queries(toy_atlas, v2_atlas, model):
    atlas = na.open(v2_atlas if model == "toy-v2" else toy_atlas)
    data = gather_model(atlas, model)
    tags = data.tags

    def per_layer(s):
        table = s.by_layer()
        counts = np.zeros((len(tags), data.row.n_layers), np.int64)
        for lang, layer, n in zip(*(table.column(c).to_pylist() for c in ("lang", "layer", "n_neurons"))):
            counts[tags.index(lang), layer] = n
        return counts

    assert np.array_equal(data.variant("lape-top1").counts, per_layer(atlas.neurons(model)))
    assert set(data.unavailable) == ({"mean_diff", "t"} if model != "toy-v2" else set())  # v1: no moments
    for method in data.unavailable:
        with pytest.raises(na.errors.MissingStatisticsError):
            atlas.neurons(model, size=SIZES[0], method=method)
    for method in set(size_methods()) - set(data.unavailable):
        for size in SIZES:
            direct = atlas.neurons(model, size=size, method=method)
            assert np.array_equal(data.variant(f"{method}-{size}").counts, per_layer(direct)), (method, size)

    sim = atlas.neurons(model, size=SIZES[-1])
    sets = {lang: set() for lang in tags}
    for lang, layer, neuron in zip(*(sim.table.column(c).to_pylist() for c in ("lang", "layer", "neuron"))):
        sets[lang].add((layer, neuron))
    for i, a in enumerate(tags):
        assert data.set_size[i] == len(sets[a])
        for j, b in enumerate(tags):
            inter = len(sets[a] & sets[b])
            union = len(sets[a] | sets[b])
            assert data.inter[i, j] == inter
            assert data.jaccard[i, j] == pytest.approx(inter / union if union else 0.0)
            assert data.share[i, j] == pytest.approx(inter / len(sets[a]) if sets[a] else 0.0)
    overlap = atlas.overlap(model, size=SIZES[-1])
    assert np.allclose(np.nan_to_num(np.array([overlap.column(t).to_numpy() for t in tags]).T), data.jaccard)


def test_grouped_order_keeps_scripts_and_families_together(toy_atlas):
    data = gather_model(na.open(toy_atlas), "toy")
    order = data.grouped_order()
    scripts = [data.langs[i].script for i in order]
    assert sorted(order.tolist()) == list(range(len(data.tags)))
    assert 1 + sum(a != b for a, b in itertools.pairwise(scripts)) == len(set(scripts))  # each script one run
    assert scripts[0] == "Latn"  # the largest group first
    families = [data.langs[i].family for i in order if data.langs[i].script == "Latn" and data.langs[i].family]
    assert families == sorted(families, key=families.index)  # Malay: ind, zlm adjacent
    assert {data.langs[data.tags.index("zlm_Latn")].family, data.langs[data.tags.index("tgl_Latn")].family} == {"Malay", ""}


def local_links(site: Path) -> list[tuple[Path, str]]:
    """(page, target) for every href/src in the site's pages."""
    out = []
    for page in site.rglob("*.html"):
        for target in re.findall(r'(?:href|src)="([^"]+)"', page.read_text()):
            out.append((page, target))
    return out


def test_site_is_complete_self_contained_and_incremental(toy_atlas, tmp_path):
    root = tmp_path / "atlas"
    shutil.copytree(toy_atlas, root)
    site = tmp_path / "site"
    first = build_site(root, site)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert first.written == len(pages) == 1 + (1 + 9) + (1 + 5)
    assert "models/toy/lang/tgl_Latn.html" in pages and "models/toy-b/index.html" in pages
    for page, target in local_links(site):
        assert not target.startswith(("http:", "https:", "//")), f"{page} loads {target} from the network"
        if target.startswith(("data:", "#")):
            continue
        assert (page.parent / target.split("#")[0]).resolve().is_file(), f"{page}: broken link {target}"
    assert (site / "assets" / "explore.js").is_file() and (site / "assets" / "explore.css").is_file()
    assert "sdk: static" in (site / "README.md").read_text()  # servable as a Hugging Face static Space

    again = build_site(root, site)
    assert (again.written, again.unchanged) == (0, len(pages))

    before = (site / "models/toy/index.html").stat().st_mtime_ns
    make_atlas(root, model="toy-b", n_layers=3, ffn_width=40, langs=6, tokens=800, seed=5)  # new counts, languages
    n_b = len(na.open(root).langs_of("toy-b"))
    third = build_site(root, site)
    assert n_b == 9 and third.written == 1 + (1 + n_b) and third.unchanged == 1 + 9
    assert (site / "models/toy/index.html").stat().st_mtime_ns == before
    assert (site / "models/toy-b/lang/deu_Latn.html").is_file()

    only = build_site(root, site, models=["toy"])  # a site of one model drops the other's pages
    assert only.removed == 1 + n_b and not (site / "models/toy-b").joinpath("index.html").exists()
    assert build_site(root, site, models=["toy"], force=True).written == 1 + 1 + 9


def test_language_page_says_how_to_get_the_set(toy_atlas, tmp_path):
    build_site(toy_atlas, tmp_path)
    text = (tmp_path / "models/toy/lang/tgl_Latn.html").read_text()
    assert f"na.open(&quot;{toy_atlas}&quot;)" in text
    assert "atlas.neurons(&#x27;toy&#x27;, lang=&#x27;tgl_Latn&#x27;, size=500)" in text
    for call in ("na.masks.neuron_mask(s)", "na.interventions.steer(model, both", "na.finetune.subnetwork(model, s)"):
        assert call in text
    index = (tmp_path / "index.html").read_text()
    assert "4 × 96" in index and "synthetic/toy" in index


def test_explore_command(toy_atlas, tmp_path):
    opener = tmp_path / "opener.sh"  # stands in for the user's browser: records the address it is asked to open
    opener.write_text(f'printf "%s" "$1" > {tmp_path / "opened"}\n')

    def run(*args):
        env = {**os.environ, "BROWSER": f"/bin/sh {opener} %s"}
        return subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", *args], check=False,
                              capture_output=True, text=True, env=env)

    ok = run("explore", str(toy_atlas), "--out", str(tmp_path / "site"), "--model", "toy-b")
    assert ok.returncode == 0, ok.stderr
    assert "7 pages written" in ok.stderr and (tmp_path / "site/models/toy-b/lang/eng_Latn.html").is_file()
    bad = run("explore", str(toy_atlas), "--out", str(tmp_path / "site"), "--model", "toyy")
    assert bad.returncode == 2 and "toyy" in bad.stderr and "toy" in bad.stderr
    assert "Example" in run("explore", "--help").stdout
    opened = run("explore", str(toy_atlas), "--out", str(tmp_path / "site"), "--model", "toy-b", "--open")
    assert opened.returncode == 0 and "0 pages written" in opened.stderr
    assert (tmp_path / "opened").read_text() == (tmp_path / "site" / "index.html").resolve().as_uri()
    headless = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", "explore",
                               str(toy_atlas), "--out", str(tmp_path / "site"), "--model", "toy-b", "--open"],
                              check=False, capture_output=True, text=True,
                              env={k: v for k, v in os.environ.items() if k not in ("DISPLAY", "BROWSER",
                                                                                   "WAYLAND_DISPLAY")} | {"PATH": ""})
    assert headless.returncode == 0 and "no web browser to open" in headless.stderr  # said, not silently nothing


def test_site_of_imported_sets_shows_them_and_says_what_cannot_be_asked(reference, tmp_path):
    """Published sets without statistics (at top 5 %): the default view is the sets as published; the size= methods
    are named as unavailable, with the reason, instead of failing the site."""
    pytest.importorskip("torch")
    atlas = tmp_path / "atlas"
    imported = subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", "import",
                               str(reference / "gurgurov-subnetwork" / "llama-3.1-5"), "--atlas", str(atlas)],
                              check=False, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    (model,) = na.open(atlas).model_slugs
    report = build_site(atlas, tmp_path / "site")
    assert report.written == 1 + 1 + len(na.open(atlas).langs_of(model))
    text = (tmp_path / "site" / "models" / model / "index.html").read_text()
    assert "published sets (top 5.00%" in text and "Methods this atlas cannot answer" in text
    assert "holds imported neuron sets without statistics" in text


def test_diffmean_cosines_equal_a_dense_reference(v2_atlas, toy_atlas, tmp_path):
    from neuron_atlas.format.reader import load_residual

    atlas = na.open(v2_atlas)
    data = gather_model(atlas, "toy-v2")
    mean, _ = load_residual(atlas.layout, data.row, data.tags)
    at = mean[:, data.diffmean_layer]  # [K, hidden], float64
    diff = np.stack([at[k] - np.delete(at, k, axis=0).mean(axis=0) for k in range(len(at))])
    unit = diff / np.linalg.norm(diff, axis=1, keepdims=True)
    assert np.allclose(data.diffmean, unit @ unit.T, atol=1e-5)
    build_site(atlas, tmp_path / "site")
    page = (tmp_path / "site" / "models" / "toy-v2" / "index.html").read_text()
    assert 'id="sim-diffmean"' in page and "DiffMean cosine" in page
    assert gather_model(na.open(toy_atlas), "toy").diffmean is None  # format v1: no residual means


# -- the site folder: only the site's own pages are ever written or removed ----------------------------------------

def _state(site: Path, pages) -> None:
    (site / ".explore.json").write_text(json.dumps({"format": 1, "pages": pages}))


@pytest.mark.parametrize("entry", ["abs", "../victim.html", "models/../../victim.html", "abs-txt", "../victim.txt"])
def test_a_crafted_state_file_never_removes_a_file_outside_the_site(toy_atlas, tmp_path, entry):
    site = tmp_path / "site"
    build_site(toy_atlas, site, models=["toy-b"])
    victim = tmp_path / ("victim.txt" if entry.endswith("txt") else "victim.html")
    victim.write_text("mine")
    name = str(victim) if entry.startswith("abs") else entry
    _state(site, {**json.loads((site / ".explore.json").read_text())["pages"], name: "x"})
    with pytest.raises(na.InvalidParameterError, match=r"\.explore\.json.*--replace"):
        build_site(toy_atlas, site, models=["toy-b"])
    assert victim.read_text() == "mine"
    report = build_site(toy_atlas, site, models=["toy-b"], replace=True)  # the crafted file is ignored, not obeyed
    assert victim.read_text() == "mine" and report.removed == 0
    assert name not in json.loads((site / ".explore.json").read_text())["pages"]


def test_a_symlink_leading_out_of_the_site_is_never_followed(toy_atlas, tmp_path):
    site, outside = tmp_path / "site", tmp_path / "outside"
    build_site(toy_atlas, site, models=["toy-b"])
    (outside / "lang").mkdir(parents=True)
    (outside / "index.html").write_text("mine")
    (outside / "lang" / "eng_Latn.html").write_text("mine too")
    (site / "models" / "gone").symlink_to(outside)  # a stale model's folder, planted as a link out of the site
    pages = json.loads((site / ".explore.json").read_text())["pages"]
    _state(site, {**pages, "models/gone/index.html": "x", "models/gone/lang/eng_Latn.html": "x"})
    report = build_site(toy_atlas, site, models=["toy-b"])
    assert report.removed == 0 and (outside / "index.html").read_text() == "mine"
    assert (outside / "lang" / "eng_Latn.html").read_text() == "mine too"

    shutil.rmtree(site / "assets")
    (site / "assets").symlink_to(outside)  # a page to write, through a link out of the site: refused
    with pytest.raises(na.AtlasError, match="symlink leading outside the site"):
        build_site(toy_atlas, site, models=["toy-b"])
    assert sorted(p.name for p in outside.iterdir()) == ["index.html", "lang"]


@pytest.mark.parametrize("content", [
    b'{"format": 1, "pages": ["index.html"]}', b"null", b"not json {", b'{"format": 1, "pages": null}',
    b'{"format": 1, "pages": {"index.html": 5}}', b'{"format": 1, "pages": {"notes.txt": "x"}}', b"[]",
    b'{"pages": {}}', b'{"format": "1", "pages": {}}', b"\xff\xfe", b"[" * 100_000,
], ids=["list", "null", "not-json", "pages-null", "int-fingerprint", "not-a-page", "array", "no-format",
        "format-str", "not-utf8", "deep"])
def test_a_malformed_state_file_is_a_clear_error_and_replace_starts_afresh(toy_atlas, tmp_path, content):
    site = tmp_path / "site"
    build_site(toy_atlas, site, models=["toy-b"])
    (site / ".explore.json").write_bytes(content)
    with pytest.raises(na.InvalidParameterError) as caught:
        build_site(toy_atlas, site, models=["toy-b"])
    message = str(caught.value)
    assert "\n" not in message and ".explore.json is not an explorer site's state file" in message
    assert "--replace" in message
    report = build_site(toy_atlas, site, models=["toy-b"], replace=True)
    assert report.written == 7 and report.removed == 0
    assert json.loads((site / ".explore.json").read_text())["format"] == 1
    assert build_site(toy_atlas, site, models=["toy-b"]).removed == 0  # a site again: no --replace needed


def test_explore_refuses_a_folder_it_did_not_make_unless_told_to_replace(toy_atlas, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.html").write_text("my page")
    with pytest.raises(na.InvalidParameterError, match="not an explorer site.*--replace"):
        build_site(toy_atlas, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["index.html"] and (mine / "index.html").read_text() == "my page"
    for bad in ("", " ", mine / "index.html", mine / "index.html" / "site"):
        with pytest.raises(na.InvalidParameterError):
            build_site(toy_atlas, bad)
    assert build_site(toy_atlas, mine, models=["toy-b"], replace=True).written == 7
    assert (mine / "index.html").read_text() != "my page"
    assert build_site(toy_atlas, mine, models=["toy-b"]).removed == 0  # now a site of its own


def test_an_interrupted_first_run_leaves_a_folder_the_next_run_resumes(toy_atlas, tmp_path, monkeypatch):
    from neuron_atlas.explore import build as site_mod

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(site_mod, "gather_model", broken)
    with pytest.raises(KeyboardInterrupt):
        build_site(toy_atlas, tmp_path / "site", models=["toy-b"])
    assert (tmp_path / "site" / "assets" / "explore.js").is_file()  # a folder holding files ...
    monkeypatch.undo()
    assert build_site(toy_atlas, tmp_path / "site", models=["toy-b"]).written == 7  # ... that is its own site


def test_explore_command_refuses_others_folders(toy_atlas, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-c", "from neuron_atlas.cli import main; main()", *args], check=False,
                              capture_output=True, text=True, cwd=tmp_path)

    empty = run("explore", str(toy_atlas), "--out", "", "--model", "toy-b")
    assert empty.returncode == 2 and empty.stderr.count("\n") == 1 and "names no folder" in empty.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written into the current folder
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "index.html").write_text("my page")
    refused = run("explore", str(toy_atlas), "--out", "mine", "--model", "toy-b")
    assert refused.returncode == 2 and "--replace" in refused.stderr and "Traceback" not in refused.stderr
    assert (tmp_path / "mine" / "index.html").read_text() == "my page"
    replaced = run("explore", str(toy_atlas), "--out", "mine", "--model", "toy-b", "--replace")
    assert replaced.returncode == 0 and "7 pages written" in replaced.stderr
