"""The stall watchdog in one process: the slot it shares with the supervisor, the line it logs and
the command the protocol drivers name for it."""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
import time
from pathlib import Path

import pytest

from courriel.config import LimitsConfig, ListenerConfig
from courriel.net.listener import ConnectionContext, Connections
from courriel.net.watchdog import HeartbeatTable, Stall, Watchdog, describe
from courriel.testing.server import start_server


def test_the_table_keeps_a_beat_and_the_stall_seen_at_it_per_slot() -> None:
    table = HeartbeatTable(3)
    assert table.last_beat(1) == 0.0  # not serving yet
    table.beat(1, 12.5)
    table.note_stall(1, 12.5, "conn=ab12cd protocol=imap command=List " + "x" * 500)
    assert table.last_beat(1) == 12.5
    assert table.stall(1).startswith("conn=ab12cd protocol=imap command=List xx")
    assert len(table.stall(1).encode()) < 256  # cut to fit its slot
    assert (table.last_beat(0), table.stall(0), table.last_beat(2)) == (0.0, "", 0.0)
    table.beat(1, 13.0)
    assert table.stall(1) == ""  # the loop ran again: that stall is over
    table.reset(1)
    assert table.last_beat(1) == 0.0
    table.close()


async def test_a_stall_is_logged_once_with_its_connection_command_and_place(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    connections = Connections(LimitsConfig())
    table = HeartbeatTable(1)
    main_thread = threading.get_ident()
    watchdog = Watchdog(
        table, 0, threshold=0.05, describe=lambda: describe(loop, connections, main_thread)
    )
    listener = ListenerConfig("imap", "imap", 143, False)
    ctx = ConnectionContext("c0ffee", listener, ("127.0.0.1", 4000), connections.closing)
    assert connections.admit(ctx) is None
    seen: list[str] = []

    async def runaway_search() -> None:
        ctx.command = "Search"
        time.sleep(0.3)  # noqa: ASYNC251 - holds the loop, as a runaway command would
        seen.append(table.stall(0))  # the watch thread wrote it meanwhile

    watchdog.start(loop)
    try:
        await asyncio.sleep(0.1)
        assert watchdog.stalls == 0  # an idle loop is no stall
        with caplog.at_level(logging.WARNING, logger="courriel.watchdog"):
            ctx._task = asyncio.create_task(runaway_search())
            await ctx._task
            await asyncio.sleep(0.1)  # the next tick reports
    finally:
        watchdog.stop()
        table.close()
    assert seen[0].startswith("conn=c0ffee protocol=imap command=Search at=")
    assert "test_net_watchdog.py:" in seen[0]
    (record,) = [r for r in caplog.records if r.getMessage() == "event loop stalled"]
    fields = record.courriel_fields  # type: ignore[attr-defined]
    assert fields["conn"] == "c0ffee" and fields["command"] == "Search"
    assert fields["at"].endswith(":runaway_search")
    assert 0.25 <= fields["seconds"] < 1.0
    assert watchdog.stalls == 1


def test_a_stall_outside_any_connection_names_the_task() -> None:
    stall = Stall(task="accept-smtp", at="net/listener.py:10:_accept_loop")
    assert stall.text() == "task=accept-smtp at=net/listener.py:10:_accept_loop"


def _exchange(port: int, command: bytes, replies: int = 1) -> socket.socket:
    """Sends one command after the greeting; returns once the reply began."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.recv(4096)  # the greeting
    conn.sendall(command)
    conn.recv(4096)
    return conn


def test_the_protocol_drivers_name_each_command(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        sent = {
            "smtp": (b"EHLO client.example\r\n", "Ehlo"),
            "imap": (b"a1 NOOP\r\n", "Noop"),
            "pop3": (b"CAPA\r\n", "Capa"),
        }
        conns = [_exchange(server.port(name), command) for name, (command, _) in sent.items()]
        named = {ctx.listener.name: ctx.command for ctx in server.running.app.connections.live()}
        assert named == {name: command for name, (_, command) in sent.items()}
        for conn in conns:
            conn.close()
    finally:
        server.stop()


async def test_with_stall_logging_off_the_beat_goes_on_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = HeartbeatTable(1)
    watchdog = Watchdog(table, 0, threshold=math.inf, describe=Stall)
    watchdog.start(asyncio.get_running_loop())
    try:
        first = table.last_beat(0)
        with caplog.at_level(logging.WARNING, logger="courriel.watchdog"):
            time.sleep(0.3)  # noqa: ASYNC251 - a stall nobody wants to hear about
            await asyncio.sleep(watchdog.interval * 3)
        assert table.last_beat(0) > first  # the supervisor still sees the loop run
    finally:
        watchdog.stop()
        table.close()
    assert watchdog.stalls == 0 and not caplog.records
