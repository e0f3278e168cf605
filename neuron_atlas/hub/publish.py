"""Publishing an atlas to the Hub as one commit: its manifest, Parquet tables, data card and figure.

``plan_commit`` builds that commit without any HTTP so it can be checked before sending; ``push`` sends it.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from ..atlas import Atlas
from ..atlas import open as open_atlas
from .address import check_repo_id
from .commit import publish
from .remote import MANIFEST
from .card import FIGURE_PATH, card_summary, check_licence, default_sets_path, figure_png, render_card
from ..format.layout import Layout
from ..format.schema import META_KEY, TABLES

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, CommitOperationAdd

# The dataset viewer pages through row groups; keep each small enough to load quickly.
ROWS_PER_GROUP = 100_000


def upload_source(path: Path) -> bytes | Path:
    """The file itself, or its rewrite with row groups of at most ROWS_PER_GROUP rows (same codec and encodings)."""
    meta = pq.ParquetFile(path).metadata
    if all(meta.row_group(i).num_rows <= ROWS_PER_GROUP for i in range(meta.num_row_groups)):
        return path
    table = pq.read_table(path)
    first = meta.row_group(0)
    delta = [first.column(i).path_in_schema for i in range(first.num_columns)
             if "DELTA_BINARY_PACKED" in first.column(i).encodings]
    buf = io.BytesIO()
    pq.write_table(
        table, buf, row_group_size=ROWS_PER_GROUP, compression=first.column(0).compression.lower(),
        use_dictionary=[c for c in table.column_names if c not in delta],
        column_encoding={c: "DELTA_BINARY_PACKED" for c in delta} or None,
    )
    return buf.getvalue()


def atlas_files(root: Path) -> list[Path]:
    """The files an atlas publishes: its manifest and the files of its tables, those at a path of a table of
    ``schema.TABLES`` (no temporary or hidden file, and no other Parquet file that happens to lie in the folder)."""
    layout = Layout(str(root))
    files = {Path(path) for table in TABLES for _, path in layout.files(table.name)}
    return [root / MANIFEST] + sorted(f for f in files if not any(part.startswith(".") for part in f.relative_to(root).parts))


def published_metadata(table: pa.Table, root: Path, repo_id: str) -> pa.Table:
    """``table`` with its neuron-atlas footer metadata naming the published repo, not the publisher's folder: the
    ``atlas`` entry, and any other value that is a path in the local folder, becomes ``hf://datasets/<repo_id>``."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        return table
    address = f"hf://datasets/{repo_id}"
    local = {os.path.abspath(root), os.path.realpath(root)}

    def scrub(value):
        if isinstance(value, str):
            for path in local:
                if value == path or value.startswith(path + os.sep):
                    return address + value[len(path):].replace(os.sep, "/")
            return value
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    meta = scrub(json.loads(raw))
    if "atlas" in meta:
        meta["atlas"] = address
    return table.replace_schema_metadata({**table.schema.metadata, META_KEY: json.dumps(meta).encode()})


def upload_operation(root: Path, file: Path) -> CommitOperationAdd:
    """The commit operation adding one atlas file at its path under ``root`` (Parquet with viewer-sized row groups)."""
    from huggingface_hub import CommitOperationAdd

    return CommitOperationAdd(path_in_repo=file.relative_to(root).as_posix(),
                              path_or_fileobj=upload_source(file) if file.suffix == ".parquet" else file)


