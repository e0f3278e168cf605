"""HfFileSystem for reading an atlas pinned to one commit: range reads checked, bounded in time, retried.

A Hub-compatible server may answer a ``Range`` request with ``200`` and the whole file (legal HTTP; plain olah
does). Reading that body as the slice corrupts every Parquet read, so each range answer is checked: on a mismatch
the file is downloaded once into the Hugging Face cache (pinned to the commit) and every read of it is served
from there. Every request has a connect and a read timeout (HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT) and is
retried a bounded number of times, with backoff, on 5xx/429 answers and dropped connections.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import AtlasError, warn
from .address import endpoint, hub_error, resolve_token

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRIES = 3  # retries after the first try, waiting BASE_WAIT, then twice as long each time (at most MAX_WAIT)
BASE_WAIT, MAX_WAIT = 0.5, 4.0
RETRY_STATUS = (429, 500, 502, 503, 504)
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_WARNED: set[str] = set()


def timeouts(deadline: float | None = None):
    """httpx timeouts of one request: connect within HF_HUB_ETAG_TIMEOUT, each read within HF_HUB_DOWNLOAD_TIMEOUT,
    and both within what is left until ``deadline`` (``time.monotonic()``; an ``sql(timeout=)``), if any."""
    import httpx2
    from huggingface_hub import constants

    read, connect = float(constants.HF_HUB_DOWNLOAD_TIMEOUT), float(constants.HF_HUB_ETAG_TIMEOUT)
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AtlasError("the query's timeout passed; no further file is read")
        read, connect = min(read, left), min(connect, left)
    return httpx2.Timeout(read, connect=connect)


def _retry_exceptions() -> tuple[type[Exception], ...]:
    """Transport failures worth another try: connections reset or dropped mid-answer. Timeouts and refused
    connections are reported at once: a server that stayed silent for the whole timeout, or is down, would only
    multiply the wait."""
    import httpx2

    return httpx2.ReadError, httpx2.WriteError, httpx2.RemoteProtocolError


def with_retries(call: Callable[[], T], what: str) -> T:
    """Run a huggingface_hub call, retrying it (RETRIES times, with backoff) on 5xx/429 answers and dropped connections."""
    from huggingface_hub.errors import HfHubHTTPError

    for attempt in range(RETRIES):
        try:
            return call()
        except HfHubHTTPError as exc:
            if exc.response is None or exc.response.status_code not in RETRY_STATUS:
                raise
            reason: Exception = exc
        except _retry_exceptions() as exc:
            reason = exc
        wait = min(MAX_WAIT, BASE_WAIT * 2**attempt)
        logger.warning("%s failed (%s); retrying in %.1fs", what, reason, wait)
        time.sleep(wait)
    return call()


def _answers_range(headers: Any, status: int, start: int, end: int, size: int) -> bool:
    """Whether a response is exactly bytes ``start``..``end - 1`` (the server may clip ``end`` to the file size)."""
    if status == 200:
        return start == 0 and end >= size
    match = _CONTENT_RANGE.fullmatch(headers.get("content-range", "").strip())
    if status != 206 or match is None:
        return False
    first, last, total = int(match[1]), int(match[2]), match[3]
    return first == start and (last == end - 1 or (total != "*" and last == int(total) - 1 and end > int(total)))


@functools.cache
def _classes() -> tuple[type, type]:
    """The filesystem and file classes (defined on first use: huggingface_hub is imported only for Hub reads)."""
    from fsspec.spec import AbstractBufferedFile
    from huggingface_hub import HfFileSystem, hf_hub_download
    from huggingface_hub.hf_file_system import HfFileSystemFile
    from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

    class CheckedRangeFile(HfFileSystemFile):
        """A remote file whose range reads are checked: served from a whole local copy when the server ignores ranges."""

        fs: PinnedHfFileSystem

        def read(self, length: int = -1) -> bytes:
            """Read through the checked, time-bounded range reads (HfFileSystemFile streams a whole-file read
            with its own retries, up to six timeouts long)."""
            return AbstractBufferedFile.read(self, length)

        def _fetch_range(self, start: int, end: int) -> bytes:
            local = self.fs.local_copies.get(self.path)
            if local is None:
                try:
                    data = None if self.fs.ignores_ranges else self._get_range(start, end)
                    if data is not None:
                        return data
                    local = self.fs.download(self)
                except Exception as exc:
                    where = self.resolved_path
                    raise hub_error(exc, where.repo_id, where.revision, self.fs.endpoint) from exc
            with open(local, "rb") as f:
                f.seek(start)
                return f.read(end - start)

        def _get_range(self, start: int, end: int) -> bytes | None:
            """Bytes ``start``..``end - 1`` from the server, or None (noted once) if it answered something else."""
            headers = {"range": f"bytes={start}-{end - 1}", **self.fs._api._build_hf_headers()}
            with http_stream_backoff(
                "GET", self.url(), headers=headers, timeout=timeouts(self.fs.deadline), max_retries=RETRIES,
                base_wait_time=BASE_WAIT, max_wait_time=MAX_WAIT, retry_on_exceptions=_retry_exceptions(),
                retry_on_status_codes=RETRY_STATUS,
            ) as response:
                hf_raise_for_status(response)
                if _answers_range(response.headers, response.status_code, start, end, self.size):
                    return response.read()
            self.fs.note_ranges_ignored(response.status_code, response.headers.get("content-range"))
            return None

    class PinnedHfFileSystem(HfFileSystem):
        """HfFileSystem over paths pinned to one commit, whose files never change: ``modified`` is the commit time.

        DuckDB asks every file's modification time, which HfFileSystem cannot answer for repo paths.
        """

        def __init__(self, *args: Any, commit_time: dt.datetime, pinned: tuple[str, str] | None = None,
                     cache_dir: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.commit_time, self.pinned = commit_time, pinned
            self.cache_dir = cache_dir
            self.ignores_ranges = False
            self.local_copies: dict[str, str] = {}
            self.deadline: float | None = None  # time.monotonic() by which reads must end (a timed SQL query)

        def modified(self, path: str) -> dt.datetime:
            return self.commit_time

        def _repo_and_revision_exist(self, repo_type: str, repo_id: str, revision: str | None):
            """The pinned dataset and commit exist (the open checked them): skip HfFileSystem's repo-info request,
            which on an atlas repo lists every file (160 kB for the embedded atlas)."""
            if self.pinned is not None and (repo_type, repo_id, revision) == ("dataset", *self.pinned):
                return True, None
            return super()._repo_and_revision_exist(repo_type, repo_id, revision)

        def _open(self, path: str, mode: str = "rb", block_size: int | None = None, revision: str | None = None,
                  **kwargs: Any):
            block_size = self.block_size if block_size is None else block_size
            if mode != "rb" or block_size == 0:
                return super()._open(path, mode=mode, block_size=block_size, revision=revision, **kwargs)
            if block_size is not None:
                kwargs["block_size"] = block_size
            return CheckedRangeFile(self, path, mode=mode, revision=revision, **kwargs)

        def note_ranges_ignored(self, status: int, content_range: str | None) -> None:
            """Read whole files from now on; say so once per server."""
            self.ignores_ranges = True
            if self.endpoint not in _WARNED:
                _WARNED.add(self.endpoint)
                warn(f"the Hub server at {self.endpoint} ignores HTTP Range requests (answered {status}, Content-Range "
                     f"{content_range}): each file read is downloaded whole, once, into the Hugging Face cache")

        def download(self, file: CheckedRangeFile) -> str:
            """Download the whole file into the HF cache (pinned to its commit); later reads use the local copy."""
            where = file.resolved_path
            local = hf_hub_download(
                where.repo_id, where.path_in_repo, repo_type=where.repo_type, revision=where.revision,
                cache_dir=self.cache_dir, endpoint=self.endpoint, token=self.token,
            )
            self.local_copies[file.path] = local
            return local

    return PinnedHfFileSystem, CheckedRangeFile


def hub_filesystem(token: str | None = None, commit_time: dt.datetime | None = None,
                   pinned: tuple[str, str] | None = None, cache_dir: str | None = None):
    """A fresh filesystem on HF_ENDPOINT with HF_TOKEN, for paths pinned to ``pinned`` (dataset repo id, commit
    sha) made at ``commit_time``; files read whole (servers that ignore ranges) go to ``cache_dir`` (the HF cache)."""
    return _classes()[0](endpoint=endpoint(), token=resolve_token(token), skip_instance_cache=True, cache_dir=cache_dir,
                         commit_time=commit_time or dt.datetime.now(dt.timezone.utc), pinned=pinned)
