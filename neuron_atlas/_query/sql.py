"""Read-only DuckDB views over an atlas' Parquet files, with bound parameters and Arrow results.

The connection can read only the atlas files that passed validation (``allowed_paths``; no directory, no temp
folder, no extensions), and a query can be interrupted (Ctrl-C) or given a timeout.
"""
from __future__ import annotations

import glob
import threading
import time
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from .._utils import arguments
from ..format.containment import hive_safe
from ..errors import AtlasError, AtlasFormatError, InvalidParameterError, warn
from ..format.schema import CORRUPT_VIEW_ROW, TABLES
from ..format.layout import Layout, file_metadata
from ..format.verify import AtlasCheck, Problem, check_atlas

# DuckDB errors caused by the query's text (the user's input) rather than by the data or the machine (DuckDB's
# InvalidInputException is both, e.g. a corrupt file, so it counts as a failure)
_QUERY_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException, duckdb.PermissionException,
                 duckdb.ConversionException, duckdb.NotImplementedException)
_CONFIG = {"threads": 2, "autoinstall_known_extensions": False, "autoload_known_extensions": False,
           "temp_directory": ""}  # no spilling, so no temp folder becomes readable


class AtlasSQL:
    """One in-memory DuckDB connection whose views read the atlas' valid files; only one SELECT runs at a time."""

    def __init__(self, layout: Layout, check: AtlasCheck | None = None) -> None:
        self.layout = layout
        # remote atlases get the same checks but the shards' footers: a query for one model fetches only its shards
        check = check or check_atlas(layout, shards=layout.fs is None)
        self.problems = check.problems
        if check.problems:
            listing = "\n  ".join(map(str, check.problems[:20]))
            more = f"\n  ... and {len(check.problems) - 20} more" if len(check.problems) > 20 else ""
            warn(f"SQL over {layout.root} leaves out files that failed validation "
                 f"(`neuron-atlas verify` lists all):\n  {listing}{more}")
        self._lock = threading.Lock()
        files = check.files
        try:
            self._views(layout, files)
        except duckdb.Error as exc:  # a footer pyarrow reads but DuckDB's stricter parser does not: leave it out
            bad = _unreadable(files) if layout.fs is None else []
            if not bad:
                raise AtlasError(f"SQL over {layout.root}: DuckDB cannot read the atlas' files ({_one_line(exc)}); "
                                 "`neuron-atlas verify` names the damaged file") from None
            self.problems = [*self.problems, *(Problem(f, why) for f, why in bad)]
            warn(f"SQL over {layout.root} leaves out files DuckDB cannot read:\n  "
                 + "\n  ".join(f"{f}: {why}" for f, why in bad))
            dropped = {f for f, _ in bad}
            self._views(layout, {name: [f for f in paths if f not in dropped] for name, paths in files.items()})

    def _views(self, layout: Layout, files: dict[str, list[str]]) -> None:
        """One view per table, named by its description, over the files that passed the checks; then the
        connection is locked to exactly those files."""
        self.con = duckdb.connect(config=_CONFIG)
        for table in TABLES:
            found = files[table.name]
            keys = tuple(k for k in table.keys if k not in table.arrow.names)  # models' rows name their model
            if not found:  # an empty placeholder with the documented columns
                relation = self.con.from_arrow(_with_keys(table.arrow, keys).empty_table())
            elif layout.fs is not None or glob.has_magic(layout.root) or not hive_safe(layout.root):
                # DuckDB would read the paths as globs, or take partition keys from folders above the atlas
                relation = self.con.from_arrow(_dataset(layout, found, keys, table.arrow))
            else:  # paths passed as values, never pasted into SQL text
                relation = self.con.read_parquet(found, hive_partitioning=bool(keys), union_by_name=True)
            relation.project(f"*{table.sql_columns}").create_view(table.view_name)
        # The default LAPE sets (top 1% of each model's L·d neurons), and, apart, the imported sets (no rank) with the
        # rate and source they were published with (read from their files' footers when a query reaches them)
        self.con.execute(
            "CREATE VIEW lape AS SELECT s.* FROM lape_stored s JOIN models m USING (model) "
            "WHERE s.rank < round(m.n_layers * m.ffn_width * 0.01)"
        )
        published = PublishedSets(layout)
        for name, column, kind in (("published_top_rate", "stored_top_rate", "DOUBLE"), ("published_source", "source", "VARCHAR")):
            self.con.create_function(name, published.column(column), ["VARCHAR"], kind, type="arrow",
                                     side_effects=False)
        self.con.execute(
            "CREATE VIEW imported AS SELECT model, lang, layer, neuron, published_top_rate(model) AS top_rate, "
            "published_source(model) AS source FROM lape_stored WHERE rank IS NULL"
        )
        local = [f for table in TABLES for f in files[table.name]] if layout.fs is None else []
        self.con.execute("SET allowed_paths = ?", [local])  # exactly these files; pyarrow reads remote ones
        self.con.execute("SET allowed_directories = []")
        self.con.execute("SET enable_progress_bar = false")  # DuckDB would draw it on the caller's stdout
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def query(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None,
              timeout: float | None = None) -> pa.Table:
        """Run one SELECT; ``timeout`` seconds (None: no limit) and Ctrl-C interrupt it with a clear error."""
        query, params, timeout = arguments.sql_text(query), arguments.sql_params(params), arguments.timeout(timeout)
        try:
            statements = duckdb.extract_statements(query)
        except duckdb.Error as exc:
            raise InvalidParameterError(f"SQL error: {_one_line(exc)}") from None
        if len(statements) != 1:
            raise InvalidParameterError(f"sql() runs exactly one statement, got {len(statements)}")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise InvalidParameterError(
                f"sql() is read-only: only SELECT queries run, got a {statements[0].type.name} statement"
            )
        _check_bound(statements[0].named_parameters, params)
        with self._lock:
            return self._run(query, params, timeout)

    def _run(self, query: str, params, timeout: float | None) -> pa.Table:
        """Run in a worker thread (DuckDB releases the GIL) while this one waits, so Ctrl-C and timeouts can interrupt;
        remote reads of the query end by the same deadline."""
        fs = self.layout.fs
        if timeout is not None and hasattr(fs, "deadline"):
            fs.deadline = time.monotonic() + timeout
        try:
            return self._wait(query, params, timeout)
        finally:
            if hasattr(fs, "deadline"):
                fs.deadline = None

    def _wait(self, query: str, params, timeout: float | None) -> pa.Table:
        result: dict[str, Any] = {}
        done = threading.Event()  # not Thread.join: an interrupted join() marks a running thread as stopped (3.11)

        def work() -> None:
            try:
                relation = self.con.sql(query, params=params)
                result["table"] = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                result["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="neuron-atlas-sql", daemon=True).start()
        try:
            finished = done.wait(timeout)
        except KeyboardInterrupt:
            self._cancel(done)
            raise
        if not finished:
            self._cancel(done)
            raise AtlasError(f"SQL query interrupted after the {timeout:g} s timeout")
        error = result.get("error")
        if isinstance(error, duckdb.InvalidInputException) and CORRUPT_VIEW_ROW in str(error):  # a view's own check
            raise AtlasFormatError(f"SQL over {self.layout.root}: {_one_line(error).split(': ', 1)[-1]}") from None
        if isinstance(error, _QUERY_ERRORS):
            raise InvalidParameterError(f"SQL error: {_one_line(error)}") from None
        if isinstance(error, duckdb.Error):
            raise AtlasError(f"SQL error: {_one_line(error)}") from None
        if isinstance(error, RecursionError):
            raise InvalidParameterError("SQL error: the query is nested too deeply") from None
        if error is not None:
            raise error
        return result["table"]

    def _cancel(self, done: threading.Event) -> None:
        """Interrupt the query until its thread has finished: never leave it running (DuckDB aborts the process at
        exit under a live query), and repeat the interrupt, which is lost when sent before the query started."""
        while True:
            self.con.interrupt()
            try:
                if done.wait(0.05):
                    return
            except KeyboardInterrupt:  # a second Ctrl-C: keep cancelling, the first one is re-raised
                continue


def _check_bound(names: set[str], params: list[Any] | dict[str, Any] | None) -> None:
    """Raise unless ``params`` binds exactly the query's parameters (``?``/``?N`` by position, ``$name`` by name)."""
    positional = sorted(int(n) for n in names if n.isdigit())
    named = sorted(n for n in names if not n.isdigit())
    need = max(positional, default=0)
    hint = "; the CLI takes one --param/-p per ?" if positional else ""
    if named and (not isinstance(params, dict) or set(params) != set(named)):
        got = sorted(params) if isinstance(params, dict) else params
        raise InvalidParameterError(f"the query has parameters {', '.join('$' + n for n in named)}: pass params= a dict "
                                    f"with exactly these keys, got {got!r}")
    if not named and need != (0 if params is None else len(params) if isinstance(params, list) else -1):
        raise InvalidParameterError(f"the query has {need} ? parameter{'s' * (need != 1)}: pass params= a list of {need} "
                                    f"value{'s' * (need != 1)}, got {params!r}{hint}")


class PublishedSets:
    """The footer metadata of imported models' ``lape`` tables, read once per model when a query first asks."""

    def __init__(self, layout: Layout) -> None:
        self.layout, self._meta, self._lock = layout, {}, threading.Lock()

    def meta(self, model: str) -> dict:
        with self._lock:
            if model not in self._meta:
                from ..format.verify import footer

                self._meta[model] = file_metadata(footer(self.layout, self.layout.file("lape", model=model)))
            return self._meta[model]

    def column(self, key: str):
        """An Arrow UDF: the metadata ``key`` of each row's model."""
        def lookup(models: pa.Array) -> pa.Array:
            return pa.array([None if m is None else self.meta(m).get(key) for m in models.to_pylist()])

        return lookup


_HELP = ("Did you mean", "Candidate bindings", "Candidate functions")  # DuckDB's own suggestions, kept


def _one_line(exc: Exception) -> str:
    """DuckDB's message on one line, with its suggestions (``Did you mean "lape"?``, ``Candidate bindings``) kept
    and without its caret diagram and its hints to SET options that are locked here."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    help_ = [line for line in lines[1:] if line.startswith(_HELP)]
    return " ".join([lines[0].split(' Use "SET ')[0], *help_])


def _unreadable(files: dict[str, list[str]]) -> list[tuple[str, str]]:
    """The files whose footer DuckDB refuses, each with DuckDB's reason (only run when building the views failed)."""
    bad, con = [], duckdb.connect(config=_CONFIG)
    for path in sorted({f for paths in files.values() for f in paths}):
        try:
            con.read_parquet(path).columns
        except duckdb.Error as exc:
            bad.append((path, f"DuckDB cannot read its footer ({_one_line(exc)}); a damaged file"))
    return bad


def _with_keys(schema: pa.Schema, keys: tuple[str, ...]) -> pa.Schema:
    for key in keys:
        schema = schema.append(pa.field(key, pa.string()))
    return schema


def _dataset(layout: Layout, files: list[str], keys: tuple[str, ...], schema: pa.Schema):
    """A pyarrow dataset over the files with the documented schema: creating it reads no file, and DuckDB pushes
    filters on the partition columns (model, lang) into it, so a query for one model fetches only its files."""
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive") if keys else None
    base = layout.path(files[0][len(layout.root):].lstrip("/").split("/")[0]) if keys else None
    return ds.dataset(files, schema=_with_keys(schema, keys), format="parquet", filesystem=layout.fs,
                      partitioning=partitioning, partition_base_dir=base)
