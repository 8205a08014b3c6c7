"""The IMAP protocol core, sans-IO: command parser, literals, response encoder.

Theory of operation
-------------------
``Connection`` (core.py) turns client bytes into typed events and never does I/O; the session
(``courriel.session.imap``) decides what each command means and builds replies with
``responses``. The loop a session runs::

    conn = Connection(Limits(max_literal=cfg.limits.max_message_bytes))
    conn.receive_data(data)                      # b"" when the peer closed
    while True:
        try:
            event = conn.next_event()
        except ProtocolError as e:               # tagged BAD, NO [BADCHARSET], BYE ...
            write(e.reply)
            if e.fatal: close(); break
            continue
        match event:
            case NeedData(): break               # read more bytes
            case ConnectionClosed(): close(); break
            case LiteralRequest(size=n):         # {n}: approve before the client sends it
                write(conn.accept_literal() if n <= room else conn.refuse_literal())
            case Idle(tag=tag): write(conn.start_idle(tag))   # then wait for IdleDone
            case IdleDone(): write(responses.ok(event.tag, "IDLE terminated"))
            case Authenticate(): write(conn.sasl_challenge(tag, b""))  # -> AuthenticateResponse
            case _ if not allowed(event, state): write(responses.bad(event.tag, "..."))
            case Select() | Examine() | Fetch() | ...: dispatch, ending in assert_never

Invariants
----------
* ``next_event`` returns an event or raises ``ProtocolError``; any other exception is a bug.
  After a non-fatal error the offending command has been skipped entirely, literals included,
  and the next command parses normally.
* A synchronising literal is never read before the session approved it
  (``accept_literal``); a non-synchronising one above the limit is answered ``BAD [TOOBIG]``
  and its bytes are dropped as they arrive, never buffered (RFC 7888 §4).
* Literal data is sliced from the input buffer once; parsers receive that ``bytes`` object.
* Mailbox names in commands are ``str``: modified UTF-7 is decoded for IMAP4rev1 clients, UTF-8
  is taken as is after ``enable_utf8()`` (IMAP4rev2 or UTF8=ACCEPT). ``INBOX`` in any case is
  given as ``"INBOX"``. The encoder does the reverse with ``utf8=conn.utf8``.
* ``commands.allowed(command, state)`` is the one table of which command runs in which state.
* After ``STARTTLS`` or ``COMPRESS``, ``trailing_data`` must be empty; the adapter refuses to go
  on otherwise (bytes sent before the switch cannot be trusted to belong to the new layer).
* During IDLE only ``DONE`` is accepted: anything else ends the IDLE with a tagged BAD. During a
  SASL exchange each line is one ``AuthenticateResponse``; ``sasl_challenge`` asks for the next.
"""

from __future__ import annotations

from courriel.wire.imap.commands import Command, State, allowed
from courriel.wire.imap.core import Connection, Event
from courriel.wire.imap.events import (
    AuthenticateResponse,
    ConnectionClosed,
    IdleDone,
    LiteralRequest,
    NeedData,
)
from courriel.wire.imap.lexer import Limits
from courriel.wire.imap.parse_search import BadCharset

__all__ = [
    "AuthenticateResponse",
    "BadCharset",
    "Command",
    "Connection",
    "ConnectionClosed",
    "Event",
    "IdleDone",
    "Limits",
    "LiteralRequest",
    "NeedData",
    "State",
    "allowed",
]
