"""Change events between processes of one data directory (``SocketEvents``), socket by socket.

Two ``SocketEvents`` on one run directory in one process behave as two processes would: each
has its own socket and sends to the other through the file system.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from courriel.store.base import Change, ChangeKind, Subscription
from courriel.store.events import decode_change
from courriel.store.sqlite import events as socket_events
from courriel.store.sqlite.events import SocketEvents

# Linux queues this many datagrams per receiver (10 by default, more on some systems).
QUEUED = int(Path("/proc/sys/net/unix/max_dgram_qlen").read_text())


def added(user_id: int, uid: int) -> Change:
    return Change(user_id, 10, ChangeKind.MESSAGES_ADDED, uid + 1, (uid,))


async def next_change(sub: Subscription) -> Change:
    async with asyncio.timeout(2):
        return await anext(aiter(sub))


def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    return d


async def test_a_change_reaches_the_other_process_and_the_own_one(tmp_path: Path) -> None:
    a, b = SocketEvents(run_dir(tmp_path)), SocketEvents(tmp_path / "run")
    try:
        local, remote, other_user = await a.subscribe(1), await b.subscribe(1), await b.subscribe(2)
        assert b.socket_path is not None and b.socket_path.stat().st_mode & 0o777 == 0o600
        await a.publish(added(1, 5))
        assert await next_change(local) == added(1, 5)  # in-process, no socket
        assert await next_change(remote) == added(1, 5)
        await b.publish(added(1, 6))  # and back the other way
        assert await next_change(local) == added(1, 6)
        assert await next_change(remote) == added(1, 6)
        assert other_user.pending() == 0  # per user, as in one process
    finally:
        await a.close()
        await b.close()
    assert list((tmp_path / "run").iterdir()) == []  # each removed its socket


async def test_changes_for_users_nobody_watches_are_not_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[bytes | str] = []

    def counting(payload: bytes | str) -> Change:
        decoded.append(payload)
        return decode_change(payload)

    monkeypatch.setattr(socket_events, "decode_change", counting)
    a, b = SocketEvents(run_dir(tmp_path)), SocketEvents(tmp_path / "run")
    try:
        own = await a.subscribe(4)  # binds a's socket, so b's changes reach it
        watched = await b.subscribe(1)
        for user in (2, 1234567, 1):
            await a.publish(added(user, 7))
        assert await next_change(watched) == added(1, 7)
        assert len(decoded) == 1  # users 2 and 1234567 have no session in b: skipped unread
        await b.publish(added(4, 8))
        assert await next_change(own) == added(4, 8)
        assert len(decoded) == 2  # a watches user 4: decoded there
    finally:
        await a.close()
        await b.close()


async def test_a_publisher_without_subscribers_binds_nothing(tmp_path: Path) -> None:
    listener = SocketEvents(run_dir(tmp_path))
    cli = SocketEvents(tmp_path / "run")  # like the admin CLI: publishes, never subscribes
    try:
        sub = await listener.subscribe(3)
        await cli.publish(added(3, 1))
        assert await next_change(sub) == added(3, 1)
        assert cli.socket_path is None
        assert [p.name for p in (tmp_path / "run").iterdir()] == [listener.socket_path.name]  # type: ignore[union-attr]
    finally:
        await cli.close()
        await listener.close()


async def test_changes_of_one_loop_turn_travel_in_one_datagram(tmp_path: Path) -> None:
    a, b = SocketEvents(run_dir(tmp_path)), SocketEvents(tmp_path / "run")
    try:
        sub = await b.subscribe(1)
        for uid in range(1, 101):
            await a.publish(added(1, uid))
        assert [(await next_change(sub)).uids for _ in range(100)] == [(u,) for u in range(1, 101)]
        assert a.sent == 1
    finally:
        await a.close()
        await b.close()


async def test_a_stale_socket_is_removed(tmp_path: Path) -> None:
    d = run_dir(tmp_path)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(d / "events-999999-dead.sock"))
    dead.close()  # the process died: its file stays, nobody reads it
    a = SocketEvents(d)
    try:
        await a.publish(added(1, 1))
        await asyncio.sleep(0)  # the send happens at the end of this loop turn
        assert list(d.iterdir()) == []
    finally:
        await a.close()


async def test_a_full_peer_gets_a_resync_and_never_blocks_the_publisher(tmp_path: Path) -> None:
    d = run_dir(tmp_path)
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # a peer whose loop is stuck
    stalled.bind(str(d / "events-1-stalled.sock"))
    stalled.setblocking(False)
    a = SocketEvents(d)
    sent = QUEUED + 30
    try:
        for uid in range(1, sent + 1):  # one datagram per loop turn, more than the peer queues
            await a.publish(added(7, uid))
            await asyncio.sleep(0)
        await a.publish(added(8, 1))
        await asyncio.sleep(0)
        assert a.resyncs_owed == 1
        got = []
        while True:
            try:
                got += stalled.recv(65536).split(b"\n")
            except BlockingIOError:
                break
        assert [decode_change(g).uids for g in got] == [(u,) for u in range(1, len(got) + 1)]
        assert len(got) < sent  # the rest did not fit
        # The peer reads again: what it missed arrives as one RESYNC per user.
        async with asyncio.timeout(2):
            while True:
                try:
                    late = stalled.recv(65536)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.001)
        resyncs = [decode_change(line) for line in late.split(b"\n")]
        assert resyncs == [Change(7, 0, ChangeKind.RESYNC), Change(8, 0, ChangeKind.RESYNC)]
        await a.publish(added(7, 99))  # and then changes flow again
        await asyncio.sleep(0)
        assert decode_change(stalled.recv(65536)) == added(7, 99)
    finally:
        stalled.close()
        await a.close()


async def test_a_long_data_directory_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    a, b = SocketEvents(run_dir(deep)), SocketEvents(deep / "run")
    try:
        sub = await b.subscribe(1)
        assert b.socket_path is not None and b.socket_path.exists()
        assert len(str(b.socket_path)) > 108  # longer than a socket address may be
        await a.publish(added(1, 1))
        assert await next_change(sub) == added(1, 1)
    finally:
        await a.close()
        await b.close()
