"""Two courriel nodes (two processes) on one PostgreSQL database, at the store/events level.

Each node is ``nodes_child.py`` in a process of its own with its own pool and listener, as two
machines would run. (The same at the protocol level -- IMAP IDLE on node B seeing an SMTP
delivery on node A -- belongs with the protocol sessions.)
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from courriel.store.postgres import open_postgres_url
from courriel.testing import pg as pg_testdb

pytestmark = pytest.mark.postgres

CHILD = Path(__file__).with_name("nodes_child.py")


@pytest.fixture
async def pg_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    server = await pg_testdb.require_server(request)
    async with pg_testdb.temporary_database(server) as url:
        yield url


async def setup_user(url: str) -> tuple[int, int]:
    """Creates a user through a third store; returns (user id, INBOX id)."""
    store = await open_postgres_url(url, pool_size=1)
    try:
        await store.add_domain("example.org")
        user = await store.add_user("shared@example.org", "hash")
        inbox = await store.get_mailbox(user.id, "INBOX")
        assert inbox is not None
        return user.id, inbox.id
    finally:
        await store.close()


async def spawn(*args: object) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *map(str, args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert await line_of(proc, 30) == "ready"
    return proc


async def line_of(proc: asyncio.subprocess.Process, seconds: float) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(seconds):
        raw = await proc.stdout.readline()
    assert raw, "the node exited"
    return raw.decode().strip()


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
    await proc.wait()


async def test_change_on_node_a_reaches_subscriber_on_node_b(pg_url: str) -> None:
    user_id, inbox_id = await setup_user(pg_url)
    listener = await spawn("listen", pg_url, user_id)
    writer = await spawn("append", pg_url, inbox_id, 1, 1, "a")
    try:
        assert writer.stdin is not None
        writer.stdin.write(b"go\n")
        acked_at, _tag, uid, _modseq = (await line_of(writer, 30)).split()
        seen_at, kind, mailbox, uids = (await line_of(listener, 5)).split()
        assert (kind, int(mailbox), uids) == ("added", inbox_id, uid)
        assert float(seen_at) - float(acked_at) < 1.0  # the same machine's clock
    finally:
        await stop(writer)
        await stop(listener)


async def test_concurrent_appends_on_two_nodes_get_gap_free_uids(pg_url: str) -> None:
    _user_id, inbox_id = await setup_user(pg_url)
    per_node, writers = 150, 8
    nodes = [await spawn("append", pg_url, inbox_id, per_node, writers, t) for t in "ab"]
    acks: list[tuple[str, int, int]] = []
    try:
        for node in nodes:  # both start together
            assert node.stdin is not None
            node.stdin.write(b"go\n")
        for node in nodes:
            while (line := await line_of(node, 60)) != "done":
                _at, tag, uid, modseq = line.split()
                acks.append((tag, int(uid), int(modseq)))
    finally:
        for node in nodes:
            await stop(node)
    uids = sorted(uid for _, uid, _ in acks)
    assert uids == list(range(1, 2 * per_node + 1))  # unique, no gaps
    assert len({modseq for _, _, modseq in acks}) == len(acks)  # one MODSEQ per append
    assert {tag[0] for tag, _, _ in acks} == {"a", "b"}
    # Within one mailbox a later UID never carries an earlier MODSEQ.
    by_uid = sorted((uid, modseq) for _, uid, modseq in acks)
    assert all(a[1] < b[1] for a, b in itertools.pairwise(by_uid))
    store = await open_postgres_url(pg_url, pool_size=1)
    try:
        box = await store.get_mailbox_by_id(inbox_id)
        assert box is not None and box.uidnext == 2 * per_node + 1
        infos = await store.list_messages(inbox_id)
        assert [m.uid for m in infos] == uids
        tag_of = {uid: tag for tag, uid, _ in acks}
        for info in infos:
            assert info.flags == {"$" + tag_of[info.uid][0]}
        raw = await store.read_message(inbox_id, infos[-1].uid)
        assert raw.startswith(f"Subject: {tag_of[infos[-1].uid]}\r\n".encode())
    finally:
        await store.close()
