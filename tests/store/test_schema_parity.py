"""The SQLite and PostgreSQL schemas, both migrated to the end, describe the same database.

The two dialects are written by hand (docs/storage.md); this test reads both catalogs and fails
on any difference not listed below with its reason, so a column or an index added to one and
forgotten in the other is found before it ships.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from courriel.store.sqlite.driver import migrate

# Tables only one backend has, and why.
ONLY_POSTGRES = {
    # PostgreSQL keeps message bodies in the database; SQLite keeps large ones as files and
    # small ones in ``blobs.data``.
    "blob_contents",
}
ONLY_SQLITE: set[str] = set()
# Columns only one backend has: (table, column) -> why.
COLUMNS_ONLY_SQLITE = {
    ("blobs", "data"): "small bodies inline in the row (PostgreSQL: blob_contents)",
}
COLUMNS_ONLY_POSTGRES: dict[tuple[str, str], str] = {}

_KIND = {
    "integer": "int",
    "bigint": "int",
    "smallint": "int",
    "int": "int",
    "text": "text",
    "character varying": "text",
    "blob": "bytes",
    "bytea": "bytes",
    "real": "float",
    "double precision": "float",
    "boolean": "int",  # SQLite has no boolean: 0/1 in an INTEGER
}


def _kind(declared: str) -> str:
    return _KIND.get(declared.lower().split("(")[0].strip(), declared.lower())


def sqlite_catalog(
    path: Path,
) -> tuple[dict[str, dict[str, str]], set[tuple[str, tuple[str, ...]]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = {
            t: {r[1]: _kind(r[2]) for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables
        }
        indexes = set()
        for t in tables:
            for idx in conn.execute(f"PRAGMA index_list({t})"):
                if idx[3] != "c":  # made by CREATE INDEX, not by a key or UNIQUE constraint
                    continue
                cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({idx[1]})"))
                indexes.add((t, cols))
        return columns, indexes
    finally:
        conn.close()


async def postgres_catalog(
    url: str,
) -> tuple[dict[str, dict[str, str]], set[tuple[str, tuple[str, ...]]]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        columns: dict[str, dict[str, str]] = {}
        for r in rows:
            columns.setdefault(r["table_name"], {})[r["column_name"]] = _kind(r["data_type"])
        # Indexes made by CREATE INDEX: not backing a primary key or a constraint.
        idx_rows = await conn.fetch(
            """
            SELECT t.relname AS tbl, array_agg(a.attname ORDER BY k.ord) AS cols
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indexrelid
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE NOT EXISTS (SELECT 1 FROM pg_constraint pc WHERE pc.conindid = i.indexrelid)
            GROUP BY c.relname, t.relname
            """
        )
        indexes = {(r["tbl"], tuple(r["cols"])) for r in idx_rows}
        return columns, indexes
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_sqlite_and_postgres_schemas_match(tmp_path: Path, pg_url: str) -> None:
    db = tmp_path / "courriel.db"
    migrate(db)
    lite_cols, lite_idx = sqlite_catalog(db)
    pg_cols, pg_idx = await postgres_catalog(pg_url)

    assert set(pg_cols) - set(lite_cols) == ONLY_POSTGRES
    assert set(lite_cols) - set(pg_cols) == ONLY_SQLITE
    differences = []
    for table in sorted(set(lite_cols) & set(pg_cols)):
        lite, pg = lite_cols[table], pg_cols[table]
        for column in sorted(set(lite) | set(pg)):
            where = (table, column)
            if column not in pg:
                if where not in COLUMNS_ONLY_SQLITE:
                    differences.append(f"{table}.{column} only in SQLite")
            elif column not in lite:
                if where not in COLUMNS_ONLY_POSTGRES:
                    differences.append(f"{table}.{column} only in PostgreSQL")
            elif lite[column] != pg[column]:
                differences.append(f"{table}.{column}: {lite[column]} in SQLite, {pg[column]}")
    assert differences == []
    shared = set(lite_cols) & set(pg_cols)
    assert {i for i in lite_idx if i[0] in shared} == {i for i in pg_idx if i[0] in shared}
