"""Moving a whole installation between stores: SQLite to PostgreSQL (or back), nothing lost.

Theory of operation
-------------------
``export_pages`` reads every table of ``courriel.store.sql.transfer.TABLES`` in key order, page by
page, with the bodies of each page of ``blobs`` rows; ``import_pages`` writes such pages into an
empty store: bodies first through its ``BlobStore`` (checked against their ids), then the rows
exactly as read, so every id, UID, UIDVALIDITY, UIDNEXT, MODSEQ, flag, date, parse and expunge
record is the same afterwards. It ends by comparing row counts and, on PostgreSQL, moving the
identity sequences past the imported ids (SQLite's AUTOINCREMENT follows explicit ids by itself).

``courriel db export FILE`` writes the pages as JSON lines (bytes as base64) between a header and
a trailer carrying the row counts; ``db import FILE`` reads them back, refusing a file without its
trailer (a truncated export); ``db copy --to URL`` streams pages from one store to the other.

``courriel db migrate`` applies the schema migrations of the configured store (``open_store`` does
too, at every start).

Run it with courriel stopped: a copy taken while mail arrives would miss what came after its
first page. The command line enforces this for SQLite (``SqliteStore.claim_directory``).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from courriel.config import Config
from courriel.store.base import Store, StoreError
from courriel.store.blobs import BlobStore
from courriel.store.sql import Driver
from courriel.store.sql.core import Done, Query, Row, Rows, Script
from courriel.store.sql.transfer import BY_NAME, IDENTITY_TABLES, TABLES, count, is_empty, key_of
from courriel.store.sql.transfer import load as load_rows
from courriel.store.sql.transfer import page as read_page

FORMAT = "courriel-export"
VERSION = 1
ROWS_PER_PAGE = 500
BLOBS_PER_PAGE = 50  # pages of bodies: bounded memory however large the messages


@runtime_checkable
class Movable(Protocol):
    """What a store must expose to be exported or imported (SQLite and PostgreSQL stores do)."""

    @property
    def driver(self) -> Driver: ...

    @property
    def blobs(self) -> BlobStore: ...


@dataclass(frozen=True, slots=True)
class Page:
    table: str
    rows: Rows
    bodies: tuple[bytes, ...] = ()  # for "blobs": the body of each row, in order


@dataclass(slots=True)
class Counts:
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, page: Page) -> None:
        self.rows[page.table] = self.rows.get(page.table, 0) + len(page.rows)


async def export_pages(store: Movable) -> AsyncIterator[Page]:
    for table in TABLES:
        limit = BLOBS_PER_PAGE if table.name == "blobs" or table.large else ROWS_PER_PAGE
        last: Row | None = None
        while True:
            rows = await store.driver.read(read_page(table, last, limit))
            if not rows:
                break
            bodies: tuple[bytes, ...] = ()
            if table.name == "blobs":
                bodies = tuple([await store.blobs.get(row[0]) for row in rows])
            yield Page(table.name, rows, bodies)
            last = key_of(table, rows[-1])


async def import_pages(store: Movable, pages: AsyncIterator[Page], *, postgres: bool) -> Counts:
    """Loads pages into an empty store; returns the rows loaded per table."""
    if not await store.driver.read(is_empty()):
        raise StoreError("the target store is not empty: import only into a new database")
    counts = Counts()
    async for page in pages:
        table = BY_NAME.get(page.table)
        if table is None:
            raise StoreError(f"unknown table {page.table!r} in the export")
        for row, body in zip(page.rows, page.bodies, strict=False):
            if store.blobs.blob_id(body) != row[0]:
                raise StoreError(f"body {row[0]} does not match its id: the export is damaged")
            await store.blobs.put(body)
        if page.table == "blobs" and len(page.bodies) != len(page.rows):
            raise StoreError("blobs without their bodies in the export")
        await store.driver.write(load_rows(table, page.rows))
        counts.add(page)
    for table in TABLES:
        have = await store.driver.read(count(table))
        want = counts.rows.get(table.name, 0)
        if table.name != "counters" and have != want:
            raise StoreError(f"{table.name}: {have} rows after import, {want} in the export")
    if postgres:
        await store.driver.write(_reset_identities())
    return counts


def _reset_identities() -> Script[Done[None]]:
    """PostgreSQL only: the next generated id follows the largest imported one."""
    for name in IDENTITY_TABLES:
        yield Query(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"  # noqa: S608 - constants
            f" (SELECT max(id) FROM {name}))"
        )
    return Done(None)


# --- the file form: JSON lines ---------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return base64.b64decode(value["b64"], validate=True)
    return value


async def write_export(store: Movable, out: IO[str]) -> Counts:
    counts = Counts()
    out.write(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")
    async for page in export_pages(store):
        line: dict[str, Any] = {
            "table": page.table,
            "rows": [[_encode(v) for v in row] for row in page.rows],
        }
        if page.bodies:
            line["bodies"] = [_encode(b) for b in page.bodies]
        out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        counts.add(page)
    out.write(json.dumps({"end": counts.rows}) + "\n")
    return counts


def read_export(lines: IO[str]) -> Iterator[Page]:
    """Pages of an export file; raises ``StoreError`` unless it is whole and of this format."""
    header = json.loads(lines.readline() or "{}")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise StoreError("not a courriel export (or of another version)")
    seen = Counts()
    for text in lines:
        obj = json.loads(text)
        if "end" in obj:
            if obj["end"] != seen.rows:
                raise StoreError("the export's row counts do not match its content")
            return
        page = Page(
            str(obj["table"]),
            [tuple(_decode(v) for v in row) for row in obj["rows"]],
            tuple(_decode(b) for b in obj.get("bodies", ())),
        )
        seen.add(page)
        yield page
    raise StoreError("the export ends early: it was cut short")


def check_export(lines: IO[str]) -> Counts:
    """Reads a whole export file without loading it: a damaged file fails before any write."""
    counts = Counts()
    for page in read_export(lines):
        counts.add(page)
    return counts


async def aiter_pages(pages: Iterator[Page]) -> AsyncIterator[Page]:
    for page in pages:
        yield page


# --- what ``courriel db`` runs --------------------------------------------------------------


async def migrate_configured(cfg: Config) -> list[int]:
    """Brings the configured store's schema up to date; returns the versions applied."""
    url = cfg.store.url
    if url.startswith(("postgresql://", "postgres://")):
        from courriel.store.postgres import migrate, split_url

        return await migrate(split_url(url)[0])
    from courriel.store.open import DB_NAME
    from courriel.store.sqlite import migrate as migrate_sqlite

    path = cfg.data_dir / DB_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    return await asyncio.to_thread(migrate_sqlite, path)


