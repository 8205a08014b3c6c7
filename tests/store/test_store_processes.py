"""Several processes on one SQLite data directory: UIDs, change events and bodies stay right.

Each test runs real processes (``processes_child.py``) beside the test's own store, as the
workers of ``courriel serve`` and the admin CLI do.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.store.base import ChangeKind, Mailbox, NewMessage
from courriel.store.sqlite import SqliteStore, open_sqlite

CHILD = Path(__file__).with_name("processes_child.py")


def child_body() -> Callable[[str, int], bytes]:
    """The child's own ``body``, so parent and child cannot disagree on content."""
    spec = importlib.util.spec_from_file_location("courriel_processes_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body: Callable[[str, int], bytes] = module.body
    return body


async def child(*args: str) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), *args, stdout=asyncio.subprocess.PIPE, env=env
    )


async def lines_of(proc: asyncio.subprocess.Process) -> AsyncIterator[str]:
    assert proc.stdout is not None
    async for raw in proc.stdout:
        yield raw.decode().strip()


async def finish(proc: asyncio.subprocess.Process) -> list[str]:
    out = [line async for line in lines_of(proc)]
    assert await proc.wait() == 0
    return out


@pytest.fixture
async def inbox(sq: SqliteStore) -> Mailbox:
    await sq.add_domain("example.org")
    user = await sq.add_user("a@example.org", "h")
    box = await sq.get_mailbox(user.id, "INBOX")
    assert box is not None
    return box


async def test_concurrent_appends_from_two_processes(
    sq: SqliteStore, inbox: Mailbox, tmp_path: Path
) -> None:
    body = child_body()
    count = 120
    procs = [await child("append", str(tmp_path), str(inbox.id), str(count), t) for t in "ab"]
    outputs = await asyncio.wait_for(asyncio.gather(*(finish(p) for p in procs)), 120)
    uids: dict[int, bytes] = {}
    for tag, out in zip("ab", outputs, strict=True):
        assert len(out) == count
        for line in out:
            n, uid = map(int, line.split())
            assert uid not in uids, f"UID {uid} handed out twice"
            uids[uid] = body(tag, n)
    assert sorted(uids) == list(range(1, 2 * count + 1))  # gap-free across both processes
    listed = await sq.list_messages(inbox.id)
    assert [m.uid for m in listed] == sorted(uids)
    for uid, raw in uids.items():
        assert await sq.read_message(inbox.id, uid) == raw
    box = await sq.get_mailbox_by_id(inbox.id)
    assert box is not None and box.uidnext == 2 * count + 1


async def test_changes_reach_a_subscriber_in_another_process(
    sq: SqliteStore, inbox: Mailbox, tmp_path: Path
) -> None:
    count = 300
    sub = await sq.events.subscribe(inbox.user_id)
    received: dict[int, int] = {}

    async def collect() -> None:
        async for change in sub:
            assert change.kind is ChangeKind.MESSAGES_ADDED and change.mailbox_id == inbox.id
            for uid in change.uids:
                received[uid] = time.monotonic_ns()
            if len(received) == count:
                return

    collector = asyncio.create_task(collect())
    proc = await child("publish", str(tmp_path), str(inbox.id), str(count))
    committed = {}
    for line in await asyncio.wait_for(finish(proc), 120):
        uid, at = map(int, line.split())
        committed[uid] = at
    await asyncio.wait_for(collector, 10)
    await sub.close()
    # CLOCK_MONOTONIC is one clock for every process of the machine.
    delays = sorted((received[uid] - at) / 1e6 for uid, at in committed.items())
    p99 = delays[int(len(delays) * 0.99) - 1]
    assert len(delays) == count
    assert p99 <= 50, f"p99 {p99:.1f} ms, median {delays[len(delays) // 2]:.2f} ms"


async def test_blob_freed_in_one_process_while_others_append_it(
    sq: SqliteStore, inbox: Mailbox, tmp_path: Path
) -> None:
    """Three processes append and expunge one body over and over: its last reference goes away
    again and again while another process is between writing the body and its commit."""
    raw = child_body()("shared", 0, 200_000)  # type: ignore[call-arg]  # a file, not inline
    procs = [await child("churn", str(tmp_path), str(inbox.id), "150", "200000") for _ in "abc"]
    outputs = await asyncio.wait_for(asyncio.gather(*(finish(p) for p in procs)), 120)
    assert outputs == [["lost 0"]] * 3
    assert await sq.list_messages(inbox.id) == []
    assert _files(tmp_path / "blobs") == set()  # the last reference gone: the file too
    [done] = await sq.append([(inbox.id, _message(raw))])
    assert await sq.read_message(inbox.id, done.uid) == raw


def _message(raw: bytes) -> NewMessage:
    return NewMessage(raw, datetime.now(UTC))


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_many_stores_open_at_once(tmp_path: Path) -> None:
    """Processes starting together migrate the schema once; none is refused."""
    stores = await asyncio.gather(
        *(open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs") for _ in range(4))
    )
    try:
        await stores[0].add_domain("example.org")
        for s in stores:
            assert [d.name for d in await s.list_domains()] == ["example.org"]
    finally:
        for s in stores:
            await s.close()


async def test_processes_opening_a_closed_database_together_all_start(tmp_path: Path) -> None:
    """Workers starting at the same moment on a database nobody has open: the first to open it
    recovers the WAL under a brief exclusive lock, and the others wait for it instead of
    failing with "database is locked"."""
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    await store.add_domain("example.org")
    await store.close()
    for _ in range(3):
        start = time.monotonic_ns() + 1_500_000_000  # after every child has imported courriel
        procs = [await child("open", str(tmp_path), str(start)) for _ in range(6)]
        assert [await finish(p) for p in procs] == [["domains 1"]] * 6
