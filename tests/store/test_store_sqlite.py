"""The SQLite backend itself: group commit, savepoint isolation, schema, sharing, reopen."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.store.base import FlagOp, NewMessage, NotFound, StoreError, Unavailable
from courriel.store.sql import Query, Script, migrations
from courriel.store.sqlite import SqliteStore, open_sqlite
from courriel.store.sqlite import driver as driver_module
from courriel.store.sqlite.driver import SqliteDriver

MakeMessage = Callable[..., NewMessage]


def blocker(started: threading.Event, release: threading.Event) -> Script[None]:
    """Holds the writer thread until ``release`` is set, so the next scripts queue up."""
    yield Query("SELECT 1")
    started.set()
    release.wait(10)


def insert_domain(name: str, *, fail: bool = False, ran_on: list[int] | None = None) -> Script[str]:
    """Inserts a domain; ``ran_on`` gets the thread each of its two steps ran in."""
    noted = [] if ran_on is None else ran_on
    noted.append(threading.get_ident())
    yield Query("INSERT INTO domains (name) VALUES (?)", (name,), False)
    noted.append(threading.get_ident())
    if fail:
        raise StoreError(f"refusing {name}")
    return name


async def hold_writer(sq: SqliteStore) -> tuple[asyncio.Task[None], threading.Event]:
    started, release = threading.Event(), threading.Event()
    task = asyncio.create_task(sq.driver.write(blocker(started, release)))
    assert await asyncio.to_thread(started.wait, 10)
    return task, release


async def wait_queued(sq: SqliteStore, n: int) -> None:
    async with asyncio.timeout(10):
        while sq.driver.pending_writes < n:  # noqa: ASYNC110 - a thread's queue: nothing to await
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("light", [False, True])  # in the writer thread / on the loop
async def test_failing_script_does_not_fail_its_batch(sq: SqliteStore, light: bool) -> None:
    held, release = await hold_writer(sq)
    commits = sq.commits
    ran: list[int] = []
    tasks = [
        asyncio.create_task(
            sq.driver.write(
                insert_domain(name, ran_on=ran, fail=name == "bad.example"), light=light
            )
        )
        for name in ("a.example", "bad.example", "c.example")
    ]
    await wait_queued(sq, 3)
    release.set()
    await held
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "a.example" and results[2] == "c.example"
    assert isinstance(results[1], StoreError) and "refusing" in str(results[1])
    assert sq.commits == commits + 2  # the held batch, then all three in one
    assert (threading.get_ident() in ran) is light
    assert [d.name for d in await sq.list_domains()] == ["a.example", "c.example"]


async def test_a_lone_failing_script_is_rolled_back_not_committed(sq: SqliteStore) -> None:
    assert await sq.driver.write(insert_domain("a.example")) == "a.example"
    commits, writes = sq.commits, sq.writes
    with pytest.raises(StoreError, match="refusing"):
        await sq.driver.write(insert_domain("bad.example", fail=True))
    assert (sq.commits, sq.writes) == (commits, writes)  # rolled back: no commit, no fsync
    assert await sq.driver.write(insert_domain("c.example")) == "c.example"
    assert sq.commits == commits + 1
    assert [d.name for d in await sq.list_domains()] == ["a.example", "c.example"]


async def test_group_commit_batches_concurrent_appends(
    sq: SqliteStore, message: MakeMessage
) -> None:
    await sq.add_domain("example.org")
    user = await sq.add_user("a@example.org", "h")
    inbox = await sq.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    held, release = await hold_writer(sq)
    commits = sq.commits
    tasks = [asyncio.create_task(sq.append([(inbox.id, message(i))])) for i in range(50)]
    await wait_queued(sq, 50)
    release.set()
    await held
    results = await asyncio.gather(*tasks)
    assert sorted(r[0].uid for r in results) == list(range(1, 51))
    assert sq.commits - commits < 50
    assert sq.commits - commits == 2  # the held batch and one batch of all fifty


async def test_group_commit_without_help(sq: SqliteStore, message: MakeMessage) -> None:
    await sq.add_domain("example.org")
    user = await sq.add_user("a@example.org", "h")
    inbox = await sq.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    commits = sq.commits
    await asyncio.gather(*(sq.append([(inbox.id, message(i))]) for i in range(200)))
    assert sq.commits - commits < 200
    assert len(await sq.list_messages(inbox.id)) == 200


async def test_schema_migrations_recorded_once(tmp_path: Path) -> None:
    db = tmp_path / "courriel.db"
    for _ in range(2):
        s = await open_sqlite(db, tmp_path / "blobs")
        await s.close()
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        expected = [version for version, _name, _sql in migrations("sqlite")]
        assert len(expected) >= 1
        assert [r[0] for r in rows] == expected
        assert all(r[1] for r in rows)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_a_second_store_opens_the_same_database(sq: SqliteStore, tmp_path: Path) -> None:
    other = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        await other.add_domain("example.org")
        assert [d.name for d in await sq.list_domains()] == ["example.org"]
        await sq.add_domain("example.net")
        assert [d.name for d in await other.list_domains()] == ["example.net", "example.org"]
    finally:
        await other.close()


async def test_closed_store_refuses(tmp_path: Path) -> None:
    s = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    await s.close()
    with pytest.raises(Unavailable):
        await s.add_domain("example.org")
    with pytest.raises(Unavailable):
        await s.list_domains()
    s2 = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    await s2.close()


async def test_reads_do_not_wait_for_the_writer(sq: SqliteStore) -> None:
    await sq.add_domain("example.org")
    held, release = await hold_writer(sq)
    try:
        async with asyncio.timeout(5):
            assert [d.name for d in await sq.list_domains()] == ["example.org"]
    finally:
        release.set()
        await held


async def test_reader_sees_committed_writes_immediately(sq: SqliteStore) -> None:
    for i in range(20):
        await sq.add_domain(f"d{i}.example")
        assert await sq.get_domain(f"d{i}.example") is not None
    with pytest.raises(NotFound):
        await sq.remove_domain("nope.example")


async def test_append_keeps_in_the_database_a_body_file_deleted_before_its_commit(
    sq: SqliteStore, message: MakeMessage
) -> None:
    """Another process freed the body and deleted its file after this append wrote it and
    before its transaction: the transaction notices, and the retry keeps the body in its
    database row, where no other process's deletion can reach it before the commit."""
    await sq.add_domain("example.org")
    user = await sq.add_user("a@example.org", "h")
    inbox = await sq.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    body = message(1, size=200_000)  # a file, not kept in the database
    held, release = await hold_writer(sq)
    task = asyncio.create_task(sq.append([(inbox.id, body)]))
    await wait_queued(sq, 1)  # its body is written; its transaction waits for the writer
    path = sq.files.path(sq.blobs.blob_id(body.raw))
    path.unlink()  # what the other process's deletion does, under the write lock
    release.set()
    await held
    [done] = await asyncio.wait_for(task, 10)
    assert not path.exists()  # not written again as a file ...
    assert await sq.read_message(inbox.id, done.uid) == body.raw  # ... but stored all the same


