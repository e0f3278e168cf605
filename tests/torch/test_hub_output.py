"""Building into a Hub dataset repo: batched commits, resumable from what the repo holds (a fake HfApi keeps the
repo in memory; no network)."""
import io
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi
from test_build import LANGS, TinyCorpus, loaded, run, shard_tables, tokenizer  # noqa: F401 - fixtures

from neuron_atlas.builder import hub_output, record

REPO = "me/atlas"


class FakeRepo:
    """A dataset repo in memory: the HfApi calls a build makes, recorded."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.commits: list[list[str]] = []

    def install(self, monkeypatch):
        repo = self
        monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)

        def snapshot_download(self, repo_id, *, local_dir, allow_patterns=None, **kw):
            assert repo_id == REPO and kw["repo_type"] == "dataset"
            for path, data in repo.files.items():
                if path.endswith((".parquet", ".json")):
                    (Path(local_dir) / path).parent.mkdir(parents=True, exist_ok=True)
                    (Path(local_dir) / path).write_bytes(data)
            (Path(local_dir) / ".cache").mkdir(parents=True, exist_ok=True)
            return str(local_dir)

        def create_commit(self, repo_id, operations, **kw):
            ops = list(operations)
            for op in ops:
                source = op.path_or_fileobj
                repo.files[op.path_in_repo] = source if isinstance(source, bytes) else Path(source).read_bytes()
            repo.commits.append([op.path_in_repo for op in ops])

        monkeypatch.setattr(HfApi, "snapshot_download", snapshot_download)
        monkeypatch.setattr(HfApi, "create_commit", create_commit)

    def tables(self):
        return {Path(p): pq.read_table(io.BytesIO(b)) for p, b in self.files.items() if p.endswith(".parquet")
                and (p.startswith("counts/") or p.startswith("lape/"))}


def test_build_into_a_hub_repo_commits_in_batches_and_resumes_from_the_repo(loaded, tmp_path, monkeypatch):
    run(loaded, tmp_path / "local")
    repo = FakeRepo()
    repo.install(monkeypatch)
    monkeypatch.setenv("NEURON_ATLAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hub_output, "COMMIT_EVERY", 2)
    count = record.Recorder.count
    calls = []

    def crash_on_fourth(self, *a, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return count(self, *a, **kw)

    monkeypatch.setattr(record.Recorder, "count", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        run(loaded, f"hf://datasets/{REPO}")
    pushed = [p for c in repo.commits for p in c if p.startswith("counts/")]
    assert len(repo.commits) == 1 and len(pushed) == 2  # the third shard waits in the mirror for a full batch

    shutil.rmtree(tmp_path / "cache")  # another machine: only the repo remains
    monkeypatch.setattr(record.Recorder, "count", count)
    report = run(loaded, f"hf://datasets/{REPO}")
    assert len(report.existing) == 2 and len(report.built) == 3
    shards = [p for c in repo.commits for p in c if p.startswith("counts/")]
    assert len(shards) == len(set(shards)) == len(LANGS)  # every shard pushed exactly once
    assert all(sum(p.startswith("counts/") for p in c) <= 2 for c in repo.commits[:-1])
    assert "README.md" in repo.commits[-1] and "lape/model=tiny/lape.parquet" in repo.commits[-1]
    local = shard_tables(tmp_path / "local")
    remote = repo.tables()
    assert {str(k) for k in local} == {str(k) if "counts" in str(k) else k.stem for k in remote}
    for key, table in remote.items():
        assert table.equals(local[key if "counts" in str(key) else key.stem]), key
