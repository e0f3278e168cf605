"""Checking an atlas' files against what they claim, so that a corrupt file gives a named error, not a wrong answer.

``check_atlas`` is cheap (Parquet footers: row counts, min/max statistics, metadata; no data is scanned) and runs
when an atlas is queried: files failing it are left out and named. ``verify`` scans everything thoroughly.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import containment
from . import metadata as file_meta
from . import fingerprint
from ..languages import tags as langs_mod
from ..errors import AtlasError, AtlasFormatError
from .schema import TABLES, ModelRow
from .layout import Layout, check_schema, file_metadata, read_checked, read_parquet
from .checks import column_problems, value_problems

_UNKNOWN = -1  # token count of a shard whose footer was not read
# Tables with their own checks below; every other table of schema.TABLES gets the generic ones: its footer against
# the documented schema (check_atlas), and (verify) a read of every page.
_DEDICATED = ("models", "languages", "counts", "activations", "residual", "ranking", "lape")  # checked per model
_FIX = "re-derive with AtlasWriter(root).finalize(model) (or rerun the build)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file of the atlas."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ModelCheck:
    """What of one model passed the cheap checks: its row, its good shards (tag -> tokens), its derived tables."""

    slug: str
    row: ModelRow | None = None
    shards: dict[str, int] = field(default_factory=dict)  # the shards that passed
    present: list[str] = field(default_factory=list)  # every shard folder, passing or not
    derived_ok: bool = False
    imported: bool = False
    stats: dict[str, list[str]] = field(default_factory=lambda: {"activations": [], "residual": []})  # passing v2 files
    problems: list[Problem] = field(default_factory=list)
    footers: bool = True  # False: only the folder layout was checked (remote atlases), no file was read
    fingerprints: bool = False  # every file must carry a content fingerprint (the manifest says so)
    tables: dict[str, pa.Table] = field(default_factory=dict)  # derived tables as read by the checks

    @property
    def usable(self) -> bool:
        """Whether SQL may read the model: its row passed, or (remote) was not read at all."""
        return self.row is not None or not self.footers


@dataclass
class AtlasCheck:
    """The cheap checks of a whole atlas: per model, plus the shared files."""

    models: dict[str, ModelCheck]
    languages_ok: bool
    files: dict[str, list[str]]  # per table of schema.TABLES, the files that passed (what SQL may read)
    problems: list[Problem]


def footer(layout: Layout, path: str) -> pq.FileMetaData:
    """The Parquet footer of ``path`` (the only part of the file read)."""
    return pq.read_metadata(layout.fs.open(path, "rb") if layout.fs is not None else containment.confined(path))


def _stats(md: pq.FileMetaData, column: str) -> tuple[Any, Any] | None:
    """(min, max) of ``column`` over all row groups from the footer statistics, or None where they are missing."""
    names = [md.schema.column(j).name for j in range(md.num_columns)]
    if column not in names or md.num_row_groups == 0:
        return None
    j, lo, hi = names.index(column), [], []
    for i in range(md.num_row_groups):
        st = md.row_group(i).column(j).statistics
        if st is None or not st.has_min_max:
            return None
        lo.append(st.min)
        hi.append(st.max)
    return min(lo), max(hi)


def _meta(md: pq.FileMetaData) -> dict:
    """The footer's neuron-atlas metadata, or ``{"_invalid": True}`` when it is corrupt."""
    try:
        return file_metadata(md)
    except AtlasFormatError:
        return {"_invalid": True}


def fingerprints_required(layout: Layout) -> bool:
    """Whether the atlas' manifest says every file carries a content fingerprint (atlases written since it does)."""
    from .reader import read_manifest

    try:
        return bool(read_manifest(layout).fingerprinted)
    except AtlasError:
        return False


