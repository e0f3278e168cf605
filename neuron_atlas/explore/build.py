"""Write the explorer site for an atlas: pages, vendored assets and a fingerprint file that makes reruns incremental.

A model's pages are regenerated only when the fingerprint of their inputs changed: the model's files (names, sizes
and modification times, or Hub blob ids), its rows of the languages table, and neuron-atlas' code. Every file is
written atomically and the fingerprints are saved after each model, so an interrupted run keeps what it finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import __version__
from .. import atlas as atlas_mod
from .._utils.files import write_atomically
from ..errors import AtlasError, InvalidParameterError, UnknownLanguageError
from ..languages.panels import panel
from . import pages
from .gather import gather_model, languages_of

STATE = ".explore.json"
ASSETS = ("explore.css", "explore.js")
SPACE_CARD = ("---\ntitle: neuron atlas explorer\nsdk: static\napp_file: index.html\npinned: false\n---\n\n"
              "Language-specific neurons of LLMs, made with `neuron-atlas explore`. Open index.html.\n")


@dataclass(frozen=True)
class SiteReport:
    """What one run did: pages written and pages left as they were (their inputs had not changed)."""

    out: Path
    written: int
    unchanged: int
    removed: int
    seconds: float

    @property
    def index(self) -> Path:
        return self.out / "index.html"


def build_site(atlas: atlas_mod.Atlas | str | os.PathLike | None, out: str | os.PathLike, *,
               models: list[str] | None = None, force: bool = False, replace: bool = False,
               log: Callable[[str], None] | None = None) -> SiteReport:
    """Write (or bring up to date) the static explorer of ``atlas`` under ``out``; returns what was done.

    ``atlas`` is an open Atlas, a folder, an ``hf://`` address or None (the embedded atlas); ``models`` limits the
    site to some models; ``force`` regenerates every page.

    ``out`` must be new, empty, or a site this function wrote (its state file ``.explore.json`` lists the pages it
    wrote); any other folder is refused unless ``replace``. A malformed state file is an error too (``replace``
    ignores it: nothing is removed then). Only pages the state file lists, inside ``out``, are ever removed, and
    nothing is written or removed through a symlink leading out of ``out``.

    Args:
        atlas: an open Atlas, a local folder, an ``org/name`` or ``hf://`` Hub address, or None (the embedded
            atlas).
        out: the site's folder (created if missing; a rerun updates it in place): new, empty, or a site written
            here; never '' (name the folder, e.g. ``"."`` for the current one).
        models: the models on the site, slugs or Hub ids (default None: every model); pages of other models left
            by an earlier run are removed.
        force: regenerate every page, even those whose inputs did not change (default False).
        replace: write the site into ``out`` even though it is not an explorer site (files of the site's names,
            ``index.html``, ``assets/`` and ``models/``, are replaced; nothing else is touched) or its state file is
            malformed (then ignored) (default False).
        log: called with one line per model (pages written, or unchanged) (default None: silent).

    Returns:
        SiteReport: ``out``, the pages ``written``, ``unchanged`` and ``removed``, the ``seconds`` taken, and
        ``index`` (the path of ``index.html``).

    Raises:
        AtlasNotFoundError: no atlas at ``atlas`` (or no embedded atlas installed).
        AtlasFormatError: a file of the atlas is corrupt or does not match the schema.
        InvalidParameterError: ``atlas`` is not a path or a valid Hub address; ``out`` is empty, a file, a folder
            holding files that is not an explorer site, or a site whose state file is malformed (without
            ``replace``).
        AtlasError: a symlink in ``out`` leads outside it where a page is to be written.
        UnknownModelError: a model of ``models`` is not in the atlas.
    """
    start = time.perf_counter()
    out = _site_folder(out)
    source = None if atlas is None or isinstance(atlas, atlas_mod.Atlas) else os.fspath(atlas)
    opened = atlas if isinstance(atlas, atlas_mod.Atlas) else atlas_mod.open(source)
    embedded = source is None and Path(opened.layout.root).resolve() == atlas_mod.EMBEDDED.resolve()
    label = pages.EMBEDDED_LABEL if embedded else (source or str(opened.layout.root))
    atlas_arg = pages.atlas_argument(source or str(opened.layout.root), embedded)
    slugs = opened.model_slugs if models is None else [opened.model(m).model for m in models]
    root, old = _open_site(out, replace)  # root: the folder resolved; old: the pages its state file lists
    reuse = {} if force else old
    state: dict[str, str] = {}
    written = unchanged = 0

    space = _target(root, "README.md")  # a Hugging Face static Space serves the folder as it is
    if not space.exists():
        _write(space, SPACE_CARD)
    for name in ASSETS:
        data = resources.files(__package__).joinpath("assets", name).read_bytes()
        target = _target(root, f"assets/{name}")
        if not target.is_file() or target.read_bytes() != data:
            write_atomically(target, lambda tmp, data=data: Path(tmp).write_bytes(data))

    code = _code_fingerprint()
    index_rows, fingerprints = [], []
    for slug in slugs:
        fp = _digest(code, model_fingerprint(opened, slug), atlas_arg, label)
        fingerprints.append(fp)
        tags = opened.langs_of(slug)
        paths = [pages.model_path(slug)] + [pages.lang_path(slug, t) for t in tags]
        if all(reuse.get(p) == fp and (root / p).is_file() for p in paths):
            index_rows.append((opened.model(slug), languages_of(opened, slug, tags)))
            state.update({p: fp for p in paths})
            unchanged += len(paths)
            if log:
                log(f"{slug}: unchanged ({len(paths)} pages)")
            continue
        t0 = time.perf_counter()
        data = gather_model(opened, slug)
        index_rows.append((data.row, data.langs))
        _write(_target(root, pages.model_path(slug)), pages.model_page(data, _panel(data.tags), label, __version__))
        for i, tag in enumerate(data.tags):
            _write(_target(root, pages.lang_path(slug, tag)), pages.lang_page(data, i, atlas_arg, label, __version__))
        state.update({p: fp for p in paths})
        written += len(paths)
        _save_state(root, {**old, **state})  # an interrupted run keeps the models it finished
        if log:
            log(f"{slug}: {len(paths)} pages in {time.perf_counter() - t0:.1f} s")

    index_fp = _digest(code, label, *fingerprints)
    if reuse.get("index.html") == index_fp and (root / "index.html").is_file():
        unchanged += 1
    else:
        _write(_target(root, "index.html"), pages.index_page(index_rows, label, __version__))
        written += 1
    state["index.html"] = index_fp
    removed = 0
    for stale in sorted(set(old) - set(state)):  # pages of models or languages no longer in the atlas
        path = _within(root, stale)
        if path is None:  # its folder is a symlink leading out of the site: not the site's to remove
            if log:
                log(f"{stale}: left in place (its folder leads outside {root})")
            continue
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISREG(mode) or stat.S_ISLNK(mode):  # a link is removed, never what it points to
            path.unlink()
            removed += 1
    _save_state(root, state)
    return SiteReport(out=out, written=written, unchanged=unchanged, removed=removed,
                      seconds=time.perf_counter() - start)


def model_fingerprint(atlas: atlas_mod.Atlas, model: str) -> str:
    """A digest of the model's files (path, size, and mtime or Hub blob id) and its rows of the languages table."""
    layout = atlas.layout
    folders = [layout.path("models", f"model={model}"), layout.counts_dir(model), layout.path("lape", f"model={model}")]
    entries = []
    if layout.fs is None:
        for folder in folders:
            for base, _, files in os.walk(folder):
                for name in files:
                    st = os.stat(os.path.join(base, name))
                    entries.append((os.path.relpath(os.path.join(base, name), layout.root), st.st_size, st.st_mtime_ns))
    else:
        for folder in folders:
            if layout.exists(folder):
                for path, info in layout.fs.find(folder, detail=True).items():
                    entries.append((path, info.get("size"), info.get("blob_id") or info.get("last_commit")))
    tags = set(atlas.langs_of(model))  # the rows of the languages table its pages name, not the whole table
    table = atlas.languages()
    entries += [tuple(r.values()) for r in table.to_pylist() if r["lang"] in tags]
    return _digest(*(json.dumps(e, default=str) for e in sorted(entries, key=str)))