def plan_commit(atlas_path: str | os.PathLike, repo_id: str, *, license: str | None = None,
                template: str | os.PathLike | None = None) -> tuple[list[CommitOperationAdd], str]:
    """Every operation of the publishing commit (manifest, Parquet files, each model's default sets, figure,
    README.md) and the card text. ``license`` defaults to the sources' own (``card.atlas_licence``).

    Makes no HTTP request. Parquet files with row groups over ROWS_PER_GROUP rows are rewritten in memory.

    Args:
        atlas_path: the local atlas folder to publish.
        repo_id: the dataset repo the card names, ``org/name``.
        license: the card's licence, a Hub licence id (default None: the sources' own, 'unknown' where one
            states none).
        template: a ``string.Template`` file for the card (default None: the packaged template).

    Returns:
        tuple[list[huggingface_hub.CommitOperationAdd], str]: the commit's operations (paths in the repo: the
        manifest, every Parquet table, each derived model's default sets, the figure when matplotlib is installed,
        README.md) and the card's text.

    Raises:
        InvalidParameterError: ``repo_id`` is not a Hub repo id, or ``license`` not a Hub licence id.
        AtlasNotFoundError: ``atlas_path`` holds no atlas.
        AtlasFormatError: a file of the atlas is corrupt or does not match the schema.
        AtlasError: the atlas holds no models.
    """
    from huggingface_hub import CommitOperationAdd

    check_repo_id(repo_id)
    check_licence(license)
    root = Path(atlas_path)
    atlas = Atlas(root)
    summary = card_summary(atlas)
    figure = figure_png(summary)
    card = render_card(atlas, repo_id, summary, license=license, figure=FIGURE_PATH if figure else None,
                       template=template)
    ops = [upload_operation(root, f) for f in atlas_files(root)]
    for item in summary:
        if item["meta"]:  # the rows `atlas.neurons(model)` answers, as the model's default config
            buf = io.BytesIO()
            sets = published_metadata(atlas.neurons(item["row"].model).to_arrow(), root, repo_id)
            pq.write_table(sets, buf, compression="zstd", row_group_size=ROWS_PER_GROUP)
            ops.append(CommitOperationAdd(path_in_repo=default_sets_path(item["row"].model), path_or_fileobj=buf.getvalue()))
    if figure:
        ops.append(CommitOperationAdd(path_in_repo=FIGURE_PATH, path_or_fileobj=figure))
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    return ops, card


def export(atlas_path: str | os.PathLike, folder: str | os.PathLike, repo_id: str | None = None, *,
           license: str | None = None) -> list[str]:
    """Write into ``folder`` exactly the files ``push`` would commit (card included), so ``datasets.load_dataset(folder,
    config)`` works offline; returns their paths. ``folder`` must be new or empty; it appears whole or not at all:
    the files are written into a private folder made for this export beside it (never a name that could be planted
    beforehand), then renamed into place.

    Args:
        atlas_path: the local atlas folder to export.
        folder: the folder to write, new or empty.
        repo_id: the dataset repo the card names (default None: ``local/<folder name>``).
        license: the card's licence, a Hub licence id (default None: the sources' own).

    Returns:
        list[str]: the written files' paths relative to ``folder`` (as they would lie in the repo).

    Raises:
        InvalidParameterError: ``folder`` is '', a symlink, or exists and is not an empty folder, or lies inside a
            file; ``repo_id`` is not a Hub repo id, or ``license`` not a Hub licence id.
        AtlasNotFoundError: ``atlas_path`` holds no atlas.
        AtlasFormatError: a file of the atlas is corrupt or does not match the schema.
        AtlasError: the atlas holds no models, or ``folder`` was made or filled while the export was written (then
            nothing is written there).
    """
    import shutil
    import tempfile

    from ..errors import AtlasError, InvalidParameterError

    target = _export_target(folder)
    ops, _ = plan_commit(atlas_path, repo_id or f"local/{target.name}", license=license)
    try:  # a private folder of its own beside the target, made here and now: never a path someone could plant
        target.parent.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=target.parent))
    except (FileExistsError, NotADirectoryError):
        raise InvalidParameterError(f"cannot export to {target}: a part of its path is a file; name a folder "
                                    "elsewhere") from None
    staging = private / "export"  # made with mkdir, so the export gets the umask's mode, not mkdtemp's 0700
    try:
        staging.mkdir()
        for op in ops:
            path = staging / op.path_in_repo
            path.parent.mkdir(parents=True, exist_ok=True)
            src = op.path_or_fileobj
            if isinstance(src, bytes):
                path.write_bytes(src)
            else:
                shutil.copyfile(src, path)
        try:
            os.rename(staging, target)  # replaces an empty folder, fails on anything else: never a half export
        except OSError as exc:
            raise AtlasError(f"cannot put the export in place at {target} ({exc.strerror or exc}): it was made or "
                             "filled meanwhile; nothing was written there, export again to a new folder") from None
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return [op.path_in_repo for op in ops]


