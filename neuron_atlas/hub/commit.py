"""One repo on the Hub to publish to, the one sequence every publisher uses (an atlas, a build's output, an
adapter): create the repo if it is missing, and the branch too unless the commit is a pull request, then commit.
Every failure becomes the ``AtlasError`` that ``address.hub_error`` makes of it, naming the repo and revision."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .address import endpoint, hub_error, resolve_token

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi


class HubRepo:
    """A dataset or model repo at the configured endpoint, with a token (``token`` or the logged-in user's)."""

    def __init__(self, repo_id: str, repo_type: str = "dataset", revision: str | None = None,
                 token: str | None = None) -> None:
        from huggingface_hub import HfApi

        self.repo_id, self.repo_type, self.revision = repo_id, repo_type, revision
        self.where = endpoint()
        self.api: HfApi = HfApi(endpoint=self.where, token=resolve_token(token))

    def _failed(self, exc: Exception) -> Exception:
        return hub_error(exc, self.repo_id, self.revision, self.where, repo_type=self.repo_type)

    def ensure(self, *, private: bool | None = None, create_pr: bool = False) -> None:
        """Create the repo if missing, and its branch ``revision`` (unless ``create_pr``: a PR needs none)."""
        try:
            self.api.create_repo(self.repo_id, repo_type=self.repo_type, private=private, exist_ok=True)
            if self.revision not in (None, "main") and not create_pr:
                self.api.create_branch(self.repo_id, repo_type=self.repo_type, branch=self.revision, exist_ok=True)
        except Exception as exc:
            raise self._failed(exc) from exc

    def commit(self, ops: list[CommitOperationAdd], message: str, *, create_pr: bool = False) -> CommitInfo:
        """Send ``ops`` as one commit to ``revision`` (or a pull request against it)."""
        try:
            return self.api.create_commit(self.repo_id, ops, repo_type=self.repo_type, revision=self.revision,
                                          create_pr=create_pr, commit_message=message)
        except Exception as exc:
            raise self._failed(exc) from exc

    def download(self, local_dir: Any, allow_patterns: list[str]) -> None:
        """Fill ``local_dir`` with the repo's files matching ``allow_patterns`` at ``revision``."""
        try:
            self.api.snapshot_download(self.repo_id, repo_type=self.repo_type, revision=self.revision,
                                       local_dir=local_dir, allow_patterns=allow_patterns)
        except Exception as exc:
            raise self._failed(exc) from exc


def publish(repo_id: str, ops: list[CommitOperationAdd], message: str, *, repo_type: str = "dataset",
            revision: str = "main", create_pr: bool = False, token: str | None = None,
            private: bool | None = None) -> CommitInfo:
    """Create the repo (and branch) if missing, then send ``ops`` as one commit; returns the commit's info."""
    repo = HubRepo(repo_id, repo_type, revision, token)
    repo.ensure(private=private, create_pr=create_pr)
    return repo.commit(ops, message, create_pr=create_pr)
