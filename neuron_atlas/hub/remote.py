"""Where a Hub atlas is read from: ``hf://datasets/org/name[@rev]`` resolved to one commit, then a lazy root on a
pinned filesystem or a snapshot folder in the Hugging Face cache. Below ``Atlas``: it returns roots, not atlases.

Opening resolves the revision to a commit sha first, so every file read (and every result's metadata) is pinned
to one commit.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import AtlasError, AtlasNotFoundError, InvalidParameterError
from .address import endpoint, hub_error, offline, parse_hf_url, resolve_token
from .filesystem import hub_filesystem, with_retries
from ..format.schema import MANIFEST


@dataclass(frozen=True)
class RemoteRoot:
    """An atlas root to open: a path on ``fs`` (None: a local folder) and the commit sha it is pinned to."""

    root: str
    fs: Any
    revision: str


def dataset_info(repo_id: str, revision: str | None, token: str | None):
    """The repo's info at ``revision`` (None: main); failures become AtlasErrors that say what to do."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    where = endpoint()
    api = HfApi(endpoint=where, token=resolve_token(token))

    def info(rev: str):
        return with_retries(lambda: api.dataset_info(repo_id, revision=rev, expand=["sha", "lastModified"],
                                                          timeout=constants.HF_HUB_ETAG_TIMEOUT),
                            f"dataset info of {repo_id}")

    try:
        return info(revision or "main")
    except RepositoryNotFoundError as exc:
        if revision in (None, "main") or isinstance(exc, GatedRepoError):
            raise hub_error(exc, repo_id, revision, where) from exc
        try:  # some servers answer an unknown revision as an unknown repo: tell the two apart
            info("main")
        except Exception:  # noqa: BLE001 - the repo itself is not there: report the first error
            raise hub_error(exc, repo_id, revision, where) from exc
        raise hub_error(RevisionNotFoundError(str(exc), response=exc.response), repo_id, revision, where) from exc
    except Exception as exc:
        raise hub_error(exc, repo_id, revision, where) from exc


def snapshot(repo_id: str, revision: str | None = None, token: str | None = None,
             cache_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Download (or, offline, find) the repo's snapshot in the HF cache; return its folder and commit sha.

    ``atlas.json`` is fetched last, so a snapshot that has it is complete: an interrupted download leaves
    a cache entry that is refused with a clear error, never half an atlas.
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    where = endpoint()
    kw: dict[str, Any] = {"repo_id": repo_id, "repo_type": "dataset", "cache_dir": cache_dir,
                          "token": resolve_token(token), "endpoint": where}
    online, failure = not offline(), None
    if online:
        try:  # resolve to a commit within the timeouts (snapshot_download's own request has none)
            sha = dataset_info(repo_id, revision, token).sha
        except AtlasNotFoundError:
            raise
        except AtlasError as exc:  # the network failed: a cached snapshot of the revision may still serve
            online, failure = False, exc
    try:
        if online:
            folder = Path(snapshot_download(revision=sha, ignore_patterns=[MANIFEST], **kw))
            # by the revision's name, so the cache records where it points (refs/) for offline opens
            manifest = Path(hf_hub_download(filename=MANIFEST, revision=revision or "main", **kw))
            if manifest.parent != folder:  # the other snapshot holds only the manifest: never let it look complete
                manifest.unlink()
                raise AtlasError(f"dataset {repo_id}@{revision or 'main'} moved from {sha} to {manifest.parent.name} "
                                 "during the download; open it again")
        else:
            folder = Path(snapshot_download(revision=revision or "main", local_files_only=True, **kw))
    except Exception as exc:
        raise (failure or hub_error(exc, repo_id, revision, where)) from exc
    if not (folder / MANIFEST).exists():
        raise AtlasNotFoundError(
            f"the cached snapshot of {repo_id}@{folder.name} at {folder} is incomplete (no {MANIFEST}): an earlier "
            "download was interrupted. Open it once more with the network available to finish it."
        )
    return folder, folder.name


def locate(url: str, mode: Literal["lazy", "snapshot"] = "lazy", token: str | None = None,
           cache_dir: str | os.PathLike | None = None) -> RemoteRoot:
    """The root of the atlas at ``hf://datasets/org/name[@rev]``, pinned to the commit the revision points at.

    ``lazy`` reads files on demand over a pinned HfFileSystem (a query for one model fetches only its files);
    ``snapshot`` downloads the repo into the HF cache. With HF_HUB_OFFLINE=1 both use the cached snapshot.
    ``cache_dir`` (default: the HF cache) holds snapshots, and the whole files a lazy read downloads from a server
    that ignores ranges.
    """
    if mode not in ("lazy", "snapshot"):
        raise InvalidParameterError(f"mode={mode!r}; use 'lazy' (read files on demand) or 'snapshot' (download, "
                                    "works offline)")
    address = parse_hf_url(url)
    if mode == "snapshot" or offline():
        folder, sha = snapshot(address.repo_id, address.revision, token, cache_dir)
        return RemoteRoot(str(folder / address.folder if address.folder else folder), None, sha)
    info = dataset_info(address.repo_id, address.revision, token)
    root = posixpath.join(f"datasets/{address.repo_id}@{info.sha}", address.folder) if address.folder else \
        f"datasets/{address.repo_id}@{info.sha}"
    fs = hub_filesystem(token, info.last_modified, (address.repo_id, info.sha),
                        None if cache_dir is None else os.fspath(cache_dir))
    return RemoteRoot(root, fs, info.sha)
