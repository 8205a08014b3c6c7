"""PostgreSQL backend: lost connections, unreachable servers, racing migrations, SQL rewriting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import pytest

from courriel.store.base import ChangeKind, NewMessage, StoreError, Unavailable
from courriel.store.postgres import PostgresStore, migrate, open_postgres_url, split_url
from courriel.store.postgres.driver import pg_sql
from courriel.store.sql import Done, Query, Script, migrations

pytestmark = pytest.mark.postgres


def test_placeholders_rewritten_outside_literals() -> None:
    sql = "SELECT '?', \"a?\" FROM t WHERE x = ? AND y IN (?, ?)"
    assert pg_sql(sql) == "SELECT '?', \"a?\" FROM t WHERE x = $1 AND y IN ($2, $3)"


def test_pool_size_taken_from_url() -> None:
    assert split_url("postgresql://u@h/db?pool_size=3&sslmode=disable") == (
        "postgresql://u@h/db?sslmode=disable",
        3,
    )
    assert split_url("postgresql://u@h/db")[1] == 10


async def terminate_others(url: str) -> int:
    """Ends every other session on the store's database, as a restart or failover would."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return len(rows)
    finally:
        await conn.close()


def numbered(n: int) -> NewMessage:
    return NewMessage(f"Subject: n={n}\r\n\r\nbody\r\n".encode(), datetime.now(UTC), frozenset())


async def test_terminated_connections_never_half_write(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=4)
    try:
        await store.add_domain("example.org")
        user = await store.add_user("a@example.org", "h")
        inbox = await store.get_mailbox(user.id, "INBOX")
        assert inbox is not None
        outcome: dict[int, bool] = {}

        async def writer(k: int) -> None:
            for n in range(k, 400, 4):
                try:
                    await store.append([(inbox.id, numbered(n))])
                    outcome[n] = True
                except Unavailable:
                    outcome[n] = False

        async def killer() -> None:
            for _ in range(5):
                await asyncio.sleep(0.05)
                await terminate_others(pg_url)

        await asyncio.gather(killer(), *(writer(k) for k in range(4)))
        assert len(outcome) == 400
        infos = await store.list_messages(inbox.id)
        stored = {}
        for info in infos:
            raw = await store.read_message(inbox.id, info.uid)
            stored[int(raw.split(b"\r\n")[0].removeprefix(b"Subject: n="))] = info.uid
        for n, ok in outcome.items():
            if ok:
                assert n in stored, f"acknowledged append {n} is missing"
        assert len(stored) == len(infos)  # each message at most once, none half written
        box = await store.get_mailbox_by_id(inbox.id)
        assert box is not None and box.uidnext == len(infos) + 1  # no UID lost or doubled
        usage = await store.quota_usage(user.id)
        assert usage.messages == len(infos)
        assert store.driver.retries > 0  # the terminations did hit transactions
    finally:
        await store.close()


async def test_listener_reconnects_and_resyncs(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=2, keepalive=0.5)
    other = await open_postgres_url(pg_url, pool_size=2)
    try:
        await store.add_domain("example.org")
        user = await store.add_user("a@example.org", "h")
        inbox = await store.get_mailbox(user.id, "INBOX")
        assert inbox is not None
        sub = await store.events.subscribe(user.id)
        changes = aiter(sub)
        await terminate_others(pg_url)
        async with asyncio.timeout(10):
            assert (await anext(changes)).kind is ChangeKind.RESYNC
            # Listening again: a write through another node arrives.
            await other.append([(inbox.id, numbered(1))])
            change = await anext(changes)
        assert (change.kind, change.mailbox_id, change.uids) == (
            ChangeKind.MESSAGES_ADDED,
            inbox.id,
            (1,),
        )
        assert store.pg_events.reconnects == 1
    finally:
        await other.close()
        await store.close()


async def test_unreachable_server_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="cannot connect"):
        await open_postgres_url("postgresql://courriel:secret@127.0.0.1:9/courriel")


async def test_writes_after_the_server_goes_away_are_unavailable(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=2)
    try:
        await store.add_domain("example.org")
        # Nobody may connect to the database any more, and the pool's connections are cut.
        name = urlsplit(pg_url).path.lstrip("/")
        admin = await asyncpg.connect(pg_url.rsplit("/", 1)[0] + "/postgres")
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            with pytest.raises(Unavailable):
                await store.add_domain("example.net")
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        finally:
            await admin.close()
        # The server is back: the same store goes on.
        await store.add_domain("example.net")
        assert [d.name for d in await store.list_domains()] == ["example.net", "example.org"]
    finally:
        await store.close()


async def test_nodes_starting_together_migrate_once(empty_pg_url: str) -> None:
    await race_migrations(empty_pg_url)


async def race_migrations(pg_url: str) -> None:
    results = await asyncio.gather(*(migrate(pg_url) for _ in range(4)))
    versions = [v for v, _, _ in migrations("postgres")]
    assert sorted(v for r in results for v in r) == versions  # each applied exactly once
    assert await migrate(pg_url) == []
    store: PostgresStore = await open_postgres_url(pg_url, pool_size=1)
    try:
        await store.add_domain("example.org")
    finally:
        await store.close()


def setting_script() -> Script[Done[str]]:
    rows = yield Query("SELECT current_setting('synchronous_commit')")
    return Done(str(rows[0][0]))


async def test_writes_commit_at_the_servers_durability(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=1)
    try:
        server = await asyncpg.connect(pg_url)
        try:
            level = await server.fetchval("SHOW synchronous_commit")
        finally:
            await server.close()
        assert level == store.driver.commit_level
        assert await store.driver.write(setting_script()) == Done(level)
        # Outside write transactions (bodies, notifications) the pool does not wait for flushes.
        assert await store.driver.pool.fetchval("SHOW synchronous_commit") == "off"
    finally:
        await store.close()


def lock_b_then_a() -> Script[Done[int]]:
    yield Query("UPDATE counters SET value = value + 1 WHERE name = 'b'", (), False)
    rows = yield Query("UPDATE counters SET value = value + 1 WHERE name = 'a' RETURNING value")
    return Done(int(rows[0][0]))


async def test_deadlock_victim_is_run_again(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=2)
    other = await asyncpg.connect(pg_url)
    try:
        await other.execute("INSERT INTO counters (name, value) VALUES ('a', 0), ('b', 0)")
        tx = other.transaction()
        await tx.start()
        await other.execute("UPDATE counters SET value = value + 10 WHERE name = 'a'")
        write = asyncio.create_task(store.driver.write(lock_b_then_a()))
        await asyncio.sleep(0.3)  # the script holds b and waits for a
        # Now this one waits for b: a cycle. PostgreSQL aborts the script's transaction (it has
        # waited longest); the driver runs it again once this one is over.
        await other.execute("UPDATE counters SET value = value + 10 WHERE name = 'b'")
        await tx.commit()
        assert await asyncio.wait_for(write, 30) == Done(11)
        assert store.driver.retries == 1
        rows = await other.fetch("SELECT name, value FROM counters WHERE name IN ('a', 'b')")
        assert sorted(map(tuple, rows)) == [("a", 11), ("b", 11)]  # applied exactly once
    finally:
        await other.close()
        await store.close()


async def test_missing_database_is_a_clear_error(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/courriel_no_such_database"
    with pytest.raises(StoreError, match="does not exist") as err:
        await open_postgres_url(url)
    assert not isinstance(err.value, Unavailable)  # retrying will not help: a setup error