def _panel(tags: list[str]) -> list[str]:
    """The model's languages of the study panel, in the panel's order."""
    from ..languages.tags import resolve

    found = []
    for code in panel(pages.PANEL):
        try:
            found.append(resolve(code, tags))
        except UnknownLanguageError:
            continue
    return list(dict.fromkeys(found))


def _code_fingerprint() -> str:
    """A digest of neuron-atlas' code (the queries and methods the pages show) and the explorer's templates and
    assets: another version of any of them regenerates the pages."""
    package = Path(__file__).resolve().parents[1]
    files = [p for p in package.rglob("*") if p.suffix in (".py", ".html", ".css", ".js") and "data" not in
             p.relative_to(package).parts[:1] and p.is_file()]
    parts = [__version__] + [f"{p.relative_to(package).as_posix()}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
                             for p in sorted(files)]
    return _digest(*parts)


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def _write(path: Path, text: str) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _site_folder(out: str | os.PathLike) -> Path:
    """``out`` as a Path, refused when it names no folder ('' would be the current folder) or is a file."""
    try:
        text = os.fspath(out)
    except TypeError:
        raise InvalidParameterError(f"the site folder must be a path, got {type(out).__name__} {out!r}") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip() or "\0" in text:
        raise InvalidParameterError(f"the site folder {text!r} names no folder: give one, e.g. --out site "
                                    "(or --out . for the current folder)")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise InvalidParameterError(f"the site folder {path} is a file: name a new folder, an empty one or an "
                                    "explorer site")
    return path