def _read_footer(layout: Layout, path: str, kind: str, fingerprints: bool = False,
                 specific=None) -> tuple[pq.FileMetaData | None, list[str]]:
    """The footer of ``path`` and what it shows to be wrong with the file as a ``kind`` table: schema, typed
    metadata, then ``specific(md)`` (the kind's own checks), then extra or clashing columns and the fingerprint."""
    try:
        md = footer(layout, path)
        schema = md.schema.to_arrow_schema()
        check_schema(schema, kind, path)
        file_meta.parse(file_metadata(md, path), kind, path)
    except AtlasFormatError as exc:
        return None, [str(exc).removeprefix(f"{path}: ")]
    except (pa.ArrowException, OSError, ValueError) as exc:
        return None, [f"not a readable Parquet file ({str(exc).splitlines()[0]}); expected a '{kind}' table"]
    problems = specific(md) if specific else []
    if not problems:
        problems = column_problems(schema, kind)
        wrong = fingerprint.problem(md, path, fingerprints)
        problems += [wrong] if wrong else []
    return (None, problems) if problems else (md, [])


def _range(md: pq.FileMetaData, column: str, lo: int, hi: int, what: str, exact: bool = False) -> list[str]:
    """A problem if the column's statistics leave [lo, hi] (with ``exact``: do not span exactly lo..hi)."""
    got = _stats(md, column)
    if got is not None and ((got[0], got[1]) != (lo, hi) if exact else (got[0] < lo or got[1] > hi)):
        return [f"{column} spans {got[0]}..{got[1]}, {'not' if exact else 'outside'} {lo}..{hi} ({what})"]
    return []


def shard_problems(md: pq.FileMetaData, row: ModelRow, lang: str) -> list[str]:
    """What the footer of the (row.model, lang) counts shard shows to be wrong."""
    n, problems = row.n_layers * row.ffn_width, []
    if md.num_rows != n:
        problems.append(f"{md.num_rows} rows, expected {n} (= {row.n_layers} layers × {row.ffn_width} neurons "
                        "of its model.parquet); a truncated shard or a wrong ffn_width/n_layers")
    meta = _meta(md)
    if meta.get("lang", lang) != lang or meta.get("model", row.model) != row.model:
        problems.append(f"holds the counts of {meta.get('model')}/{meta.get('lang')}, not {row.model}/{lang}; "
                        "a shard copied into another folder?")
    problems += _range(md, "layer", 0, row.n_layers - 1, f"{row.n_layers} layers", exact=True)
    problems += _range(md, "neuron", 0, row.ffn_width - 1, f"ffn_width {row.ffn_width}", exact=True)
    tokens, fired = _stats(md, "tokens"), _stats(md, "fired")
    if tokens is not None:
        if tokens[0] != tokens[1]:
            problems.append(f"mixed token counts {tokens[0]}..{tokens[1]}; every row of a shard holds the language's one count")
        if tokens[0] < 0:
            problems.append(f"negative token count {tokens[0]}")
        if "tokens" in meta and meta["tokens"] != tokens[1]:
            problems.append(f"metadata says {meta['tokens']} tokens, the rows {tokens[1]}")
    if fired is not None:
        if fired[0] < 0:
            problems.append(f"negative fired count {fired[0]}")
        if tokens is not None and fired[1] > tokens[0]:
            problems.append(f"a neuron fired on {fired[1]} tokens of {tokens[0]} (fired must lie in [0, tokens])")
    return problems


def stats_problems(md: pq.FileMetaData, kind: str, row: ModelRow, lang: str, tokens: int) -> list[str]:
    """What the footer of a v2 ``activations``/``residual`` file of (row.model, lang) shows to be wrong; ``tokens``:
    its counts shard's token count (_UNKNOWN when not read)."""
    grid = kind == "activations"
    n = row.n_layers * row.ffn_width if grid else row.n_layers + 1
    problems = []
    if md.num_rows != n:
        shape = f"{row.n_layers} layers × {row.ffn_width} neurons" if grid else f"output_hidden_states 0..{row.n_layers}"
        problems.append(f"{md.num_rows} rows, expected {n} (= {shape} of its model.parquet)")
    meta = _meta(md)
    if meta.get("lang", lang) != lang or meta.get("model", row.model) != row.model:
        problems.append(f"holds the {kind} of {meta.get('model')}/{meta.get('lang')}, not {row.model}/{lang}; "
                        "a file copied into another folder?")
    problems += _range(md, "layer", 0, row.n_layers - int(grid), "its model's layers", exact=True)
    if grid:
        problems += _range(md, "neuron", 0, row.ffn_width - 1, f"ffn_width {row.ffn_width}", exact=True)
        var = _stats(md, "var")
        if var is not None and var[0] < 0:
            problems.append(f"negative variance {var[0]}")
    got = _stats(md, "tokens")
    if got is not None and (got[0] != got[1] or (tokens != _UNKNOWN and got[0] != tokens)):
        problems.append(f"token counts {got[0]}..{got[1]}, but the language's counts shard has {tokens}; every row "
                        "holds the shard's one count (files of two builds mixed?)")
    return problems