def _export_target(folder: str | os.PathLike) -> Path:
    """``folder`` as an absolute path (its last part not resolved), refused when it is not new or an empty folder."""
    from ..errors import InvalidParameterError

    text = os.fspath(folder)
    if not str(text).strip():
        raise InvalidParameterError("the export folder is '': name a new folder, e.g. ./export")
    target = Path(os.path.abspath(text))
    if target.is_symlink():
        raise InvalidParameterError(f"{target} is a symlink; export writes a new folder: name a path that does not "
                                    "exist, or an empty folder")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidParameterError(f"{target} exists and is not an empty folder; export writes a new folder")
    return Path(os.path.realpath(target.parent)) / target.name


def push(atlas_path: str | os.PathLike, repo_id: str, revision: str = "main", create_pr: bool = False,
         token: str | None = None, *, private: bool | None = None, license: str | None = None,
         commit_message: str | None = None) -> CommitInfo:
    """Publish the atlas as one commit to the dataset repo (created if missing; the branch too, unless a PR).

    Args:
        atlas_path: the atlas folder.
        repo_id: the dataset repo, ``org/name``.
        revision: the branch to commit to (created if missing), or the base of the pull request.
        create_pr: open a pull request instead of committing to ``revision``.
        token: a Hub token (default: the logged-in user's, or ``HF_TOKEN``).
        private: make a new repo private (an existing repo keeps its visibility).
        license: the card's licence (default: the atlas' own).
        commit_message: the commit's title (default: names the number of files and the folder).

    Returns:
        The commit's ``huggingface_hub.CommitInfo``.

    Raises:
        AtlasError: the Hub refused or could not be reached (the message names the repo and what to do), or the
            atlas holds no models.
        AtlasNotFoundError: ``atlas_path`` holds no atlas.
        AtlasFormatError: a file of the atlas is corrupt or does not match the schema.
        InvalidParameterError: ``repo_id`` is malformed, or ``license`` not a Hub licence id.
    """
    ops, _ = plan_commit(atlas_path, repo_id, license=license)
    return publish(repo_id, ops, commit_message or f"neuron-atlas: publish {len(ops)} files from {Path(atlas_path).name}",
                   revision=revision, create_pr=create_pr, token=token, private=private)


def open_hub(url: str, mode: Literal["lazy", "snapshot"] = "lazy", token: str | None = None,
             cache_dir: str | os.PathLike | None = None) -> Atlas:
    """Open the atlas at ``hf://datasets/org/name[@rev]`` (the same as ``neuron_atlas.open(url, ...)``).

    Args:
        url: the atlas' address, ``hf://datasets/org/name`` with an optional ``@revision``.
        mode: ``"lazy"`` reads files on demand; ``"snapshot"`` downloads the atlas once and then works offline.
        token: a Hub token (default: the logged-in user's, or ``HF_TOKEN``).
        cache_dir: where snapshots are kept (default: the Hugging Face cache).

    Returns:
        The open ``Atlas``.

    Raises:
        AtlasNotFoundError: no atlas at that address (no such repo or revision, gated, or not cached while
            offline).
        AtlasFormatError: the atlas' manifest is not a neuron-atlas manifest.
        InvalidParameterError: the address is malformed.
        AtlasError: ``mode`` is neither 'lazy' nor 'snapshot', or the Hub refused or could not be reached.
    """
    return open_atlas(url, mode=mode, token=token, cache_dir=cache_dir)