async def test_a_write_waits_out_another_process_holding_the_lock(sq: SqliteStore) -> None:
    """The writer waits for the lock as long as it takes (up to its deadline), then fails."""
    driver = SqliteDriver(sq.path)
    impatient = SqliteDriver(sq.path, busy_deadline=0.05)
    other = sqlite3.connect(sq.path, isolation_level=None)  # another process's connection
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO domains (name) VALUES ('held.example')")
        write = asyncio.create_task(driver.write(insert_domain("waited.example")))
        with pytest.raises(Unavailable, match="locked"):
            await impatient.write(insert_domain("gave-up.example"))
        await asyncio.sleep(0.2)
        assert not write.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(write, 10) == "waited.example"
    finally:
        other.close()
        await driver.close()
        await impatient.close()
    assert {d.name for d in await sq.list_domains()} == {"held.example", "waited.example"}


async def test_freeing_a_body_does_not_read_every_message(tmp_path: Path) -> None:
    """With foreign keys on, deleting a ``blobs`` row checks that no message refers to it; the
    ``messages(blob_id)`` index makes that a lookup, not a scan of every message (counted in
    SQLite virtual machine steps, which do not depend on the machine's speed)."""
    store = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    await store.add_domain("example.org")
    user = await store.add_user("a@example.org", "h")
    inbox = await store.get_mailbox(user.id, "INBOX")
    assert inbox is not None
    await store.close()
    conn = sqlite3.connect(tmp_path / "courriel.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        "INSERT INTO blobs (id, refcount, size) VALUES ('kept', 50000, 1), ('freed', 0, 1)"
    )
    rows = (
        (inbox.id, uid, 1, 0, "", "2026-01-01T00:00:00+00:00", 1, "kept", b"")
        for uid in range(1, 50001)
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO messages (mailbox_id, uid, modseq, sysflags, keywords, internal_date,"
        " size, blob_id, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 1)
    conn.execute("DELETE FROM blobs WHERE id = 'freed'")
    conn.set_progress_handler(None, 1)
    conn.close()
    assert steps < 1000, f"{steps} steps: the foreign key check scanned the messages"


# --- flag changes and expunges commit without waiting for the disk; messages always wait ------
# (courriel.store.sqlite.driver, "Flag changes": a batch of nothing but flag changes and expunges
# commits with synchronous=NORMAL, a batch holding anything else with FULL, and body files are
# deleted only once the WAL that says they are free is on the disk.)

FULL, NORMAL = 2, 1  # PRAGMA synchronous values
SEEN = frozenset({"\\Seen"})
DELETED = frozenset({"\\Deleted"})


def _synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def writer_mode(sq: SqliteStore) -> int:
    """The writer connection's setting, read in the writer thread after the last batch."""
    return await sq.driver.locked(_synchronous)


def new(i: int, size: int = 200) -> NewMessage:
    body = f"Subject: m{i}\r\n\r\n".encode() + b"x" * size + b"\r\n"
    return NewMessage(raw=body, internal_date=datetime(2026, 1, 1, tzinfo=UTC))


async def inbox_of(sq: SqliteStore) -> int:
    await sq.add_domain("example.org")
    user = await sq.add_user("a@example.org", "h")
    box = await sq.get_mailbox(user.id, "INBOX")
    assert box is not None
    return box.id


async def test_flag_changes_commit_without_fsync_and_appends_with_it(sq: SqliteStore) -> None:
    inbox = await inbox_of(sq)
    uid = (await sq.append([(inbox, new(1))]))[0].uid
    assert await writer_mode(sq) == FULL
    await sq.store_flags(inbox, [uid], FlagOp.ADD, SEEN)
    assert await writer_mode(sq) == NORMAL
    await sq.append([(inbox, new(2))])
    assert await writer_mode(sq) == FULL
    await sq.store_flags(inbox, [uid], FlagOp.ADD, frozenset({"\\Deleted"}))
    await sq.expunge_deleted(inbox)
    assert await writer_mode(sq) == NORMAL
    # Nothing is lost to another reader or to a reopen: NORMAL still writes the WAL.
    infos = await sq.list_messages(inbox)
    assert [i.uid for i in infos] == [uid + 1]


async def test_a_batch_with_one_append_is_committed_with_fsync(sq: SqliteStore) -> None:
    inbox = await inbox_of(sq)
    uid = (await sq.append([(inbox, new(1))]))[0].uid
    held, release = await hold_writer(sq)
    flags = asyncio.create_task(sq.store_flags(inbox, [uid], FlagOp.ADD, SEEN))
    await wait_queued(sq, 1)
    append = asyncio.create_task(sq.append([(inbox, new(2))]))
    await wait_queued(sq, 2)
    commits = sq.commits
    release.set()
    await held
    await asyncio.gather(flags, append)
    assert sq.commits == commits + 2  # the held batch; the flag change and append in one ...
    assert await writer_mode(sq) == FULL  # ... and it waited for the disk, for the append


async def test_changes_survive_a_reopen(tmp_path: Path) -> None:
    sq = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        inbox = await inbox_of(sq)
        uid = (await sq.append([(inbox, new(1))]))[0].uid
        await sq.store_flags(inbox, [uid], FlagOp.ADD, SEEN)
    finally:
        await sq.close()
    again = await open_sqlite(tmp_path / "courriel.db", tmp_path / "blobs")
    try:
        [info] = await again.list_messages(inbox)
        assert info.flags == SEEN
    finally:
        await again.close()


async def test_a_body_file_goes_only_after_the_wal_is_synced(
    sq: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = await inbox_of(sq)
    big = new(1, size=200_000)  # past the inline limit: the body is a file
    uid = (await sq.append([(inbox, big)]))[0].uid
    before = set(_files(sq.files.root))
    assert before, "the large body should be a file"
    events: list[str] = []
    real_fsync, real_unlink = os.fsync, os.unlink

    def fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def unlink(path: str | os.PathLike[str], *args: object, **kw: object) -> None:
        events.append(f"unlink {path}")
        real_unlink(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "unlink", unlink)
    await sq.expunge(inbox, [uid])
    assert not set(_files(sq.files.root)) & before, "the freed body file should be gone"
    wal = str(sq.path) + "-wal"
    synced = [i for i, e in enumerate(events) if e == f"fsync {wal}"]
    removed = [i for i, e in enumerate(events) if e.startswith("unlink") and "-wal" not in e]
    assert synced, f"the WAL was not synced before deleting bodies: {events}"
    assert removed and synced[0] < removed[0], events


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# --- light writes: scripts run on the caller's loop while the thread holds the lock ---
async def domain_names(sq: SqliteStore) -> list[str]:
    return [d.name for d in await sq.list_domains()]


async def test_a_light_write_runs_on_the_loop_and_commits(sq: SqliteStore) -> None:
    loop_thread = threading.get_ident()
    ran: list[int] = []
    commits = sq.commits
    assert await sq.driver.write(insert_domain("a.example", ran_on=ran), light=True) == "a.example"
    assert set(ran) == {loop_thread}
    assert sq.commits == commits + 1
    assert await domain_names(sq) == ["a.example"]


async def test_a_write_not_marked_light_runs_in_the_writer_thread(sq: SqliteStore) -> None:
    ran: list[int] = []
    await sq.driver.write(insert_domain("a.example", ran_on=ran))
    assert threading.get_ident() not in ran
    assert len(set(ran)) == 1


async def test_a_lone_failing_light_script_is_rolled_back(sq: SqliteStore) -> None:
    commits = sq.commits
    with pytest.raises(StoreError, match="refusing"):
        await sq.driver.write(insert_domain("bad.example", fail=True), light=True)
    assert sq.commits == commits
    assert await domain_names(sq) == []


async def test_a_batch_with_one_heavy_script_runs_all_in_the_thread(sq: SqliteStore) -> None:
    held, release = await hold_writer(sq)
    ran: list[int] = []
    light = asyncio.create_task(sq.driver.write(insert_domain("a.example", ran_on=ran), light=True))
    await wait_queued(sq, 1)
    heavy = asyncio.create_task(sq.driver.write(insert_domain("b.example", ran_on=ran)))
    await wait_queued(sq, 2)
    release.set()
    await held
    await asyncio.gather(light, heavy)
    assert threading.get_ident() not in ran


async def test_the_loop_leaves_the_rest_of_a_long_batch_to_the_thread(
    sq: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "LOOP_WRITE_BUDGET", 0.0)  # one script, then the thread
    held, release = await hold_writer(sq)
    ran: list[int] = []
    tasks = [
        asyncio.create_task(sq.driver.write(insert_domain(f"d{i}.example", ran_on=ran), light=True))
        for i in range(5)
    ]
    await wait_queued(sq, 5)
    commits = sq.commits
    release.set()
    await held
    assert await asyncio.gather(*tasks) == [f"d{i}.example" for i in range(5)]
    on_loop = ran.count(threading.get_ident())
    assert on_loop == 2  # the first script's two steps
    assert len(ran) - on_loop == 8  # the four others, in the thread
    assert sq.commits == commits + 2  # the held batch, then the five in one transaction
    assert len(await domain_names(sq)) == 5


def block_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a stalled loop looks like to the writer thread


async def test_a_light_write_waits_for_another_process_then_runs_on_the_loop(
    sq: SqliteStore, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "courriel.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ran: list[int] = []
    task = asyncio.create_task(sq.driver.write(insert_domain("a.example", ran_on=ran), light=True))
    await asyncio.sleep(0.05)
    assert not task.done() and ran == []  # the loop found the lock taken and ran nothing
    other.execute("ROLLBACK")
    other.close()
    assert await task == "a.example"
    assert set(ran) == {threading.get_ident()}  # under the lock the thread took, on the loop
    assert await domain_names(sq) == ["a.example"]


async def test_a_busy_loop_does_not_keep_the_lock_the_thread_runs_the_scripts(
    sq: SqliteStore,
) -> None:
    held, release = await hold_writer(sq)
    ran: list[int] = []
    task = asyncio.create_task(sq.driver.write(insert_domain("a.example", ran_on=ran), light=True))
    await wait_queued(sq, 1)
    release.set()
    # The loop is stuck for ten times the pick-up wait: the thread claims the script meanwhile.
    block_the_loop(driver_module.LOOP_PICKUP_WAIT * 10)
    await held
    assert await task == "a.example"
    assert threading.get_ident() not in ran
    assert len(ran) == 2  # ran once, not again when the loop came back to the callback
    await asyncio.sleep(0.01)
    assert ran.count(threading.get_ident()) == 0
    assert await domain_names(sq) == ["a.example"]


async def test_small_appends_and_flag_changes_are_light_large_ones_are_not(
    sq: SqliteStore, message: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    write = sq.driver.write

    async def spy(script: Script[object], *, durable: bool = True, light: bool = False) -> object:
        seen.append(light)
        return await write(script, durable=durable, light=light)

    monkeypatch.setattr(sq.driver, "write", spy)
    inbox = await inbox_of(sq)
    seen.clear()
    await sq.append([(inbox, message(0))])
    many = await sq.append([(inbox, message(i)) for i in range(1, 101)])
    await sq.store_flags(inbox, [many[0].uid], FlagOp.ADD, SEEN)
    await sq.store_flags(inbox, [a.uid for a in many], FlagOp.ADD, SEEN)
    await sq.expunge(inbox, [many[0].uid])
    await sq.expunge(inbox, [a.uid for a in many[1:]])
    assert seen == [True, False, True, False, True, False]
    assert [i.uid for i in await sq.list_messages(inbox)] == [1]
    # EXPUNGE: light when few messages are flagged \Deleted, whatever the mailbox holds
    many = await sq.append([(inbox, message(i)) for i in range(200, 300)])
    seen.clear()
    await sq.store_flags(inbox, [a.uid for a in many[:3]], FlagOp.ADD, DELETED)
    assert len(await sq.expunge_deleted(inbox)) == 3
    await sq.store_flags(inbox, [a.uid for a in many[3:]], FlagOp.ADD, DELETED)
    assert len(await sq.expunge_deleted(inbox, [a.uid for a in many[3:10]])) == 7
    assert len(await sq.expunge_deleted(inbox)) == 90
    assert seen == [True, True, False, True, False]


def count_calls(monkeypatch: pytest.MonkeyPatch, obj: object, name: str) -> list[int]:
    """Counts calls to ``obj.name`` (a method), which still does its work."""
    calls: list[int] = []
    real = getattr(obj, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


@pytest.mark.parametrize("durable", [True, False])  # the committer thread (fsync) / the loop
async def test_a_lone_light_write_commits_at_once_without_the_writer_thread(
    sq: SqliteStore, monkeypatch: pytest.MonkeyPatch, durable: bool
) -> None:
    now = count_calls(monkeypatch, sq.driver, "_commit_now")
    on_loop = count_calls(monkeypatch, sq.driver, "_commit_on_loop")
    batches = count_calls(monkeypatch, sq.driver, "_run_batch")
    commits = sq.commits
    write = sq.driver.write(insert_domain("a.example"), durable=durable, light=True)
    assert await write == "a.example"
    assert (len(now), len(on_loop)) == (int(durable), int(not durable))
    assert (len(batches), sq.commits) == (0, commits + 1)
    assert wal_autocheckpoint(sq) == driver_module.WAL_AUTOCHECKPOINT  # set back after it
    await sq.driver.write(insert_domain("b.example"))  # not light: the writer thread
    assert len(batches) == 1
    assert await domain_names(sq) == ["a.example", "b.example"]


def wal_autocheckpoint(sq: SqliteStore) -> int:
    return int(sq.driver._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


async def test_after_a_batch_of_several_light_writes_join_batches_for_a_while(
    sq: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "GROUP_HOLD", 60.0)
    now = count_calls(monkeypatch, sq.driver, "_commit_now")
    held, release = await hold_writer(sq)
    tasks = [
        asyncio.create_task(sq.driver.write(insert_domain(f"d{i}.example"), light=True))
        for i in range(3)
    ]
    await wait_queued(sq, 3)
    release.set()
    await held
    await asyncio.gather(*tasks)
    # Writes came together lately: a lone one goes to the next batch, not straight to a commit
    # of its own, so many sessions keep sharing one fsync.
    await sq.driver.write(insert_domain("e.example"), light=True)
    assert now == []
    # A flag change has no fsync to share: it commits at once, on the loop, all the same --
    # once the writer thread has let go of the connection after the batch it just settled.
    async with asyncio.timeout(10):
        while sq.driver._conn_lock.locked():  # noqa: ASYNC110 - a thread's lock
            await asyncio.sleep(0.001)
    on_loop = count_calls(monkeypatch, sq.driver, "_commit_on_loop")
    batches = count_calls(monkeypatch, sq.driver, "_run_batch")
    await sq.driver.write(insert_domain("f.example"), durable=False, light=True)
    assert (len(on_loop), len(batches)) == (1, 0)
    assert len(await domain_names(sq)) == 5


async def test_a_light_write_whose_caller_gives_up_still_commits_and_frees_the_writer(
    sq: SqliteStore,
) -> None:
    task = asyncio.create_task(sq.driver.write(insert_domain("a.example"), light=True))
    await asyncio.sleep(0)  # the script ran and its commit is with the committer thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await sq.driver.write(insert_domain("b.example"), light=True) == "b.example"
    assert await domain_names(sq) == ["a.example", "b.example"]


async def test_after_many_commits_on_the_loop_one_goes_to_a_thread(
    sq: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "LOOP_COMMITS_MAX", 2)
    now = count_calls(monkeypatch, sq.driver, "_commit_now")
    for i in range(3):  # no checkpoint runs on the loop: the third commit lets one happen
        await sq.driver.write(insert_domain(f"d{i}.example"), durable=False, light=True)
    assert len(now) == 1
    await sq.driver.write(insert_domain("e.example"), durable=False, light=True)
    assert len(now) == 1  # the count starts again after a commit in a thread
    assert len(await domain_names(sq)) == 4


async def test_a_batch_of_flag_changes_is_committed_and_settled_on_the_loop(
    sq: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop = count_calls(monkeypatch, sq.driver, "_commit_on_loop")
    held, release = await hold_writer(sq)
    tasks = [
        asyncio.create_task(
            sq.driver.write(insert_domain(f"d{i}.example"), durable=False, light=True)
        )
        for i in range(3)
    ]
    await wait_queued(sq, 3)
    writes, commits = sq.writes, sq.commits
    release.set()
    await held
    assert await asyncio.gather(*tasks) == [f"d{i}.example" for i in range(3)]
    assert len(on_loop) == 1
    assert (sq.writes, sq.commits) == (writes + 4, commits + 2)  # the blocker's and theirs
    # With one durable write in it, the batch is committed (with its fsync) in the thread.
    held, release = await hold_writer(sq)
    tasks = [
        asyncio.create_task(sq.driver.write(insert_domain("e.example"), light=True)),
        asyncio.create_task(sq.driver.write(insert_domain("f.example"), durable=False, light=True)),
    ]
    await wait_queued(sq, 2)
    release.set()
    await held
    await asyncio.gather(*tasks)
    assert len(on_loop) == 1
    assert len(await domain_names(sq)) == 5