def derived_problems(md: pq.FileMetaData, kind: str, row: ModelRow, shards: dict[str, int], present: list[str]) -> list[str]:
    """What the footer of a ``ranking``/``lape`` file shows: wrong shape or values, or stale: derived from other
    languages than the ``present`` shards, or other token counts than the good ``shards`` hold."""
    n, meta, problems = row.n_layers * row.ffn_width, _meta(md), []
    missing = {"languages", "stored_top_rate"} - set(meta)
    if missing:
        return [f"metadata lacks {sorted(missing)}; {_FIX}"]
    grid = kind == "ranking"  # every neuron once, like a shard
    if grid and md.num_rows != n:
        problems.append(f"{md.num_rows} rows, expected {n} (= {row.n_layers} layers × {row.ffn_width} neurons)")
    problems += _range(md, "layer", 0, row.n_layers - 1, f"{row.n_layers} layers", exact=grid)
    problems += _range(md, "neuron", 0, row.ffn_width - 1, f"ffn_width {row.ffn_width}", exact=grid)
    if meta.get("imported"):
        return problems
    if kind == "lape":
        problems += _range(md, "p", 0, 1, "a probability")
        problems += _range(md, "rank", 0, max(round(n * float(meta["stored_top_rate"])) - 1, 0), "the stored top share")
    else:
        problems += _range(md, "rank", -1, n - 1, f"{n} neurons")
    derived_from = {str(k): v for k, v in (meta.get("tokens") or {}).items()}
    if sorted(meta["languages"]) != sorted(present):
        added, removed = sorted(set(present) - set(meta["languages"])), sorted(set(meta["languages"]) - set(present))
        problems.append(f"stale: derived from {len(meta['languages'])} languages, the model has {len(present)} shards "
                        f"(new: {', '.join(added) or '-'}; gone: {', '.join(removed) or '-'}); {_FIX}")
    elif derived_from:
        changed = sorted(t for t in shards if shards[t] != _UNKNOWN and derived_from.get(t) != shards[t])
        if changed:
            problems.append(f"stale: derived from other token counts for {', '.join(changed)}; {_FIX}")
    return problems