def _movable(store: Store) -> Movable:
    if not isinstance(store, Movable):
        raise StoreError(f"{type(store).__name__} cannot be exported or imported")
    return store


def _is_postgres(store: Store) -> bool:
    from courriel.store.postgres import PostgresStore

    return isinstance(store, PostgresStore)


async def export_file(store: Store, path: Path) -> Counts:
    """Writes the export next to ``path`` and renames it into place once complete and synced."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            counts = await write_export(_movable(store), out)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return counts


async def import_file(store: Store, path: Path) -> Counts:
    with path.open(encoding="utf-8") as lines:
        await asyncio.to_thread(check_export, lines)  # a damaged file fails before any write
        lines.seek(0)
        pages = aiter_pages(read_export(lines))
        return await import_pages(_movable(store), pages, postgres=_is_postgres(store))


async def copy_to(store: Store, cfg: Config, url: str) -> Counts:
    """Copies the configured store into the (empty) store at ``url``."""
    target_cfg = dataclasses.replace(cfg, store=dataclasses.replace(cfg.store, url=url))
    from courriel.store.open import open_store

    target = await open_store(target_cfg)
    try:
        pages = export_pages(_movable(store))
        return await import_pages(_movable(target), pages, postgres=_is_postgres(target))
    finally:
        await target.close()
