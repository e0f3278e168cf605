"""Read-only DuckDB views over an atlas' Parquet files, with bound parameters and Arrow results."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from .errors import AtlasError
from .schema import ARROW_SCHEMAS
from .storage import Layout

_VIEWS = {  # name -> (glob relative to the root, hive partition keys, table kind)
    "models": ("models/*/model.parquet", (), "models"),
    "languages": ("languages.parquet", (), "languages"),
    "counts": ("counts/*/*/counts.parquet", ("model", "lang"), "counts"),
    "ranking": ("lape/*/ranking.parquet", ("model",), "ranking"),
    "lape_stored": ("lape/*/lape.parquet", ("model",), "lape"),
    "features": ("features/*/*/features.parquet", ("model", "pair"), "features"),
}
_EXTRA = {"counts": ", fired::DOUBLE / NULLIF(tokens, 0) AS p"}  # derived columns of a view


class AtlasSQL:
    """One in-memory DuckDB connection whose views read the atlas; only SELECT statements run."""

    def __init__(self, layout: Layout) -> None:
        self.con = duckdb.connect(config={"threads": 2})
        for name, (pattern, keys, kind) in _VIEWS.items():
            files = layout.glob_files(layout.path(pattern))
            if files and layout.fs is not None:
                self.con.register(f"_{name}", _remote_dataset(layout, files, pattern, keys, kind))
                source = f"_{name}"
            elif files:
                source = f"read_parquet('{layout.root}/{pattern}', hive_partitioning={str(bool(keys)).lower()}, union_by_name=true)"
            else:  # an empty placeholder with the documented columns
                self.con.register(f"_{name}", _with_keys(ARROW_SCHEMAS[kind], keys).empty_table())
                source = f"_{name}"
            self.con.execute(f"CREATE VIEW {name} AS SELECT *{_EXTRA.get(name, '')} FROM {source}")
        # The default LAPE sets (top 1% of each model's L·d neurons); imported sets have no rank.
        self.con.execute(
            "CREATE VIEW lape AS SELECT s.* FROM lape_stored s JOIN models m USING (model) "
            "WHERE s.rank IS NULL OR s.rank < round(m.n_layers * m.ffn_width * 0.01)"
        )
        if layout.fs is None:
            self.con.execute(f"SET allowed_directories=['{layout.root}']")
            self.con.execute("SET enable_external_access=false")
        self.con.execute("SET lock_configuration=true")

    def query(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pa.Table:
        statements = duckdb.extract_statements(query)
        if len(statements) != 1:
            raise AtlasError(f"sql() runs exactly one statement, got {len(statements)}")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise AtlasError(
                f"sql() is read-only: only SELECT queries run, got a {statements[0].type.name} statement"
            )
        try:
            relation = self.con.sql(query, params=params)
            return relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
        except duckdb.Error as exc:
            raise AtlasError(f"SQL error: {exc}") from None


def _with_keys(schema: pa.Schema, keys: tuple[str, ...]) -> pa.Schema:
    for key in keys:
        schema = schema.append(pa.field(key, pa.string()))
    return schema


def _remote_dataset(layout: Layout, files: list[str], pattern: str, keys: tuple[str, ...], kind: str):
    """A pyarrow dataset over remote files with the documented schema: creating it reads no file, and DuckDB
    pushes filters on the partition columns (model, lang) into it, so a query for one model fetches only its files."""
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(pa.schema([(k, pa.string()) for k in keys]), flavor="hive") if keys else None
    return ds.dataset(files, schema=_with_keys(ARROW_SCHEMAS[kind], keys), format="parquet", filesystem=layout.fs,
                      partitioning=partitioning, partition_base_dir=layout.path(pattern.split("/")[0]) if keys else None)