def check_model(layout: Layout, slug: str, footers: bool = True, shards: bool = True,
                fingerprints: bool | None = None, row: ModelRow | None = None) -> ModelCheck:
    """Cheap checks of one model: its row, each shard's footer (unless not ``shards``), its derived tables' footers
    and values (unless not ``footers``: remote atlases, where each footer is a request). ``fingerprints``: whether
    every file must carry one (None: as the manifest says); ``row``: the model's row, already read and checked."""
    from .reader import read_model

    check = ModelCheck(slug, footers=footers)
    check.fingerprints = fingerprints_required(layout) if fingerprints is None and footers else bool(fingerprints)
    if not footers:  # a remote atlas: each file read is a request, and a query reads only its model's files
        check.present = layout.count_langs(slug)
        check.shards = {t: _UNKNOWN for t in check.present}
        check.derived_ok = True
        for kind in check.stats:
            check.stats[kind] = [t for t in layout.stats_langs(slug, kind) if t in check.shards]
        return check
    path = layout.file("models", model=slug)
    try:
        check.row = row or read_model(layout, slug, fingerprints=check.fingerprints)
    except AtlasError as exc:
        check.problems.append(Problem(path, str(exc).removeprefix(f"{path}: ")))
        return check
    for stray in layout.stray_langs(slug):
        check.problems.append(Problem(layout.path("counts", f"model={slug}", f"lang={stray}"),
                                      f"'{stray}' is not a canonical language tag like tgl_Latn; this folder is ignored"))
    langs = check.present = layout.count_langs(slug)
    if not shards:
        check.shards = {t: _UNKNOWN for t in langs}
        check.derived_ok = _check_derived(layout, check)
        for kind in check.stats:
            check.stats[kind] = [t for t in layout.stats_langs(slug, kind) if t in check.shards]
        return check
    paths = [layout.file("counts", model=slug, lang=t) for t in langs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        read = list(pool.map(lambda pl: _read_footer(layout, pl[0], "counts", check.fingerprints,
                                                     lambda md: shard_problems(md, check.row, pl[1])),
                             zip(paths, langs)))
    for lang, path, (md, problems) in zip(langs, paths, read):
        if problems:
            check.problems += [Problem(path, p) for p in problems]
        else:
            tokens = _stats(md, "tokens")
            check.shards[lang] = tokens[0] if tokens else _meta(md).get("tokens", _UNKNOWN)
    check.derived_ok = _check_derived(layout, check)
    _check_stats(layout, check)
    return check


def _check_stats(layout: Layout, check: ModelCheck) -> None:
    """Footer checks of the v2 statistics files of the model's passing shards; stray files (no shard) are named."""
    for kind in check.stats:
        langs = layout.stats_langs(check.slug, kind)
        for lang in sorted(set(langs) - set(check.present)):
            check.problems.append(Problem(layout.file(kind, model=check.slug, lang=lang),
                                          "no counts shard for this language (an interrupted write?); ignored"))
        langs = [t for t in langs if t in check.shards]
        paths = [layout.file(kind, model=check.slug, lang=t) for t in langs]
        with ThreadPoolExecutor(max_workers=8) as pool:
            read = list(pool.map(_read_footer, [layout] * len(paths), paths, [kind] * len(paths)))
        for lang, path, (md, problems) in zip(langs, paths, read):
            problems = problems or stats_problems(md, kind, check.row, lang, check.shards[lang])
            check.problems += [Problem(path, p) for p in problems]
            if not problems:
                check.stats[kind].append(lang)


def _check_derived(layout: Layout, check: ModelCheck) -> bool:
    ok = True
    for kind, path in (("lape", layout.file("lape", model=check.slug)), ("ranking", layout.file("ranking", model=check.slug))):
        if not layout.exists(path):
            if kind == "lape" or not check.imported:
                ok = False
                check.problems.append(Problem(path, _missing(kind, check)))
            continue
        try:  # derived tables are small: read whole once, footer and values checked on the one read
            table, md, generic = read_checked(path, kind, fs=layout.fs, fingerprints=check.fingerprints)
            meta = file_meta.parse(file_metadata(md, path), kind, path)
            check.tables[kind] = table
        except AtlasFormatError as exc:
            table, problems = None, [str(exc).removeprefix(f"{path}: ")]
        if table is not None:
            check.imported = check.imported or bool(meta.get("imported"))
            problems = derived_problems(md, kind, check.row, check.shards, check.present)
            if not problems and not check.imported:
                problems = value_problems(table, kind, check.row)
            problems = problems or generic
        check.problems += [Problem(path, p) for p in problems]
        ok = ok and not problems
    return ok


def _missing(kind: str, check: ModelCheck) -> str:
    if not check.present:
        return (f"missing, and the model has no count shards either: a half-built or half-merged model (rerun the "
                f"build or merge that was interrupted, or delete models/model={check.slug})")
    return f"missing: the model's {len(check.present)} shards have no derived '{kind}' table; {_FIX}"


def check_atlas(layout: Layout, footers: bool = True, shards: bool = True) -> AtlasCheck:
    """Cheap checks of every model and of the shared files; ``footers=False`` skips per-file reads, ``shards=False``
    the count shards' footers (remote SQL: a query for one model fetches only that model's shards).

    A symlink leading outside a local atlas is a problem, and every file reached through it is left out."""
    required = fingerprints_required(layout) if footers else False
    links = containment.escapes(layout.root) if layout.fs is None else []
    problems = [Problem(link, why) for link, why in links]
    models = {slug: check_model(layout, slug, footers, shards, fingerprints=required) for slug in layout.model_slugs()}
    for model in models.values():
        problems += model.problems
        _leave_out_linked(layout, model, [link for link, _ in links])
    for folder in layout.glob_files(layout.path("counts", "*")):
        slug = folder.rsplit("/", 1)[-1].removeprefix("model=")
        if slug not in models and layout.glob_files(layout.path("counts", f"model={slug}", "*", "counts.parquet")):
            problems.append(Problem(folder, "counts of a model with no models/model=<slug>/model.parquet; ignored"))
    languages_ok = layout.exists(layout.file("languages")) and not _linked(layout.file("languages"), links)
    if languages_ok and footers:
        bad = _read_footer(layout, layout.file("languages"), "languages", required)[1] or _language_rows(layout)
        problems += [Problem(layout.file("languages"), p) for p in bad]
        languages_ok = not bad
    files = _passed(layout, models, languages_ok)
    for table in TABLES:
        if table.name in _DEDICATED:
            continue
        for _, path in layout.files(table.name):
            if _linked(path, links):
                continue
            bad = _read_footer(layout, path, table.name, required)[1] if footers else []
            problems += [Problem(path, p) for p in bad]
            if not bad:
                files[table.name].append(path)
    return AtlasCheck(models, languages_ok, files, problems)


def _passed(layout: Layout, models: dict[str, ModelCheck], languages_ok: bool) -> dict[str, list[str]]:
    """Per table, the files of the dedicated tables that passed their checks."""
    files: dict[str, list[str]] = {t.name: [] for t in TABLES}
    for slug, model in sorted(models.items()):
        if not model.usable:
            continue
        files["models"].append(layout.file("models", model=slug))
        files["counts"] += [layout.file("counts", model=slug, lang=t) for t in sorted(model.shards)]
        for kind, langs in model.stats.items():
            files[kind] += [layout.file(kind, model=slug, lang=t) for t in sorted(langs)]
        if model.derived_ok:
            files["lape"].append(layout.file("lape", model=slug))
            if layout.exists(layout.file("ranking", model=slug)):
                files["ranking"].append(layout.file("ranking", model=slug))
    if languages_ok:
        files["languages"].append(layout.file("languages"))
    return files


def _linked(path: str, links: list) -> bool:
    """Whether ``path`` is, or lies under, one of the escaping symlinks."""
    return any(path == str(link) or path.startswith(str(link) + "/") for link, *_ in links)


def _leave_out_linked(layout: Layout, check: ModelCheck, links: list[str]) -> None:
    """Drop from a model's check what lies under an escaping symlink: shards, derived tables, or the whole model."""
    if not links:
        return
    pairs = [(link,) for link in links]
    if _linked(layout.file("models", model=check.slug), pairs) or _linked(layout.counts_dir(check.slug), pairs):
        check.row, check.shards, check.derived_ok = None, {}, False
        return
    check.shards = {t: n for t, n in check.shards.items() if not _linked(layout.file("counts", model=check.slug, lang=t), pairs)}
    if _linked(layout.file("lape", model=check.slug), pairs) or _linked(layout.file("ranking", model=check.slug), pairs):
        check.derived_ok = False


def _language_rows(layout: Layout) -> list[str]:
    """Problems of languages.parquet's rows that joins would suffer from: a tag listed twice."""
    from .layout import read_parquet

    try:
        tags = read_parquet(layout.file("languages"), "languages", ["lang"], fs=layout.fs).column("lang").to_pylist()
    except AtlasError as exc:
        return [str(exc).removeprefix(layout.file("languages") + ": ")]
    return _listed_twice(tags)


def _listed_twice(tags: list[str]) -> list[str]:
    """A problem naming the tags listed more than once (joins would count them twice), or none."""
    twice = sorted({t for t in tags if tags.count(t) > 1}) if len(set(tags)) != len(tags) else []
    return [(f"rows for {', '.join(map(str, twice))} appear more than once (joins would count them twice); "
             "one row per language")] if twice else []


def verify(atlas: Any) -> list[Problem]:
    """Every problem of the atlas (an Atlas or a path), reading all data: the cheap checks, then each shard's rows,
    the languages table, and the derived tables recomputed from the shards and compared with the stored ones.

    Args:
        atlas: an ``Atlas``, a ``Layout`` (a remote atlas: ``na.open(url).layout``) or a local folder's path.

    Returns:
        list[Problem]: one per thing wrong (``Problem.path`` names the file, ``Problem.message`` what is wrong
        and how to fix it); empty when every file passed. Local atlases also list languages stored under a
        non-canonical tag.

    Raises:
        AtlasNotFoundError: the folder does not exist or holds no ``atlas.json``.
        AtlasFormatError: ``atlas.json`` is unreadable, not a neuron-atlas manifest, or of a newer format version.
    """
    from .reader import read_manifest

    layout = atlas if isinstance(atlas, Layout) else atlas.layout if hasattr(atlas, "layout") else Layout(str(atlas))
    read_manifest(layout)  # not an atlas, or an unreadable manifest: raises
    check = check_atlas(layout)
    problems = list(check.problems)
    for model in check.models.values():
        if model.row is None:
            continue  # its problem is listed
        problems += _verify_model(layout, model)
    problems += _verify_languages(layout, check)
    for table in TABLES:
        if table.name not in _DEDICATED:
            problems += _verify_pages(layout, table.name, check.files[table.name])
    if layout.fs is None:  # a language under another code than its canonical tag (swa_Latn for swh_Latn)
        problems += tag_problems(layout, check.files)
    return problems


def _verify_pages(layout: Layout, table: str, paths: list[str]) -> list[Problem]:
    """Read every page of the files (checksums, schema): a flipped byte or a truncated page is named."""
    problems = []
    for path in paths:
        try:
            read_parquet(path, table, fs=layout.fs)
        except AtlasError as exc:
            problems.append(Problem(path, str(exc).removeprefix(f"{path}: ")))
    return problems


def _verify_model(layout: Layout, check: ModelCheck) -> list[Problem]:
    from .derived import derived_tables
    from .reader import read_derived, read_shard

    problems, fired, tokens, langs = [], [], [], []
    for lang in check.present:
        try:
            known = langs_mod.parse_code(lang).tag == lang  # another code of the language: tag_problems names it
        except AtlasError:
            known = False
        if not known:
            problems.append(Problem(layout.counts_dir(check.slug) + f"/lang={lang}",
                                    f"'{lang}' is shaped like a tag but is not the canonical tag of a known language"))
    for lang in check.shards:
        try:
            f, t = read_shard(layout, check.row, lang)
        except AtlasError as exc:
            path = layout.file("counts", model=check.slug, lang=lang)
            problems.append(Problem(path, str(exc).removeprefix(f"{path}: ")))
            continue
        fired.append(f)
        tokens.append(t)
        langs.append(lang)
    problems += _verify_stats(layout, check)
    if check.imported or problems or sorted(langs) != sorted(check.present) or not langs:
        return problems  # derived tables are compared only when every shard is readable
    try:  # even when the cheap checks failed them: the comparison says what was changed
        stored_lape = read_derived(layout, check.slug).table
        stored_ranking = read_parquet(layout.file("ranking", model=check.slug), "ranking", fs=layout.fs)
    except (AtlasError, AttributeError):  # unreadable or missing (None): already listed
        return problems
    ranking, lape_rows, _ = derived_tables(check.row, langs, np.stack(fired), np.array(tokens, dtype=np.int64))
    for path, stored, fresh, keys in (
        (layout.file("ranking", model=check.slug), stored_ranking, ranking, ["layer", "neuron"]),
        (layout.file("lape", model=check.slug), stored_lape, lape_rows, ["lang", "rank"]),
    ):
        stored = stored.select(fresh.column_names).sort_by([(k, "ascending") for k in keys])
        fresh = fresh.sort_by([(k, "ascending") for k in keys])
        if not _same(stored, fresh):
            problems.append(Problem(path, f"differs from the tables recomputed from the shards (tampered?); {_FIX}"))
    return problems


def _verify_stats(layout: Layout, check: ModelCheck) -> list[Problem]:
    """Read every v2 statistics file that passed the footer checks: grid, finite values, var >= 0, residual width."""
    from .reader import read_activations, read_residual

    problems = []
    for kind, read in (("activations", read_activations), ("residual", read_residual)):
        for lang in check.stats[kind]:
            try:
                read(layout, check.row, lang)
            except AtlasError as exc:
                path = layout.file(kind, model=check.slug, lang=lang)
                problems.append(Problem(path, str(exc).removeprefix(f"{path}: ")))
    return problems


def _same(a: pa.Table, b: pa.Table) -> bool:
    if a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        x, y = a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(zero_copy_only=False)
        if x.dtype.kind == "f":
            if not np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _verify_languages(layout: Layout, check: AtlasCheck) -> list[Problem]:

    tags = {t for m in check.models.values() for t in m.shards}
    if not tags and not layout.exists(layout.file("languages")):
        return []
    try:
        rows = read_parquet(layout.file("languages"), "languages", fs=layout.fs).to_pylist()
    except AtlasError as exc:
        return [Problem(layout.file("languages"), str(exc).removeprefix(layout.file("languages") + ": "))]
    return [Problem(layout.file("languages"), text) for text in language_row_problems(rows, tags)]


def language_row_problems(rows: list[dict[str, Any]], tags: Iterable[str]) -> list[str]:
    """What is wrong with languages.parquet's ``rows`` for an atlas whose shards hold ``tags``: a row that is no
    language tag or disagrees with the tag's parse (a wrong name or script), a tag listed twice, a tag with no row.
    ``verify`` lists them all; ``Atlas.languages`` refuses to answer from rows with any."""
    problems, listed = [], []
    for r in rows:
        listed.append(r["lang"])
        try:
            info = langs_mod.parse_code(r["lang"])  # the row as written; tag_problems names a non-canonical tag
        except AtlasError:
            problems.append(f"row {r['lang']!r} is not a language tag")
            continue
        if (info.tag, info.iso639_3, info.script, info.name) != (r["lang"], r["iso639_3"], r["script"], r["name"]):
            problems.append(f"row {r} disagrees with the tag's parse ({info.tag}, {info.iso639_3}, {info.script}, "
                            f"{info.name})")
    problems += _listed_twice(listed)
    missing = sorted(set(tags) - set(listed))
    if missing:
        problems.append(f"no row for {', '.join(missing)}, which have shards")
    return problems


_KEYED = re.compile(r"^(lang|pair)=(.+)$")  # hive folders holding language tags


def atlas_tags(layout: Layout, passed: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Every language tag the atlas stores, with where: the languages table, ``lang=``/``pair=`` folders, the
    languages and rows of each stored ``lape`` table (``passed``: only the files that passed ``check_atlas``, so
    that a damaged or escaping file, already named, is not read)."""
    where: dict[str, list[str]] = {}
    languages = [layout.file("languages")] if layout.exists(layout.file("languages")) else []
    lapes = layout.glob_files(layout.path("lape", "model=*", "lape.parquet"))
    if passed is not None:
        languages, lapes = passed["languages"], passed["lape"]
    for path in languages:
        for tag in read_parquet(path, "languages", fs=layout.fs).column("lang").to_pylist():
            where.setdefault(tag, []).append(path)
    for path in layout.glob_files(layout.path("*", "model=*", "*=*")):
        match = _KEYED.match(path.rsplit("/", 1)[-1])
        if match:
            for tag in match.group(2).split("-") if match.group(1) == "pair" else [match.group(2)]:
                where.setdefault(tag, []).append(path)
    for path in lapes:
        table = read_parquet(path, "lape", columns=["lang"], fs=layout.fs)
        meta = file_metadata(table, path)
        for tag in set(meta.get("languages", [])) | set(pc.unique(table.column("lang")).to_pylist()):
            where.setdefault(tag, []).append(path)
    return where


def tag_problems(layout: Layout, passed: dict[str, list[str]] | None = None) -> list[Problem]:
    """A problem for each place an atlas stores a language under a tag that is not its canonical one (an atlas
    written before ``data/language_tags.csv``; ``neuron-atlas migrate-tags`` renames them)."""
    problems = []
    stored = atlas_tags(layout, passed)
    for old, new in sorted(langs_mod.noncanonical(list(stored)).items()):
        for path in dict.fromkeys(stored[old]):
            message = (f"stores {langs_mod.parse(new).name} as {old}, not its canonical tag {new} "
                       f"(neuron_atlas/data/language_tags.csv); run `neuron-atlas migrate-tags {layout.root}` to rename it")
            problems.append(Problem(path, message))
    return problems
