"""Write the explorer site for an atlas: pages, vendored assets and a fingerprint file that makes reruns incremental.

A model's pages are regenerated only when the fingerprint of their inputs changed: the model's files (names, sizes
and modification times, or Hub blob ids), its rows of the languages table, and neuron-atlas' code. Every file is
written atomically and the fingerprints are saved after each model, so an interrupted run keeps what it finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .. import __version__
from .. import atlas as atlas_mod
from .._utils.files import write_atomically
from ..errors import UnknownLanguageError
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
               models: list[str] | None = None, force: bool = False,
               log: Callable[[str], None] | None = None) -> SiteReport:
    """Write (or bring up to date) the static explorer of ``atlas`` under ``out``; returns what was done.

    ``atlas`` is an open Atlas, a folder, an ``hf://`` address or None (the embedded atlas); ``models`` limits the
    site to some models; ``force`` regenerates every page.
    """
    start = time.perf_counter()
    source = None if atlas is None or isinstance(atlas, atlas_mod.Atlas) else os.fspath(atlas)
    opened = atlas if isinstance(atlas, atlas_mod.Atlas) else atlas_mod.open(source)
    embedded = source is None and Path(opened.layout.root).resolve() == atlas_mod.EMBEDDED.resolve()
    label = pages.EMBEDDED_LABEL if embedded else (source or str(opened.layout.root))
    atlas_arg = pages.atlas_argument(source or str(opened.layout.root), embedded)
    slugs = opened.model_slugs if models is None else [opened.model(m).model for m in models]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    old = {} if force else _load_state(out)
    state: dict[str, str] = {}
    written = unchanged = 0

    space = out / "README.md"  # a Hugging Face static Space serves the folder as it is
    if not space.exists():
        _write(space, SPACE_CARD)
    for name in ASSETS:
        data = resources.files(__package__).joinpath("assets", name).read_bytes()
        target = out / "assets" / name
        if not target.is_file() or target.read_bytes() != data:
            write_atomically(target, lambda tmp, data=data: Path(tmp).write_bytes(data))

    code = _code_fingerprint()
    index_rows, fingerprints = [], []
    for slug in slugs:
        fp = _digest(code, model_fingerprint(opened, slug), atlas_arg, label)
        fingerprints.append(fp)
        tags = opened.langs_of(slug)
        paths = [pages.model_path(slug)] + [pages.lang_path(slug, t) for t in tags]
        if all(old.get(p) == fp and (out / p).is_file() for p in paths):
            index_rows.append((opened.model(slug), languages_of(opened, slug, tags)))
            state.update({p: fp for p in paths})
            unchanged += len(paths)
            if log:
                log(f"{slug}: unchanged ({len(paths)} pages)")
            continue
        t0 = time.perf_counter()
        data = gather_model(opened, slug)
        index_rows.append((data.row, data.langs))
        _write(out / pages.model_path(slug), pages.model_page(data, _panel(data.tags), label, __version__))
        for i, tag in enumerate(data.tags):
            _write(out / pages.lang_path(slug, tag), pages.lang_page(data, i, atlas_arg, label, __version__))
        state.update({p: fp for p in paths})
        written += len(paths)
        _save_state(out, {**old, **state})  # an interrupted run keeps the models it finished
        if log:
            log(f"{slug}: {len(paths)} pages in {time.perf_counter() - t0:.1f} s")

    index_fp = _digest(code, label, *fingerprints)
    if old.get("index.html") == index_fp and (out / "index.html").is_file():
        unchanged += 1
    else:
        _write(out / "index.html", pages.index_page(index_rows, label, __version__))
        written += 1
    state["index.html"] = index_fp
    removed = 0
    for stale in set(old) - set(state):  # pages of models or languages no longer in the atlas
        path = out / stale
        if path.is_file():
            path.unlink()
            removed += 1
    _save_state(out, state)
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


def _load_state(out: Path) -> dict[str, str]:
    try:
        state = json.loads((out / STATE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return state.get("pages", {}) if isinstance(state, dict) else {}


def _save_state(out: Path, pages_fp: dict[str, str]) -> None:
    _write(out / STATE, json.dumps({"format": 1, "pages": pages_fp}, indent=0, sort_keys=True))
