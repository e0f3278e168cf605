"""The Hugging Face Hub as an atlas' home: open ``hf://datasets/org/name[@rev]`` lazily or as a cached snapshot, and publish.

Opening resolves the revision to a commit sha first, so every file read (and every result's metadata) is pinned
to one commit. Publishing is one commit holding the atlas' Parquet files, a generated README.md data card and a
figure; ``plan_commit`` builds that commit without any HTTP so it can be checked before sending.
"""
from __future__ import annotations

import datetime as dt
import functools
import io
import os
import posixpath
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import unquote

import pyarrow.parquet as pq
import typer

from .errors import AtlasError, AtlasNotFoundError
from .writer import STORED_TOP_RATE

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, CommitOperationAdd

    from .atlas import Atlas

HF_SCHEME = "hf://"
MANIFEST = "atlas.json"
CARD_TEMPLATE = Path(__file__).resolve().parent / "data_cards" / "atlas_card.md"
FIGURE_PATH = "figures/neurons_per_layer.png"
# The dataset viewer pages through row groups; keep each small enough to load quickly.
ROWS_PER_GROUP = 100_000


# -- addresses and connection settings ------------------------------------------------------------------------


@dataclass(frozen=True)
class HubAddress:
    """A parsed ``hf://datasets/<org>/<name>[@<revision>][/<folder>]``."""

    repo_id: str
    revision: str | None = None
    folder: str = ""


def parse_hf_url(url: str) -> HubAddress:
    """Split an ``hf://datasets/...`` address into repo id, revision (None: main) and folder inside the repo."""
    if not url.startswith(HF_SCHEME):
        raise AtlasError(f"{url!r} is not a Hub address; expected hf://datasets/<org>/<name>[@<revision>]")
    rest = url[len(HF_SCHEME):].strip("/")
    kind, _, rest = rest.partition("/")
    if kind != "datasets":
        raise AtlasError(f"{url!r}: atlases are dataset repos; write hf://datasets/{kind}/{rest}".rstrip("/"))
    parts = rest.split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise AtlasError(f"{url!r}: expected hf://datasets/<org>/<name>[@<revision>]")
    name, _, revision = parts[1].partition("@")
    return HubAddress(f"{parts[0]}/{name}", unquote(revision) or None, "/".join(parts[2:]))


def _endpoint() -> str | None:
    """HF_ENDPOINT as set now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def _token(token: str | None) -> str | None:
    return token or os.environ.get("HF_TOKEN") or None


def _offline() -> bool:
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE") or constants.is_offline_mode()


def _hub_error(exc: Exception, repo_id: str, revision: str | None, endpoint: str | None) -> AtlasError:
    """Translate a huggingface_hub or transport error into one that says what to do."""
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    where = endpoint or "https://huggingface.co"
    if isinstance(exc, GatedRepoError):
        return AtlasNotFoundError(f"dataset {repo_id} at {where} is gated: accept its terms on the Hub and set HF_TOKEN")
    if isinstance(exc, RepositoryNotFoundError):
        return AtlasNotFoundError(
            f"dataset repo {repo_id!r} was not found at {where}: it does not exist, or it is private and "
            "no valid token was given (set HF_TOKEN or pass token=)"
        )
    if isinstance(exc, RevisionNotFoundError):
        return AtlasNotFoundError(f"dataset {repo_id} has no revision {revision!r} (a branch, tag or commit sha)")
    if isinstance(exc, LocalEntryNotFoundError):
        return AtlasNotFoundError(
            f"dataset {repo_id}@{revision or 'main'} is not in the local Hugging Face cache and the Hub cannot be "
            "used (HF_HUB_OFFLINE is set, or the network failed): open it once online with mode='snapshot'"
        )
    if isinstance(exc, HfHubHTTPError):
        return AtlasError(f"the Hub at {where} refused a request for {repo_id}: {exc}")
    return AtlasError(f"could not reach the Hub at {where} for {repo_id} ({type(exc).__name__}: {exc}); "
                      "check the network, or open a cached snapshot with HF_HUB_OFFLINE=1")


# -- reading --------------------------------------------------------------------------------------------------


def _dataset_info(repo_id: str, revision: str | None, token: str | None):
    """The repo's info at ``revision`` (None: main); failures become AtlasErrors that say what to do."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    endpoint = _endpoint()
    api = HfApi(endpoint=endpoint, token=_token(token))
    try:
        return api.dataset_info(repo_id, revision=revision or "main")
    except RepositoryNotFoundError as exc:
        if revision in (None, "main") or isinstance(exc, GatedRepoError):
            raise _hub_error(exc, repo_id, revision, endpoint) from exc
        try:  # some servers answer an unknown revision as an unknown repo: tell the two apart
            api.dataset_info(repo_id, revision="main")
        except Exception:  # noqa: BLE001 - the repo itself is not there: report the first error
            raise _hub_error(exc, repo_id, revision, endpoint) from exc
        raise _hub_error(RevisionNotFoundError(str(exc), response=exc.response), repo_id, revision, endpoint) from exc
    except Exception as exc:  # noqa: BLE001 - every failure becomes an AtlasError naming the repo
        raise _hub_error(exc, repo_id, revision, endpoint) from exc


