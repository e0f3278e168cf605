"""Hub addresses and connection settings: parse ``hf://datasets/org/name[@rev]``, the endpoint and token in use,
and the translation of huggingface_hub or transport errors into AtlasErrors that say what to do."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .._utils import arguments
from ..errors import AtlasError, AtlasNotFoundError, InvalidParameterError

HF_SCHEME = "hf://"
DEFAULT_ENDPOINT = "https://huggingface.co"
_REPO_KINDS = {"models": "a model repo", "spaces": "a Space", "buckets": "a storage bucket"}


@dataclass(frozen=True)
class HubAddress:
    """A parsed ``hf://datasets/<org>/<name>[@<revision>][/<folder>]``."""

    repo_id: str
    revision: str | None = None
    folder: str = ""


def parse_hf_url(url: str) -> HubAddress:
    """Split an ``hf://datasets/...`` address into repo id, revision (None: main) and folder inside the repo.

    A malformed address is an InvalidParameterError (bad input) saying how to write it.
    """
    arguments.name(url, "the Hub address", "'hf://datasets/org/name'")
    if not url.startswith(HF_SCHEME):
        raise InvalidParameterError(f"{url!r} is not a Hub address; expected hf://datasets/<org>/<name>[@<revision>]")
    rest = url[len(HF_SCHEME):].strip("/")
    kind, _, rest = rest.partition("/")
    if kind in _REPO_KINDS:
        raise InvalidParameterError(f"{url!r} is {_REPO_KINDS[kind]}; atlases are dataset repos: "
                         "hf://datasets/<org>/<name>[@<revision>]")
    if kind != "datasets":
        raise InvalidParameterError(f"{url!r}: atlases are dataset repos; write hf://datasets/{kind}/{rest}".rstrip("/"))
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InvalidParameterError(f"{url!r}: expected hf://datasets/<org>/<name>[@<revision>]")
    name, _, revision = parts[1].partition("@")
    repo_id = check_repo_id(f"{parts[0]}/{name}", f" in {url!r}")
    revision = unquote(revision) or None
    if revision is not None:
        arguments.name(revision, "the revision", "'main', 'v1.0' or a commit sha")
    return HubAddress(repo_id, revision, "/".join(parts[2:]))


def check_repo_id(repo_id: str, where: str = "") -> str:
    """``repo_id`` if the Hub accepts it as a repo id ('org/name'); else InvalidParameterError saying what is allowed."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    arguments.name(repo_id, "the repo id", "'org/name'")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        reason = str(exc).split(". ")[0].split(": '")[0]
        raise InvalidParameterError(
            f"{repo_id!r}{where} is not a Hub repo id ({reason}); write org/name with letters, digits, '-', '_' and "
            "'.' (no '--' or '..', at most 96 characters)") from None
    return repo_id


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_address(path: str, revision: str | None = None) -> str | None:
    """``path`` as an ``hf://datasets/...`` address when it names a Hub dataset, else None (a local folder).

    Like ``datasets.load_dataset`` and ``from_pretrained``: an existing local folder wins; otherwise ``org/name``
    is a Hub dataset repo. ``revision`` (branch, tag or commit) pins it, and must agree with an ``@rev`` in the path.
    """
    if path.startswith(HF_SCHEME):
        address = parse_hf_url(path)
    elif _REPO_ID.match(path) and not os.path.exists(path):
        address = parse_hf_url(f"{HF_SCHEME}datasets/{path}")
    else:
        if revision is not None:
            raise InvalidParameterError(f"revision={revision!r} applies to Hub atlases; {path!r} is a local folder")
        return None
    if revision is not None and address.revision not in (None, revision):
        raise InvalidParameterError(f"{path!r} names revision {address.revision!r} but revision={revision!r} was "
                                    "given; give one of them")
    rev = revision or address.revision
    folder = f"/{address.folder}" if address.folder else ""
    return f"{HF_SCHEME}datasets/{address.repo_id}{'@' + quote(rev, safe='') if rev else ''}{folder}"


def endpoint() -> str | None:
    """HF_ENDPOINT as set now (huggingface_hub reads it once, at import); None means the public Hub."""
    return os.environ.get("HF_ENDPOINT") or None


def resolve_token(given: str | None = None) -> str | None:
    """The token to send: the one given, else HF_TOKEN (None lets huggingface_hub use the saved login)."""
    return given or os.environ.get("HF_TOKEN") or None


def offline() -> bool:
    """Whether HF_HUB_OFFLINE is set now (or was when huggingface_hub was imported)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE") or constants.is_offline_mode()


def hub_error(exc: Exception, repo_id: str, revision: str | None, where: str | None = None, *,
              repo_type: str = "dataset") -> AtlasError:
    """Translate a huggingface_hub or transport error into one that says what to do; ``where`` is the endpoint,
    ``repo_type`` the kind of repo (``dataset``: an atlas; ``model``: an adapter)."""
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    where = where or DEFAULT_ENDPOINT
    if isinstance(exc, AtlasError):
        return exc
    # the Hub's errors, first match wins: (its class, ours, what to say)
    answers = (
        (GatedRepoError, AtlasNotFoundError, "{kind} {repo} at {where} is gated: accept its terms on the Hub and set "
                                             "HF_TOKEN"),
        (RepositoryNotFoundError, AtlasNotFoundError, "{kind} repo {repo!r} was not found at {where}: it does not "
                                                      "exist, or it is private and no valid token was given (set "
                                                      "HF_TOKEN or pass token=)"),
        (RevisionNotFoundError, AtlasNotFoundError, "{kind} {repo} has no revision {revision!r} (a branch, tag or "
                                                    "commit sha)"),
        (LocalEntryNotFoundError, AtlasNotFoundError, "{kind} {repo}@{branch} is not in the local Hugging Face cache "
                                                      "and the Hub cannot be used (HF_HUB_OFFLINE is set, or the "
                                                      "network failed): open it once online with mode='snapshot'"),
        (HfHubHTTPError, AtlasError, "the Hub at {where} refused a request for {repo}: {exc}"),
    )
    for hub_class, ours, text in answers:
        if isinstance(exc, hub_class):
            return ours(text.format(kind=repo_type, repo=repo_id, where=where, revision=revision,
                                    branch=revision or "main", exc=exc))
    if type(exc).__name__.endswith("Timeout"):
        return AtlasError(
            f"the Hub at {where} did not answer a request for {repo_id} in time ({type(exc).__name__}); the server "
            "accepted the connection but sent nothing. Check the server or the network; the limits are "
            "HF_HUB_ETAG_TIMEOUT (metadata) and HF_HUB_DOWNLOAD_TIMEOUT (file reads), in seconds"
        )
    return AtlasError(f"could not reach the Hub at {where} for {repo_id} ({type(exc).__name__}: {exc}); "
                      "check the network, or open a cached snapshot with HF_HUB_OFFLINE=1")
