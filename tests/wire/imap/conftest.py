"""Shared helpers for the IMAP core tests: drive a real ``Connection`` with bytes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.imap import Connection, Limits, LiteralRequest, NeedData
from courriel.wire.imap.core import Event

Parse = Callable[..., object]


def feed(conn: Connection, data: bytes) -> list[Event | ProtocolError]:
    """Feeds ``data``; approves every synchronising literal; collects events and errors."""
    conn.receive_data(data)
    out: list[Event | ProtocolError] = []
    while True:
        try:
            event = conn.next_event()
        except ProtocolError as e:
            out.append(e)
            if e.fatal:
                return out
            continue
        if isinstance(event, NeedData):
            return out
        if isinstance(event, LiteralRequest):
            conn.accept_literal()
            continue
        out.append(event)


@pytest.fixture(name="run")
def run_fixture() -> Callable[[Connection, bytes], list[Event | ProtocolError]]:
    """``run(conn, data)``: see ``feed``."""
    return feed


@pytest.fixture
def parse() -> Parse:
    """``parse(b"a1 NOOP")`` -> the one command; raises the ProtocolError if there is one."""

    def _parse(line: bytes, *, utf8: bool = False, limits: Limits | None = None) -> object:
        conn = Connection(limits)
        if utf8:
            conn.enable_utf8()
        events = feed(conn, line + b"\r\n")
        assert len(events) == 1, events
        if isinstance(events[0], ProtocolError):
            raise events[0]
        return events[0]

    return _parse


@pytest.fixture
def reply() -> Callable[..., bytes]:
    """``reply(b"a1 FOO")`` -> the error reply bytes the line produces."""

    def _reply(line: bytes, *, utf8: bool = False, limits: Limits | None = None) -> bytes:
        conn = Connection(limits)
        if utf8:
            conn.enable_utf8()
        events = feed(conn, line + b"\r\n")
        assert len(events) == 1, events
        assert isinstance(events[0], ProtocolError), events
        return events[0].reply

    return _reply
