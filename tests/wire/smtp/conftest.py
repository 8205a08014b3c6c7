"""A scripted session for driving the SMTP core in transcript-style tests.

``Driver`` plays the session with a permissive policy (every command accepted, the ordinary
positive reply), which a test can override per event type. ``feed`` sends client bytes and
returns exactly the bytes the server would write back; ``events`` lists what the core reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from courriel.wire.errors import ProtocolError
from courriel.wire.smtp import (
    Auth,
    AuthResponse,
    BdatChunk,
    BdatLast,
    Closed,
    Data,
    Ehlo,
    Event,
    Helo,
    Help,
    MailFrom,
    MessageData,
    NeedData,
    Noop,
    Quit,
    RcptTo,
    Reply,
    Rset,
    SmtpConfig,
    SmtpConnection,
    StartTls,
    State,
    Vrfy,
)
from courriel.wire.smtp import replies as r

Policy = Callable[[Event], Reply]


class Driver:
    def __init__(self, **config: Any) -> None:
        config.setdefault("hostname", "mx.example.org")
        self.conn = SmtpConnection(SmtpConfig(**config))
        self.events: list[Event] = []
        self.errors: list[ProtocolError] = []
        self.overrides: dict[type, Reply | Policy] = {}
        self.greeting = self.conn.greeting()

    def reply_for(self, event: Event) -> Reply:
        override = self.overrides.get(type(event))
        if override is not None:
            return override if isinstance(override, Reply) else override(event)
        return self.default_reply(event)

    def default_reply(self, event: Event) -> Reply:
        conn = self.conn
        match event:
            case Ehlo():
                return conn.ehlo_reply()
            case Helo():
                return conn.helo_reply()
            case MailFrom():
                return r.SENDER_OK
            case RcptTo():
                return r.RECIPIENT_OK
            case Data():
                return r.START_DATA
            case MessageData() | BdatLast():
                return r.QUEUED
            case BdatChunk(size):
                return Reply(250, "2.0.0", f"{size} octets received")
            case Rset():
                return r.RESET_OK
            case Noop():
                return r.NOOP_OK
            case Quit():
                return r.BYE
            case Vrfy():
                return r.CANNOT_VRFY
            case Help():
                return r.HELP
            case StartTls():
                return r.READY_FOR_TLS
            case Auth() | AuthResponse():
                return r.AUTH_OK
        raise AssertionError(event)

    def feed(self, data: bytes) -> bytes:
        """Client bytes in; the server's bytes out, as the session would write them."""
        self.conn.receive_data(data)
        return self.drain()

    def drain(self) -> bytes:
        out = bytearray()
        while True:
            try:
                event = self.conn.next_event()
            except ProtocolError as e:
                self.errors.append(e)
                out += e.reply
                if e.fatal:
                    break
                continue
            if isinstance(event, NeedData | Closed):
                break
            self.events.append(event)
            out += self.conn.send(self.reply_for(event))
            if self.conn.state in (State.TLS, State.CLOSED):
                break
        return bytes(out)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def hello(self) -> None:
        """EHLO, checked, so a test can start from a greeted connection."""
        out = self.feed(b"EHLO client.example.net\r\n")
        assert out.startswith(b"250-mx.example.org\r\n")


@pytest.fixture
def smtp() -> Callable[..., Driver]:
    return Driver
