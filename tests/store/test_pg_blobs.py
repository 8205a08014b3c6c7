"""Bodies in PostgreSQL: stored once, deleted when unreferenced, never a message without one."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from courriel.store.base import NewMessage, NotFound, Unavailable
from courriel.store.postgres import PostgresStore, open_postgres_url
from courriel.store.sql import messages

pytestmark = pytest.mark.postgres


async def contents(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        return {r[0] for r in await conn.fetch("SELECT id FROM blob_contents")}
    finally:
        await conn.close()


async def age_bodies(url: str, seconds: int) -> None:
    """As if every body had been put ``seconds`` ago."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE blob_contents SET put_at = now() - make_interval(secs => $1)", seconds
        )
    finally:
        await conn.close()


async def inbox_of(store: PostgresStore) -> int:
    await store.add_domain("example.org")
    user = await store.add_user("a@example.org", "h")
    box = await store.get_mailbox(user.id, "INBOX")
    assert box is not None
    return box.id


def body(n: int) -> NewMessage:
    return NewMessage(f"Subject: {n}\r\n\r\n".encode() + bytes(range(256)) * 40, datetime.now(UTC))


async def test_shared_body_stored_once_and_deleted_after_last_reference(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=2)
    try:
        inbox = await inbox_of(store)
        [a, b] = await store.append([(inbox, body(1)), (inbox, body(1))])
        blob_id = store.blobs.blob_id(body(1).raw)
        assert await contents(pg_url) == {blob_id}
        await age_bodies(pg_url, 3600)  # older than the grace period
        await store.expunge(inbox, [a.uid])
        assert await contents(pg_url) == {blob_id}  # b still refers to it
        assert await store.read_message(inbox, b.uid) == body(1).raw
        await store.expunge(inbox, [b.uid])
        assert await contents(pg_url) == set()
    finally:
        await store.close()


async def test_recent_unreferenced_body_waits_for_the_sweep(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=2)
    try:
        inbox = await inbox_of(store)
        [a] = await store.append([(inbox, body(2))])
        await store.expunge(inbox, [a.uid])
        # Put moments ago: another node's append might be about to reference it.
        assert await contents(pg_url) == {store.blobs.blob_id(body(2).raw)}
        with pytest.raises(NotFound):
            await store.read_message(inbox, a.uid)
        await age_bodies(pg_url, 3600)
        assert await store.pg_blobs.sweep() == 1
        assert await contents(pg_url) == set()
    finally:
        await store.close()


async def test_message_without_its_body_is_never_committed(pg_url: str) -> None:
    store = await open_postgres_url(pg_url, pool_size=2)
    try:
        inbox = await inbox_of(store)
        msg = body(3)
        # What an append would commit if another node had deleted the body after put.
        script = messages.append([(inbox, msg, store.blobs.blob_id(msg.raw))])
        with pytest.raises(Unavailable):
            await store.driver.write(script)
        assert await store.list_messages(inbox) == []
        box = await store.get_mailbox_by_id(inbox)
        assert box is not None and box.uidnext == 1 and box.highestmodseq == 1
        assert (await store.quota_usage(box.user_id)).messages == 0
        [done] = await store.append([(inbox, msg)])  # the client's retry writes the body again
        assert done.uid == 1
    finally:
        await store.close()