def _open_site(out: Path, replace: bool) -> tuple[Path, dict[str, str]]:
    """Create ``out`` if missing and return it resolved with the pages its state file lists ({} for a new site).

    A folder holding files without a state file is someone else's: refused unless ``replace``, as is a malformed
    state file (``replace`` then starts the site afresh: nothing is removed). A new site's state file is written
    first, so a run interrupted before its first page still leaves a folder the next run recognises as its own.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidParameterError(f"cannot make the site folder {out}: a part of its path is a file; name a "
                                    "folder elsewhere") from None
    root = out.resolve()
    try:
        old = _load_state(root)
    except InvalidParameterError:
        if not replace:
            raise
        old = None
    if old is None:
        if not replace and any(p.name != STATE for p in root.iterdir()):
            raise InvalidParameterError(
                f"{out} holds files and is not an explorer site (it has no {STATE}): writing the site there would "
                "replace its index.html and assets/; name a new or empty folder, or pass --replace (replace=True) "
                "to write the site over it")
        old = {}
        _save_state(root, old)
    return root, old


def _within(root: Path, page: str) -> Path | None:
    """``root / page`` with its folder resolved, or None when that folder is outside ``root`` (a symlink leads out).

    ``page`` is a relative path without ``..`` (``_load_state`` refuses others); the last part is not resolved, so
    a page that is a symlink is itself replaced or removed, never its target.
    """
    path = root / page
    try:
        folder = path.parent.resolve()
    except (OSError, RuntimeError):  # a symlink loop leads nowhere
        return None
    if folder != root and root not in folder.parents:
        return None
    return folder / path.name


def _target(root: Path, page: str) -> Path:
    """Where the site's file ``page`` is written: inside ``root``, or an AtlasError when a symlink leads out."""
    path = _within(root, page)
    if path is None:
        raise AtlasError(f"{root / page}: its folder is a symlink leading outside the site folder {root} (or a "
                         "symlink loop); explore writes only inside the site: remove the link")
    return path


def _page_name(name: object) -> bool:
    """Whether a state file's entry can name a page of the site: a relative POSIX path to an .html file, without
    ``..``, ``.``, empty parts, backslashes or NUL."""
    if not isinstance(name, str) or not name.endswith(".html") or "\\" in name or "\0" in name:
        return False
    parts = name.split("/")
    return not os.path.isabs(name) and all(part not in ("", ".", "..") for part in parts)


def _load_state(root: Path) -> dict[str, str] | None:
    """The pages (relative path -> fingerprint) the site's state file lists; None when there is none.

    Raises InvalidParameterError when the file is malformed: not JSON, not ``{"format": 1, "pages": {...}}``, or a
    page that is not a relative path to an .html file inside the site (an absolute path, ``..``).
    """
    path = root / STATE

    def bad(why: str) -> InvalidParameterError:
        return InvalidParameterError(
            f"{path} is not an explorer site's state file ({why}); explore removes only the pages a valid one lists: "
            f"name another folder, delete {STATE} if the site is yours, or pass --replace (replace=True) to write "
            "the site over the folder, ignoring the file (nothing is removed then)")

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise bad(f"unreadable: {exc.strerror or exc}") from None
    try:
        state = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad("not JSON") from None
    if not isinstance(state, dict) or type(state.get("format")) is not int or state["format"] != 1:
        raise bad('not an object {"format": 1, "pages": {...}}')
    pages_fp = state.get("pages")
    if not isinstance(pages_fp, dict):
        raise bad(f'"pages" is {type(pages_fp).__name__ if pages_fp is not None else "null"}, not an object of '
                  "page -> fingerprint")
    for name, fp in pages_fp.items():
        if not _page_name(name):
            raise bad(f"page {name!r} is not a relative path to an .html file inside the site")
        if not isinstance(fp, str):
            raise bad(f"the fingerprint of {name!r} is {type(fp).__name__}, not a string")
    return pages_fp


def _save_state(root: Path, pages_fp: dict[str, str]) -> None:
    _write(root / STATE, json.dumps({"format": 1, "pages": pages_fp}, indent=0, sort_keys=True))
