"""Throw-away PostgreSQL databases for tests: ``courriel_test_<random>``, dropped afterwards.

COURRIEL_TEST_PG names the server (a URL whose database is one to connect to for CREATE
DATABASE; default postgresql://postgres@127.0.0.1:5432/postgres). Where it cannot be reached the
test is reported through ``courriel.testing.missing.report_missing``: skipped here, failed in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from courriel.testing.missing import report_missing

if TYPE_CHECKING:  # pytest is a dev extra; importing this module must not need it
    import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
_reachable: dict[str, str | None] = {}  # server URL -> None if reachable, else the error


def server_url() -> str:
    return os.environ.get("COURRIEL_TEST_PG", DEFAULT_PG)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def unreachable(url: str) -> str | None:
    """None when the server answers, else why not (asked once per run)."""
    if url not in _reachable:
        try:
            conn = await asyncpg.connect(url, timeout=5)
            await conn.close()
            _reachable[url] = None
        except (OSError, TimeoutError, asyncpg.PostgresError) as e:
            _reachable[url] = f"{type(e).__name__}: {e}"
    return _reachable[url]


async def require_server(request: pytest.FixtureRequest) -> str:
    url = server_url()
    if await unreachable(url) is not None:
        report_missing(f"PostgreSQL at {url}", request.node.nodeid)
    return url


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_migrated(url: str) -> str:
    """A new database with courriel's schema; returns its name."""
    from courriel.store.postgres import migrate

    name = f"courriel_test_{uuid.uuid4().hex[:16]}"
    await _admin(url, f'CREATE DATABASE "{name}"')
    try:
        await migrate(with_database(url, name))
    except BaseException:
        await drop_database(url, name)
        raise
    return name


# Every table but schema_migrations and counters, children before parents (foreign keys).
_TABLES = (
    "queue_recipients",
    "queue_messages",
    "messages",
    "expunged",
    "acl",
    "metadata",
    "urlauth_keys",
    "private_seen",
    "mailboxes",
    "subscriptions",
    "aliases",
    "app_passwords",
    "web_sessions",
    "api_tokens",
    "audit_log",
    "mail_events",
    "sieve_scripts",
    "delivery_options",
    "sieve_global_scripts",
    "junk_tokens",
    "junk_trained",
    "junk_users",
    "users",
    "domains",
    "blobs",
    "blob_contents",
    "leases",
    "rate_counters",
    "greylist",
)
_IDENTITIES = (
    "domains",
    "users",
    "aliases",
    "mailboxes",
    "app_passwords",
    "audit_log",
    "mail_events",
)


async def reset_database(url: str) -> None:
    """Back to the state right after migration: cheaper than a new database for every test."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        # Sessions a failed test left open would hold locks that TRUNCATE waits for.
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        # DELETE, not TRUNCATE: a tenth of the time on these small tables (no new files).
        sql = [f"DELETE FROM {t}" for t in _TABLES]  # noqa: S608 - constant table names
        sql += [f"ALTER TABLE {t} ALTER COLUMN id RESTART" for t in _IDENTITIES]
        sql.append("UPDATE counters SET value = 0 WHERE name = 'uidvalidity'")
        await conn.execute(";".join(sql))
    finally:
        await conn.close()


async def drop_database(url: str, name: str) -> None:
    # FORCE: connections a failed test left open must not keep the database alive.
    await _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def temporary_database(url: str) -> AsyncIterator[str]:
    """Creates an empty database; drops it on the way out, always."""
    name = f"courriel_test_{uuid.uuid4().hex[:16]}"
    await _admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name)
    finally:
        await drop_database(url, name)
