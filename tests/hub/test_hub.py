"""Hub distribution: the publishing commit (no HTTP), and reading through a real Hub-compatible server (olah).

The server serves a dataset repo that the tests build as a local git repository from exactly the files
``plan_commit`` would upload, with two commits (and a tag) to check revision pinning.
"""
from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import DatasetCard
from olah_server import (
    git_commit_folder,
    materialise,
    olah_python,
    silent_server,
    start_olah,
)
from typer.testing import CliRunner

import neuron_atlas as na
from neuron_atlas import hub
from neuron_atlas.atlas import Atlas
from neuron_atlas.errors import AtlasError, AtlasNotFoundError, InvalidParameterError
from neuron_atlas.hub import filesystem
from neuron_atlas.format.layout import LOCK_NAME
from neuron_atlas.testing import make_atlas

REPO = "test-org/atlas"
URL = f"hf://datasets/{REPO}"
LANGS = ["eng_Latn", "fra_Latn", "tgl_Latn", "cmn_Hans", "swh_Latn"]


def _atlas_v1(root):
    """Two models; beta's tables are over 64 KiB, so a Parquet reader fetches them in several ranges; alpha has the
    format-v2 statistics."""
    make_atlas(root, model="alpha", n_layers=3, ffn_width=80, langs=LANGS, tokens=2000, seed=1, stats=True)
    make_atlas(root, model="beta", n_layers=2, ffn_width=40_000, langs=LANGS[:3], tokens=1500, seed=2)
    return root


def _atlas_v2(root):
    make_atlas(root, model="alpha", n_layers=3, ffn_width=80, langs=LANGS, tokens=2000, seed=7)  # new counts
    make_atlas(root, model="beta", n_layers=2, ffn_width=40_000, langs=LANGS[:3], tokens=1500, seed=2)
    return root


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _same(a, b) -> None:
    assert a.to_arrow().select(["model", "lang", "layer", "neuron"]).equals(b.to_arrow().select(["model", "lang", "layer", "neuron"]))
    np.testing.assert_allclose(a.to_arrow().column("p").to_numpy(), b.to_arrow().column("p").to_numpy())


# -- the commit (no HTTP) ---------------------------------------------------------------------------------------


def test_plan_commit_files_sizes_and_card(tmp_path):
    root = _atlas_v1(tmp_path / "atlas")
    ops, card = hub.plan_commit(root, REPO, license="cc-by-4.0")
    paths = [op.path_in_repo for op in ops]
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != LOCK_NAME)
    generated = {"README.md", hub.FIGURE_PATH, "default/alpha.parquet", "default/beta.parquet"}
    assert sorted(set(paths) - generated) == on_disk  # every table and the manifest, not the lock
    assert len(paths) == len(set(paths))
    for op in ops:
        if op.path_in_repo in on_disk:  # small tables go up unchanged
            assert op.upload_info.size == (root / op.path_in_repo).stat().st_size
    assert next(op for op in ops if op.path_in_repo == "README.md").path_or_fileobj == card.encode()
    png = next(op for op in ops if op.path_in_repo == hub.FIGURE_PATH).path_or_fileobj
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "cc-by-4.0"
    assert front["language"] == sorted(["eng", "fra", "tgl", "cmn", "swh"])
    names = [c["config_name"] for c in front["configs"]]
    assert names == ["alpha", "beta", "alpha-lape-stored", "beta-lape-stored", "models", "languages", "alpha-counts",
                     "beta-counts", "alpha-activations", "alpha-residual", "alpha-ranking", "beta-ranking"]
    assert [c["config_name"] for c in front["configs"] if c.get("default")] == ["alpha"]  # the default sets
    files = {c["config_name"]: c["data_files"] for c in front["configs"]}
    for model in ("alpha", "beta"):
        assert files[model] == [{"split": "train", "path": f"default/{model}.parquet"}]
        assert files[f"{model}-lape-stored"] == [{"split": "train", "path": f"lape/model={model}/lape.parquet"}]
        assert {f["split"] for f in files[f"{model}-counts"]} == set(Atlas(root).langs_of(model))
    for kind in ("activations", "residual"):
        assert {f["split"] for f in files[f"alpha-{kind}"]} == set(LANGS)
    listed = {f["path"] for fs in files.values() for f in fs}
    assert all(p in listed or p in ("atlas.json", "README.md", hub.FIGURE_PATH) or p.startswith("models/") for p in paths)
    assert front["license"] == "cc-by-4.0"
    parsed = DatasetCard(card)  # the Hub's own parser accepts it
    assert parsed.data.license == "cc-by-4.0" and len(parsed.data.configs) == len(names)
    assert "(figures/neurons_per_layer.png)" in card and "synthetic/alpha" in card and "$" not in card.split("```python")[0]
    # the card's figure counts: alpha at 1% of 3×80 neurons, summed over languages, per layer
    by_layer = Atlas(root).neurons("alpha", top="1%").by_layer()
    stored = int(np.sum(by_layer.column("n_neurons").to_numpy()))
    assert f"| `alpha` | [synthetic/alpha](https://huggingface.co/synthetic/alpha) | 3 × 80 | 5 | neuron-atlas | 1% | {stored:,} | 5 |" in card


