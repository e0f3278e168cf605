"""Read-only DuckDB views over an atlas' Parquet files, with bound parameters and Arrow results.

The connection can read only the atlas files that passed validation (``allowed_paths``; no directory, no temp
folder, no extensions), and a query can be interrupted (Ctrl-C) or given a timeout.
"""
from __future__ import annotations

import glob
import threading
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from .errors import AtlasError, InvalidParameterError, warn
from .schema import TABLES
from .storage import Layout
from .validate import AtlasCheck, check_atlas

# DuckDB errors caused by the query's text (the user's input) rather than by the data or the machine (DuckDB's
# InvalidInputException is both, e.g. a corrupt file, so it counts as a failure)
_QUERY_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException, duckdb.PermissionException,
                 duckdb.ConversionException, duckdb.NotImplementedException)
_CONFIG = {"threads": 2, "autoinstall_known_extensions": False, "autoload_known_extensions": False,
           "temp_directory": ""}  # no spilling, so no temp folder becomes readable


class AtlasSQL:
    """One in-memory DuckDB connection whose views read the atlas' valid files; only one SELECT runs at a time."""

    def __init__(self, layout: Layout, check: AtlasCheck | None = None) -> None:
        check = check or check_atlas(layout, footers=layout.fs is None)
        self.problems = check.problems
        if check.problems:
            listing = "\n  ".join(map(str, check.problems[:20]))
            more = f"\n  ... and {len(check.problems) - 20} more" if len(check.problems) > 20 else ""
            warn(f"SQL over {layout.root} leaves out files that failed validation "
                 f"(`neuron-atlas verify` lists all):\n  {listing}{more}")
        self.con = duckdb.connect(config=_CONFIG)
        self._lock = threading.Lock()
        files = check.files
        for table in TABLES:  # one view per table, named by its description, over the files that passed
            found = files[table.name]
            keys = tuple(k for k in table.keys if k not in table.arrow.names)  # models' rows name their model
            if not found:  # an empty placeholder with the documented columns
                relation = self.con.from_arrow(_with_keys(table.arrow, keys).empty_table())
            elif layout.fs is not None or glob.has_magic(layout.root):  # DuckDB would read the paths as globs
                relation = self.con.from_arrow(_dataset(layout, found, keys, table.arrow))
            else:  # paths passed as values, never pasted into SQL text
                relation = self.con.read_parquet(found, hive_partitioning=bool(keys), union_by_name=True)
            relation.project(f"*{table.sql_columns}").create_view(table.view_name)
        # The default LAPE sets (top 1% of each model's L·d neurons); imported sets have no rank.
        self.con.execute(
            "CREATE VIEW lape AS SELECT s.* FROM lape_stored s JOIN models m USING (model) "
            "WHERE s.rank IS NULL OR s.rank < round(m.n_layers * m.ffn_width * 0.01)"
        )
        local = [f for table in TABLES for f in files[table.name]] if layout.fs is None else []
        self.con.execute("SET allowed_paths = ?", [local])  # exactly these files; pyarrow reads remote ones
        self.con.execute("SET allowed_directories = []")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def query(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None,
              timeout: float | None = None) -> pa.Table:
        """Run one SELECT; ``timeout`` seconds (None: no limit) and Ctrl-C interrupt it with a clear error."""
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
        if timeout is not None and not timeout > 0:
            raise InvalidParameterError(f"timeout must be a positive number of seconds, got {timeout!r}")
        with self._lock:
            return self._run(query, params, timeout)

    def _run(self, query: str, params, timeout: float | None) -> pa.Table:
        """Run in a worker thread (DuckDB releases the GIL) while this one waits, so Ctrl-C and timeouts can interrupt."""
        result: dict[str, Any] = {}
        done = threading.Event()  # not Thread.join: an interrupted join() marks a running thread as stopped (3.11)

        def work() -> None:
            try:
                relation = self.con.sql(query, params=params)
                result["table"] = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
            except BaseException as exc:  # handed to the waiting thread
                result["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="neuron-atlas-sql", daemon=True).start()
        try:
            finished = done.wait(timeout)
        except KeyboardInterrupt:
            self.con.interrupt()
            done.wait()
            raise
        if not finished:
            self.con.interrupt()
            done.wait()
            raise AtlasError(f"SQL query interrupted after the {timeout:g} s timeout")
        error = result.get("error")
        if isinstance(error, _QUERY_ERRORS):
            raise InvalidParameterError(f"SQL error: {_one_line(error)}") from None
        if isinstance(error, duckdb.Error):
            raise AtlasError(f"SQL error: {_one_line(error)}") from None
        if isinstance(error, RecursionError):
            raise InvalidParameterError("SQL error: the query is nested too deeply") from None
        if error is not None:
            raise error
        return result["table"]


def _one_line(exc: Exception) -> str:
    """DuckDB's message without its caret diagram and without hints to SET options that are locked here."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line.split(' Use "SET ')[0]


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
