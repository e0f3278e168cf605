"""Build straight into a Hub dataset repo (``out='hf://datasets/org/name[@branch]'``).

The atlas is built in a local mirror of the repo (under the cache), first filled with what the repo already
holds, so a rerun counts only the missing shards; new and changed files are pushed in one commit per
``COMMIT_EVERY`` count shards, and the last commit adds the derived tables and the dataset card. A push that
fails loses nothing: the files stay in the mirror and go with the next commit.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import AtlasError
from ..hub.address import parse_hf_url
from ..hub.commit import HubRepo
from ..hub.publish import atlas_files, plan_commit, upload_operation
from .._utils.files import cache_dir
from ..format.schema import MANIFEST

COMMIT_EVERY = 16  # count shards per commit: few commits (the Hub rate-limits them), little left unpushed


class HubOutput:
    """A Hub dataset repo as a build's output, through the local mirror ``root``."""

    def __init__(self, url: str, root: Path | None = None) -> None:
        address = parse_hf_url(url)
        if address.folder:
            raise AtlasError(f"{url!r}: a build writes the atlas at the root of the repo; drop '/{address.folder}'")
        self.repo_id, self.revision = address.repo_id, address.revision
        name = f"{self.repo_id.replace('/', '--')}@{self.revision or 'main'}"
        self.root = root or cache_dir() / "hub-builds" / name
        self.repo = HubRepo(self.repo_id, "dataset", self.revision)
        self.repo.ensure()
        self.repo.download(self.root, [MANIFEST, "*.parquet"])
        shutil.rmtree(self.root / ".cache", ignore_errors=True)  # the download's bookkeeping, not atlas files
        self._pushed = {self._key(f): self._state(f) for f in self._files()}

    def sync(self, final: bool = False) -> None:
        """Commit the files changed since the last commit once ``COMMIT_EVERY`` shards wait, or all of them
        with the dataset card when ``final``."""
        changed = [f for f in self._files() if self._pushed.get(self._key(f)) != self._state(f)]
        shards = sum(self._key(f).startswith("counts/") for f in changed)
        if not changed or (shards < COMMIT_EVERY and not final):
            return
        paths = {self._key(f) for f in changed}
        if final:  # plan_commit adds the card and figure of the whole atlas
            ops = [op for op in plan_commit(self.root, self.repo_id)[0]
                   if op.path_in_repo in paths or not op.path_in_repo.endswith((".parquet", ".json"))]
        else:
            ops = [upload_operation(self.root, f) for f in changed]
        self.repo.commit(ops, f"neuron-atlas build: {shards} count shards, {len(ops)} files")
        self._pushed.update({self._key(f): self._state(f) for f in changed})

    def _files(self) -> list[Path]:
        return [f for f in atlas_files(self.root) if f.is_file()] if self.root.exists() else []

    def _key(self, file: Path) -> str:
        return file.relative_to(self.root).as_posix()

    @staticmethod
    def _state(file: Path) -> tuple[int, int]:
        stat = file.stat()
        return stat.st_size, stat.st_mtime_ns