def test_every_card_config_loads_with_datasets(tmp_path):
    """Each config of the card loads with ``datasets`` from the folder the push would create, with the local rows."""
    datasets = pytest.importorskip("datasets")
    root = _atlas_v1(tmp_path / "atlas")
    ops, card = hub.plan_commit(root, REPO)
    repo = tmp_path / "repo"
    materialise(ops, repo)
    local = Atlas(root)
    configs = yaml.safe_load(card.split("---\n")[1])["configs"]
    for config in configs:
        name = config["config_name"]
        loaded = datasets.load_dataset(str(repo), name, cache_dir=str(tmp_path / "ds-cache"))
        if name == "models":
            assert sorted(loaded["train"]["model"]) == ["alpha", "beta"]
            assert loaded["train"].num_rows == local.models().num_rows
        elif name == "languages":
            assert loaded["train"].to_list() == local.languages().to_pylist()
        elif name.endswith("-counts"):
            model = name.removesuffix("-counts")
            assert sorted(loaded) == local.langs_of(model)
            for lang, split in loaded.items():
                want = pq.read_table(root / f"counts/model={model}/lang={lang}/counts.parquet")
                assert split["fired"] == want.column("fired").to_pylist()
        elif name.endswith(("-activations", "-residual")):
            model, kind = name.rsplit("-", 1)
            assert sorted(loaded) == local.langs_of(model)
            for lang, split in loaded.items():
                want = pq.read_table(root / f"{kind}/model={model}/lang={lang}/{kind}.parquet")
                assert split["mean"] == want.column("mean").to_pylist() and split.num_rows == want.num_rows
        elif name.endswith("-ranking"):
            want = pq.read_table(root / f"lape/model={name.removesuffix('-ranking')}/ranking.parquet")
            assert loaded["train"]["rank"] == want.column("rank").to_pylist()
        elif name.endswith("-lape-stored"):
            want = pq.read_table(root / f"lape/model={name.removesuffix('-lape-stored')}/lape.parquet")
            assert loaded["train"].num_rows == want.num_rows > 0
            assert loaded["train"]["neuron"] == want.column("neuron").to_pylist()
        else:  # the default sets: what neurons(model) answers
            want = local.neurons(name).to_arrow()
            assert loaded["train"].num_rows == want.num_rows > 0
            assert loaded["train"]["neuron"] == want.column("neuron").to_pylist()


def test_large_tables_are_rewritten_with_viewer_sized_row_groups(tmp_path):
    root = make_atlas(tmp_path / "atlas", model="wide", n_layers=2, ffn_width=70_000, langs=2, tokens=50, seed=3)
    ops, _ = hub.plan_commit(root, REPO)
    rewritten = 0
    for op in ops:
        if not op.path_in_repo.endswith(".parquet"):
            continue
        src = op.path_or_fileobj
        data = pq.ParquetFile(io.BytesIO(src) if isinstance(src, bytes) else src)
        assert max(data.metadata.row_group(i).num_rows for i in range(data.metadata.num_row_groups)) <= hub.ROWS_PER_GROUP
        if isinstance(src, bytes) and not op.path_in_repo.startswith("default/"):  # not the generated default sets
            rewritten += 1
            original = pq.read_table(root / op.path_in_repo)
            assert data.read().equals(original)  # same rows, types and metadata
            assert data.schema_arrow.metadata == original.schema.metadata
    assert rewritten >= 3  # two count shards and the ranking hold 140,000 rows each