def resolve_revision(repo_id: str, revision: str | None = None, token: str | None = None) -> str:
    """The commit sha that ``revision`` (branch, tag or sha; None: main) of the dataset repo points at now."""
    return _dataset_info(repo_id, revision, token).sha


@functools.cache
def _pinned_filesystem_class() -> type:
    from huggingface_hub import HfFileSystem

    class PinnedHfFileSystem(HfFileSystem):
        """HfFileSystem over paths pinned to one commit, whose files never change: ``modified`` is the commit time.

        DuckDB asks every file's modification time, which HfFileSystem cannot answer for repo paths.
        """

        def __init__(self, *args: Any, commit_time: dt.datetime, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.commit_time = commit_time

        def modified(self, path: str) -> dt.datetime:
            return self.commit_time

    return PinnedHfFileSystem


def hub_filesystem(token: str | None = None, commit_time: dt.datetime | None = None):
    """A fresh HfFileSystem on HF_ENDPOINT with HF_TOKEN, for paths pinned to a commit made at ``commit_time``."""
    return _pinned_filesystem_class()(endpoint=_endpoint(), token=_token(token), skip_instance_cache=True,
                                      commit_time=commit_time or dt.datetime.now(dt.timezone.utc))


def snapshot(repo_id: str, revision: str | None = None, token: str | None = None,
             cache_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Download (or, offline, find) the repo's snapshot in the HF cache; return its folder and commit sha.

    ``atlas.json`` is fetched last, so a snapshot that has it is complete: an interrupted download leaves
    a cache entry that is refused with a clear error, never half an atlas.
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    endpoint = _endpoint()
    kw: dict[str, Any] = {"repo_id": repo_id, "repo_type": "dataset", "cache_dir": cache_dir,
                          "token": _token(token), "endpoint": endpoint}
    try:
        if _offline():
            folder = Path(snapshot_download(revision=revision or "main", local_files_only=True, **kw))
        else:
            folder = Path(snapshot_download(revision=revision or "main", ignore_patterns=[MANIFEST], **kw))
            hf_hub_download(filename=MANIFEST, revision=folder.name, **kw)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an AtlasError naming the repo
        raise _hub_error(exc, repo_id, revision, endpoint) from exc
    if not (folder / MANIFEST).exists():
        raise AtlasNotFoundError(
            f"the cached snapshot of {repo_id}@{folder.name} at {folder} is incomplete (no {MANIFEST}): an earlier "
            "download was interrupted. Open it once more with the network available to finish it."
        )
    return folder, folder.name


def open_hub(url: str, mode: Literal["lazy", "snapshot"] = "lazy", token: str | None = None,
             cache_dir: str | os.PathLike | None = None) -> Atlas:
    """Open the atlas at ``hf://datasets/org/name[@rev]``, pinned to the commit the revision points at.

    ``lazy`` reads files on demand over HfFileSystem (a query for one model fetches only its files);
    ``snapshot`` downloads the repo into the HF cache. With HF_HUB_OFFLINE=1 both use the cached snapshot.
    """
    from .atlas import Atlas

    if mode not in ("lazy", "snapshot"):
        raise AtlasError(f"mode={mode!r}; use 'lazy' (read files on demand) or 'snapshot' (download, works offline)")
    address = parse_hf_url(url)
    if mode == "snapshot" or _offline():
        folder, sha = snapshot(address.repo_id, address.revision, token, cache_dir)
        return Atlas(folder / address.folder if address.folder else folder, revision=sha)
    info = _dataset_info(address.repo_id, address.revision, token)
    sha = info.sha
    root = posixpath.join(f"datasets/{address.repo_id}@{sha}", address.folder) if address.folder else \
        f"datasets/{address.repo_id}@{sha}"
    return Atlas(root, fs=hub_filesystem(token, info.last_modified), revision=sha)


# -- publishing -----------------------------------------------------------------------------------------------


def _upload_source(path: Path) -> bytes | Path:
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


def _atlas_files(root: Path) -> list[Path]:
    """The files an atlas publishes: its manifest and every Parquet table (no temporary or hidden files)."""
    files = [root / MANIFEST] + sorted(root.rglob("*.parquet"))
    return [f for f in files if not any(part.startswith(".") for part in f.relative_to(root).parts)]


def _default_top(meta: dict | None) -> float:
    """The top rate a model answers by default: its imported rate, else 1%."""
    return float(meta["stored_top_rate"]) if meta and meta.get("imported") else 0.01


def _fmt_rate(rate: float) -> str:
    return f"{rate * 100:g}%"


def card_summary(atlas: Atlas) -> list[dict[str, Any]]:
    """Per model: provenance row, languages, lape metadata, default top rate and neurons per layer at that rate."""
    from .reader import read_derived

    out = []
    for slug in atlas.model_slugs:
        derived = read_derived(atlas.layout, slug)
        meta = derived.meta if derived else None
        top = _default_top(meta)
        langs = atlas.langs_of(slug)
        per_layer = None
        if derived is not None:
            by_layer = atlas.neurons(slug, top=top).by_layer()
            n_layers = atlas.model(slug).n_layers
            counts = by_layer.column("n_neurons").to_numpy().reshape(-1, n_layers).sum(axis=0)
            per_layer = counts.tolist()
        out.append({"row": atlas.model(slug), "langs": langs, "meta": meta or {}, "top": top,
                    "per_layer": per_layer, "shards": len(atlas.layout.count_langs(slug))})
    return out


def neurons_per_layer_png(summary: list[dict[str, Any]]) -> bytes | None:
    """A PNG line plot of language-specific neurons per layer, one line per model (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    for item in summary:
        if item["per_layer"] is not None:
            ax.plot(range(len(item["per_layer"])), item["per_layer"], marker=".",
                    label=f"{item['row'].model} (top {_fmt_rate(item['top'])})")
    ax.set_xlabel("layer")
    ax.set_ylabel("neurons (summed over languages)")
    ax.set_title("Language-specific neurons per layer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def render_card(atlas: Atlas, repo_id: str, summary: list[dict[str, Any]], *, license: str = "apache-2.0",
                figure: str | None = FIGURE_PATH, template: str | os.PathLike | None = None) -> str:
    """The README.md data card: YAML front matter (licence, ISO 639-3 languages, one config per model) and body."""
    from huggingface_hub import DatasetCardData

    from . import langs as langs_mod

    if not summary:
        raise AtlasError(f"{atlas.layout.root} holds no models; nothing to publish")
    all_langs = sorted({t for item in summary for t in item["langs"]})
    configs = [
        {"config_name": item["row"].model,
         "data_files": [{"split": "train", "path": f"lape/model={item['row'].model}/lape.parquet"}]}
        for item in summary if item["meta"]
    ]
    data = DatasetCardData(
        license=license,
        language=sorted({langs_mod.parse(t).iso639_3 for t in all_langs}),
        pretty_name=f"neuron-atlas: {repo_id.split('/')[-1]}",
        tags=["interpretability", "neurons", "multilingual", "lape", "neuron-atlas"],
        configs=configs,
    )
    rows = ["| model | weights | neurons | languages | source | default top | (language, neuron) pairs at that top | count shards |",
            "|---|---|---|---|---|---|---|---|"]
    provenance = []
    for item in summary:
        row, meta = item["row"], item["meta"]
        stored = sum(item["per_layer"]) if item["per_layer"] is not None else 0
        rows.append(
            f"| `{row.model}` | [{row.hf_repo}](https://huggingface.co/{row.hf_repo}) | {row.n_layers} × {row.ffn_width} "
            f"| {len(item['langs'])} | {row.source} | {_fmt_rate(item['top'])} | {stored:,} | {item['shards']} |"
        )
        if meta.get("imported"):
            how = (f"neuron sets imported from {meta.get('source')} (file `{meta.get('file', '')}`, top_rate "
                   f"{_fmt_rate(item['top'])}, licence: {meta.get('licence') or 'not stated'}); published without "
                   "statistics, so only that rate can be queried")
        else:
            tokens = f"{row.tokens_per_language:,} tokens per language" if row.tokens_per_language else "all text"
            how = (f"counted on {row.corpus} {row.corpus_version} ({tokens}, sequence length {row.seq_len or 'n/a'}, "
                   f"{row.dtype or 'default dtype'}); LAPE filter rate {meta.get('filter_rate', 'n/a')}, "
                   f"activation bar ratio {meta.get('bar_ratio', 'n/a')}")
        provenance.append(
            f"- **{row.model}**: `{row.hf_repo}` @ `{row.revision or 'unrecorded'}` ({row.architecture}, "
            f"{row.activation} FFN{', gated' if row.gated else ''}); {how}. "
            f"Languages: {', '.join(item['langs'])}. Added {row.created:%Y-%m-%d} (builder {row.builder_version or 'unrecorded'})."
        )
    first = next((item for item in summary if item["meta"]), summary[0])
    text = Path(template or CARD_TEMPLATE).read_text()
    return string.Template(text).substitute(
        front_matter=data.to_yaml(),
        title=data.pretty_name,
        description=atlas.manifest.description or f"A neuron atlas of {len(summary)} model(s) and {len(all_langs)} languages.",
        models_table="\n".join(rows),
        provenance="\n".join(provenance),
        figure=figure or "",
        repo_id=repo_id,
        first_model=first["row"].model,
        first_lang=first["langs"][0] if first["langs"] else "eng_Latn",
        first_top=_fmt_rate(first["top"]),
        stored_top=_fmt_rate(STORED_TOP_RATE),
    )


def plan_commit(atlas_path: str | os.PathLike, repo_id: str, *, license: str = "apache-2.0",
                template: str | os.PathLike | None = None) -> tuple[list[CommitOperationAdd], str]:
    """Every operation of the publishing commit (manifest, Parquet files, figure, README.md) and the card text.

    Makes no HTTP request. Parquet files with row groups over ROWS_PER_GROUP rows are rewritten in memory.
    """
    from huggingface_hub import CommitOperationAdd

    from .atlas import Atlas

    root = Path(atlas_path)
    atlas = Atlas(root)
    summary = card_summary(atlas)
    figure = neurons_per_layer_png(summary)
    card = render_card(atlas, repo_id, summary, license=license, figure=FIGURE_PATH if figure else None,
                       template=template)
    ops = [CommitOperationAdd(path_in_repo=f.relative_to(root).as_posix(),
                              path_or_fileobj=_upload_source(f) if f.suffix == ".parquet" else f)
           for f in _atlas_files(root)]
    if figure:
        ops.append(CommitOperationAdd(path_in_repo=FIGURE_PATH, path_or_fileobj=figure))
    ops.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card.encode()))
    return ops, card


def push(atlas_path: str | os.PathLike, repo_id: str, revision: str = "main", create_pr: bool = False,
         token: str | None = None, *, private: bool | None = None, license: str = "apache-2.0",
         commit_message: str | None = None) -> CommitInfo:
    """Publish the atlas as one commit to the dataset repo (created if missing; the branch too, unless a PR)."""
    from huggingface_hub import HfApi

    ops, _ = plan_commit(atlas_path, repo_id, license=license)
    endpoint = _endpoint()
    api = HfApi(endpoint=endpoint, token=_token(token))
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if revision != "main" and not create_pr:
            api.create_branch(repo_id, repo_type="dataset", branch=revision, exist_ok=True)
        return api.create_commit(
            repo_id, ops, repo_type="dataset", revision=revision, create_pr=create_pr,
            commit_message=commit_message or f"neuron-atlas: publish {len(ops)} files from {Path(atlas_path).name}",
        )
    except Exception as exc:  # noqa: BLE001 - every failure becomes an AtlasError naming the repo
        raise _hub_error(exc, repo_id, revision, endpoint) from exc


def push_command(
    atlas: Annotated[Path, typer.Argument(help="atlas folder to publish", exists=True, file_okay=False)],
    repo: Annotated[str, typer.Option("--repo", help="dataset repo id, e.g. org/name")],
    revision: Annotated[str, typer.Option(help="branch to commit to")] = "main",
    create_pr: Annotated[bool, typer.Option("--create-pr", help="open a pull request instead of committing")] = False,
    token: Annotated[str | None, typer.Option(help="Hub token (default: HF_TOKEN or the saved login)")] = None,
    private: Annotated[bool, typer.Option("--private", help="create the repo private if it does not exist")] = False,
    license: Annotated[str, typer.Option(help="licence of the data, a Hub licence id")] = "apache-2.0",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the commit's files and sizes; send nothing")] = False,
) -> None:
    """Publish ATLAS to the Hugging Face dataset repo REPO as one commit with a generated data card."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    try:
        if dry_run:
            ops, card = plan_commit(atlas, repo, license=license)
            table = Table("path in repo", "bytes", title=f"commit to {repo}@{revision} (dry run: nothing sent)")
            for op in ops:
                table.add_row(op.path_in_repo, f"{op.upload_info.size:,}")
            console.print(table)
            return
        info = push(atlas, repo, revision=revision, create_pr=create_pr, token=token, private=private or None,
                    license=license)
    except AtlasError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"published {atlas} to {info.commit_url}" + (f" (pull request {info.pr_url})" if info.pr_url else ""))