def test_push_sends_one_commit_of_the_plan(tmp_path, monkeypatch):
    from huggingface_hub import CommitInfo, HfApi

    root = _atlas_v1(tmp_path / "atlas")
    calls = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.setdefault("repo", (repo_id, kw)))
    monkeypatch.setattr(HfApi, "create_branch", lambda self, repo_id, **kw: calls.setdefault("branch", (repo_id, kw)))

    def create_commit(self, repo_id, operations, **kw):
        calls["commit"] = (repo_id, list(operations), kw)
        return CommitInfo(commit_url=f"https://huggingface.co/datasets/{repo_id}/commit/abc", commit_message="m", commit_description="",
                          oid="abc", pr_url=None)

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    info = hub.push(root, REPO, revision="dev", token="hf_test")
    assert info.oid == "abc"
    repo_id, ops, kw = calls["commit"]
    assert repo_id == REPO and kw["repo_type"] == "dataset" and kw["revision"] == "dev" and not kw["create_pr"]
    assert calls["repo"][1]["repo_type"] == "dataset" and calls["branch"][1]["branch"] == "dev"
    planned, _ = hub.plan_commit(root, REPO)
    assert [op.path_in_repo for op in ops] == [op.path_in_repo for op in planned]


def test_push_command_dry_run_lists_the_commit(tmp_path):
    from neuron_atlas.cli import app

    root = _atlas_v1(tmp_path / "atlas")
    result = CliRunner().invoke(app, ["push", str(root), "--repo", REPO, "--dry-run"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "README.md" in result.output and "lape/model=alpha/lape.parquet" in result.output and "dry run" in result.output


def test_hf_urls_parse_and_bad_ones_say_what_is_expected():
    assert hub.parse_hf_url("hf://datasets/org/name") == hub.HubAddress("org/name", None, "")
    assert hub.parse_hf_url("hf://datasets/org/name@v1.0/sub/dir") == hub.HubAddress("org/name", "v1.0", "sub/dir")
    assert hub.parse_hf_url("hf://datasets/org/name@refs%2Fpr%2F3").revision == "refs/pr/3"
    with pytest.raises(AtlasError, match="dataset repos"):
        hub.parse_hf_url("hf://org/name")
    with pytest.raises(AtlasError, match="expected hf://datasets"):
        hub.parse_hf_url("hf://datasets/org")
    with pytest.raises(AtlasError, match="is a model repo; atlases are dataset repos") as err:
        hub.parse_hf_url("hf://models/org/name")
    assert "datasets/models" not in str(err.value)
    with pytest.raises(AtlasError, match="mode="):
        hub.open_hub(URL, mode="eager")


# -- reading through olah ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    """Git repositories of test-org/atlas (commit 1, tagged v1; commit 2 on main) and a model repo; local copies."""
    if olah_python() is None or shutil.which("git") is None:
        pytest.skip("needs git and olah (pip install olah, or set OLAH_PYTHON to a Python that has it)")
    base = tmp_path_factory.mktemp("hub")
    repo_dir = base / "mirrors" / "datasets" / REPO
    shas, locals_ = [], []
    for version, build in (("v1", _atlas_v1), ("v2", _atlas_v2)):
        atlas = build(base / f"atlas-{version}")
        ops, _ = hub.plan_commit(atlas, REPO)
        content = base / f"content-{version}"
        materialise(ops, content)
        shas.append(git_commit_folder(content, repo_dir, f"atlas {version}"))
        locals_.append(atlas)
        if version == "v1":
            subprocess.run(["git", "-C", str(repo_dir), "tag", "v1"], check=True)
    model_repo = base / "tiny-model"
    model_repo.mkdir()
    (model_repo / "config.json").write_text(
        '{"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 2, "intermediate_size": 24, '
        '"hidden_size": 8, "hidden_act": "silu"}')
    git_commit_folder(model_repo, base / "mirrors" / "models" / "test-org" / "tiny-model", "config")
    return {"shas": shas, "atlases": locals_, "base": base}


@pytest.fixture(scope="module", params=["plain", "ranges"])
def served(repos, request):
    """olah on loopback serving the repos: plain olah as installed (answers ranges with the whole file), or
    wrapped to answer ranges with 206 and the slice, log bytes and cut transfers on demand."""
    ranges = request.param == "ranges"
    server = start_olah(olah_python(), repos["base"] / "mirrors", repos["base"] / f"olah-{request.param}", ranges=ranges)
    yield repos | {"server": server}
    server.stop()


def _wrapped(server) -> None:
    """Skip a test that needs the wrapper's log of bytes and tokens, or its failure switch."""
    if not server.ranges:
        pytest.skip("needs the range-serving wrapper's request details")


@pytest.fixture
def hub_env(served, monkeypatch, tmp_path):
    """HF_ENDPOINT at the olah server, no token, online, a fresh HF cache (never the user's), and small read
    blocks (fsspec's per-protocol config) so each file is read in several range requests, as a large one would."""
    import fsspec
    from huggingface_hub import constants

    monkeypatch.setitem(fsspec.config.conf, "hf", {"block_size": 1024})
    monkeypatch.setenv("HF_ENDPOINT", served["server"].endpoint)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(filesystem, "_WARNED", set())
    served["server"].clear_log()
    served["server"].fail_downloads(None)
    return served | {"cache": tmp_path / "hf-cache"}


def _fetched(server) -> list[str]:
    """Paths of files whose bytes the server sent (file downloads, not listings), once per GET."""
    return [r["path"].split("/resolve/", 1)[1].split("/", 1)[1] for r in server.requests()
            if "/resolve/" in r["path"] and r["method"] == "GET"]


def test_lazy_query_for_one_model_reads_only_its_files(hub_env):
    server, (_, sha2), (_, local2) = hub_env["server"], hub_env["shas"], hub_env["atlases"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        atlas = hub.open_hub(URL)
        assert atlas.revision == sha2
        got = atlas.neurons("beta", lang=["eng_Latn", "fra_Latn"], top="2%")
    _same(got, Atlas(local2).neurons("beta", lang=["eng_Latn", "fra_Latn"], top="2%"))
    notices = [str(w.message) for w in caught if "ignores HTTP Range requests" in str(w.message)]
    assert len(notices) == (0 if server.ranges else 1), notices  # plain olah answers ranges with 200: said once
    files = _fetched(server)
    assert files and all("model=alpha" not in f for f in files), files
    assert "lape/model=beta/lape.parquet" in files
    if server.ranges:
        sent = sum(r["bytes"] for r in server.requests() if "/resolve/" in r["path"])
        total = sum(p.stat().st_size for p in local2.rglob("*.parquet"))
        assert sent < total
    else:  # each file whole, once: the first range probe, then one download per file read (not one per row group)
        assert len(files) <= len(set(files)) + 1, files
        assert list((hub_env["cache"] / "datasets--test-org--atlas").rglob("lape.parquet"))

    server.clear_log()  # recomputing from counts reads beta's shards, still nothing of alpha
    among = atlas.neurons("beta", lang="tgl_Latn", among=["tgl_Latn", "eng_Latn"])
    _same(among, Atlas(local2).neurons("beta", lang="tgl_Latn", among=["tgl_Latn", "eng_Latn"]))
    files = set(_fetched(server))
    assert {f for f in files if f.startswith("counts/")} == {
        "counts/model=beta/lang=tgl_Latn/counts.parquet", "counts/model=beta/lang=eng_Latn/counts.parquet"}
    assert all("model=alpha" not in f for f in files)


def test_sql_over_the_hub_reads_only_the_queried_model(hub_env):
    server, (_, local2) = hub_env["server"], hub_env["atlases"]
    atlas = hub.open_hub(URL)
    server.clear_log()
    got = atlas.sql("SELECT lang, count(*) AS n FROM counts WHERE model = 'beta' GROUP BY lang ORDER BY lang")
    want = Atlas(local2).sql("SELECT lang, count(*) AS n FROM counts WHERE model = 'beta' GROUP BY lang ORDER BY lang")
    assert got.equals(want)
    files = set(_fetched(server))
    # no shard of another model; its small per-model files (row, derived tables) are validated, as locally
    assert files and all("counts/model=alpha" not in f for f in files), files
    validated = files  # a server ignoring ranges sent the derived tables whole then; the HF cache keeps them
    server.clear_log()  # the default-set view joins the (tiny) models table, but reads no other model's data
    query = "SELECT lang, count(*) AS n FROM lape WHERE model = 'beta' GROUP BY lang ORDER BY lang"
    assert atlas.sql(query).equals(Atlas(local2).sql(query))
    files = set(_fetched(server))
    assert "lape/model=beta/lape.parquet" in files | validated
    assert all("model=alpha" not in f for f in files if not f.startswith("models/")), files


def test_revision_pinning(hub_env):
    (sha1, sha2), (local1, local2) = hub_env["shas"], hub_env["atlases"]
    old = hub.open_hub(f"{URL}@{sha1}")
    tagged = hub.open_hub(f"{URL}@v1")
    new = hub.open_hub(f"{URL}@main")
    assert (old.revision, tagged.revision, new.revision) == (sha1, sha1, sha2)
    want_old, want_new = Atlas(local1).neurons("alpha"), Atlas(local2).neurons("alpha")
    assert not want_old.to_arrow().select(["lang", "layer", "neuron"]).equals(want_new.to_arrow().select(["lang", "layer", "neuron"]))
    _same(old.neurons("alpha"), want_old)
    _same(tagged.neurons("alpha"), want_old)
    _same(new.neurons("alpha"), want_new)
    meta = json.loads(old.neurons("alpha").to_arrow().schema.metadata[b"neuron_atlas"])
    assert meta["revision"] == sha1 and meta["atlas"] == f"hf://datasets/{REPO}@{sha1}"


def test_open_takes_a_bare_repo_id_and_revision_as_load_dataset_does(hub_env, tmp_path, monkeypatch):
    (sha1, sha2), (local1, _) = hub_env["shas"], hub_env["atlases"]
    monkeypatch.chdir(tmp_path)  # no local folder called test-org/atlas here
    assert na.open(REPO).revision == sha2
    tagged = na.open(REPO, revision="v1")
    assert tagged.revision == sha1
    _same(tagged.neurons("alpha"), Atlas(local1).neurons("alpha"))
    with pytest.raises(InvalidParameterError, match="give one of them"):
        na.open(f"{URL}@v1", revision="main")


def test_snapshot_then_offline(hub_env, monkeypatch):
    from huggingface_hub import constants

    (sha1, sha2), (_, local2), cache = hub_env["shas"], hub_env["atlases"], hub_env["cache"]
    snap = hub.open_hub(URL, mode="snapshot", cache_dir=cache)
    assert snap.revision == sha2 and snap.layout.fs is None
    assert str(snap.layout.root).startswith(str(cache)) and f"snapshots/{sha2}" in str(snap.layout.root)
    _same(snap.neurons("alpha", lang="tgl_Latn"), Atlas(local2).neurons("alpha", lang="tgl_Latn"))

    # offline: the server is unreachable and the Hub client is told so; both modes answer from the cache
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for mode in ("snapshot", "lazy"):
        offline = hub.open_hub(URL, mode=mode, cache_dir=cache)
        assert offline.revision == sha2 and offline.layout.fs is None
        _same(offline.neurons("beta"), Atlas(local2).neurons("beta"))
    assert hub.open_hub(f"{URL}@{sha2}", mode="snapshot", cache_dir=cache).revision == sha2
    with pytest.raises(AtlasNotFoundError, match="not in the local Hugging Face cache"):
        hub.open_hub(f"{URL}@{sha1}", mode="snapshot", cache_dir=cache)


def test_interrupted_download_leaves_the_cache_consistent(hub_env, monkeypatch):
    from huggingface_hub import constants

    server, (_, sha2), cache = hub_env["server"], hub_env["shas"], hub_env["cache"]
    _wrapped(server)
    server.fail_downloads("lape.parquet")
    with pytest.raises(AtlasError, match="could not reach the Hub|refused") as err:
        hub.open_hub(URL, mode="snapshot", cache_dir=cache)
    assert REPO in str(err.value)
    assert any(r["cut"] for r in server.requests())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(AtlasNotFoundError, match="incomplete|not in the local"):  # never half an atlas
        hub.open_hub(URL, mode="snapshot", cache_dir=cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    server.fail_downloads(None)
    assert hub.open_hub(URL, mode="snapshot", cache_dir=cache).revision == sha2  # a rerun completes it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub.open_hub(URL, mode="snapshot", cache_dir=cache).models().num_rows == 2


def test_missing_repo_revision_and_unreachable_hub_errors(hub_env, monkeypatch):
    with pytest.raises(AtlasNotFoundError, match="not found.*private.*HF_TOKEN"):
        hub.open_hub("hf://datasets/test-org/no-such-atlas")
    with pytest.raises(AtlasNotFoundError, match="no revision 'no-such-branch'"):
        hub.open_hub(f"{URL}@no-such-branch")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(AtlasError, match="could not reach the Hub at http://127.0.0.1"):
        hub.open_hub(URL)


def test_a_file_read_that_never_answers_fails_after_one_timeout(hub_env, monkeypatch):
    from huggingface_hub import constants

    server = hub_env["server"]
    _wrapped(server)
    atlas = hub.open_hub(URL)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    server.fail_downloads("lape.parquet", how="stall")
    start = time.monotonic()
    with pytest.raises(AtlasError, match=f"the Hub at {server.endpoint} did not answer a request for {REPO} in time"):
        atlas.neurons("beta")
    assert time.monotonic() - start < 3  # one timeout, not one per retry


def test_sql_timeout_bounds_remote_reads(hub_env):
    """A stalled file read ends by the query's timeout, not after HF_HUB_DOWNLOAD_TIMEOUT (10 s) per file."""
    from huggingface_hub import constants

    server = hub_env["server"]
    _wrapped(server)
    assert constants.HF_HUB_DOWNLOAD_TIMEOUT >= 10
    atlas = hub.open_hub(URL)
    server.fail_downloads("counts.parquet", how="stall")
    start = time.monotonic()
    with pytest.raises(AtlasError, match="timeout"):
        atlas.sql("SELECT sum(fired) AS s FROM counts", timeout=2)
    assert time.monotonic() - start < 6
    server.fail_downloads(None)
    assert atlas.sql("SELECT count(*) AS n FROM models").column("n")[0].as_py() > 0  # the connection is free again


def test_token_is_sent(hub_env, monkeypatch):
    server = hub_env["server"]
    _wrapped(server)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_test_token")
    assert hub.open_hub(URL).neurons("beta").table.num_rows > 0
    auth = {r["authorization"] for r in server.requests()}
    assert auth == {"Bearer hf_secret_test_token"}  # every request, API and file, carries HF_TOKEN


def test_import_reads_the_model_shape_from_its_hub_config(hub_env, tmp_path):
    _wrapped(hub_env["server"])
    torch = pytest.importorskip("torch")
    from neuron_atlas.importers import import_neuron_sets

    file = tmp_path / "sets.pth"
    torch.save([[torch.tensor([0, 23]), torch.tensor([5])], [torch.tensor([], dtype=torch.int64)] * 2], file)
    import_neuron_sets(file, tmp_path / "atlas", "tiny", ["en", "tl"], top_rate=0.05, source="me",
                       hf_repo="test-org/tiny-model")
    row = Atlas(tmp_path / "atlas").model("tiny")
    assert (row.n_layers, row.ffn_width, row.hidden_size, row.architecture) == (2, 24, 8, "LlamaForCausalLM")
    assert Atlas(tmp_path / "atlas").neurons("tiny", top="5%").sizes() == {"eng_Latn": 3, "tgl_Latn": 0}
    torch.save([[torch.tensor([24]), torch.tensor([5])]], file)
    with pytest.raises(AtlasError, match="holds neuron 24, beyond the FFN width 24"):
        import_neuron_sets(file, tmp_path / "atlas2", "tiny", ["en"], top_rate=0.05, source="me",
                           hf_repo="test-org/tiny-model")
    with pytest.raises(AtlasError, match="(?s)could not read config.json of test-org/no-model.*--n-layers"):
        import_neuron_sets(file, tmp_path / "atlas3", "tiny", ["en"], top_rate=0.05, source="me",
                           hf_repo="test-org/no-model")


def test_a_server_that_never_answers_gives_a_clear_error_in_bounded_time(monkeypatch, tmp_path):
    """A hung server (accepts, never answers) fails after one timeout, not one per retry; default timeouts are 10 s."""
    from huggingface_hub import constants

    assert constants.HF_HUB_ETAG_TIMEOUT <= 30 and filesystem.timeouts().read <= 30  # the default bound
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with silent_server() as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        for mode in ("lazy", "snapshot"):
            start = time.monotonic()
            with pytest.raises(AtlasError, match=f"the Hub at {url} did not answer .*HF_HUB_ETAG_TIMEOUT"):
                hub.open_hub(URL, mode=mode, cache_dir=tmp_path)
            assert time.monotonic() - start < 3


@pytest.mark.parametrize(("status", "content_range", "start", "end", "ok"), [
    (206, "bytes 10-19/100", 10, 20, True),
    (206, "bytes 90-99/100", 90, 120, True),   # the server clips the end to the file
    (206, "bytes 0-99/100", 10, 20, False),    # a different range than asked for
    (206, "bytes 10-19/*", 10, 20, True),
    (206, None, 10, 20, False),
    (200, None, 10, 20, False),                # the whole file for a slice: the server ignores ranges
    (200, None, 0, 100, True),                 # the whole file was asked for
])
def test_range_answers_are_checked(status, content_range, start, end, ok):
    headers = {"content-range": content_range} if content_range else {}
    assert filesystem._answers_range(headers, status, start, end, 100) is ok


def test_retries_are_bounded_with_backoff_on_5xx_429_and_resets(monkeypatch):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    waits = []
    monkeypatch.setattr(time, "sleep", waits.append)

    def failing(status: int | None, times: int):
        calls = []

        def call():
            calls.append(1)
            if len(calls) <= times:
                if status is None:
                    raise httpx2.ReadError("connection reset by peer")
                raise HfHubHTTPError(f"{status}", response=httpx2.Response(status, request=httpx2.Request("GET", "http://x")))
            return "answer"
        return call, calls

    for status in (503, 429, None):
        call, calls = failing(status, 2)
        assert filesystem.with_retries(call, "test") == "answer" and len(calls) == 3
    assert waits[:2] == [0.5, 1.0]
    call, calls = failing(500, 99)
    with pytest.raises(HfHubHTTPError):
        filesystem.with_retries(call, "test")
    assert len(calls) == filesystem.RETRIES + 1
    call, calls = failing(404, 99)  # not worth another try
    with pytest.raises(HfHubHTTPError):
        filesystem.with_retries(call, "test")
    assert len(calls) == 1


def test_explorer_site_of_a_hub_atlas_reads_lazily(hub_env, tmp_path):
    """The explorer reads an hf:// atlas through the Atlas API: one model's site fetches none of the other's files,
    and its pages say what the local atlas' pages say."""
    from neuron_atlas.explore import build_site

    server, (_, local2) = hub_env["server"], hub_env["atlases"]
    report = build_site(URL, tmp_path / "hub-site", models=["alpha"])
    assert report.written == 1 + 1 + len(LANGS)
    assert [f for f in _fetched(server) if "model=beta" in f] == []
    build_site(local2, tmp_path / "local-site", models=["alpha"])
    for page in ("models/alpha/index.html", "models/alpha/lang/tgl_Latn.html"):
        hub_page = (tmp_path / "hub-site" / page).read_text().replace(URL, "ATLAS")
        local_page = (tmp_path / "local-site" / page).read_text().replace(str(local2), "ATLAS")
        assert hub_page == local_page
    server.clear_log()
    assert build_site(URL, tmp_path / "hub-site", models=["alpha"]).written == 0  # unchanged: nothing regenerated
    assert not [f for f in _fetched(server) if f.startswith("counts/")]


@pytest.mark.skipif(not (Path(sys.prefix).parent / ".olah-venv").is_dir(), reason="scripts/setup.sh full makes .olah-venv")
def test_the_olah_venv_setup_makes_is_found_without_any_variable(monkeypatch):
    """After `scripts/setup.sh full`, plain `pytest` runs the Hub tests: no OLAH_PYTHON needed."""
    monkeypatch.delenv("OLAH_PYTHON", raising=False)
    assert olah_python() == str(Path(sys.prefix).parent / ".olah-venv" / "bin" / "python")
