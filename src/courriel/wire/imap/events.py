"""What the connection hands the session besides commands (see ``core.Connection``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NeedData:
    """Nothing complete yet: feed more bytes with ``receive_data``."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (``receive_data(b"")``) and every complete command was read."""


@dataclass(frozen=True, slots=True)
class LiteralRequest:
    """A synchronising literal ``{size}`` was announced; the session must answer it.

    Call ``accept_literal()`` and write what it returns (the continuation request), or
    ``refuse_literal()`` and write the tagged NO it returns; the client then never sends the
    literal (RFC 9051 §7.5). ``received`` counts literal bytes this command already carried
    (MULTIAPPEND), so a quota or APPENDLIMIT check can look at the whole command.
    """

    tag: str
    command: str  # upper-case command name, "UID FETCH" style after UID
    size: int
    received: int = 0
    binary: bool = False  # literal8 (~{n})


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The client ended IDLE with DONE (RFC 2177, RFC 9051 §6.3.13)."""

    tag: str


@dataclass(frozen=True, slots=True)
class AuthenticateResponse:
    """One client line of a SASL exchange, base64-decoded; ``cancelled`` for ``*``."""

    tag: str
    data: bytes
    cancelled: bool = False


NEED_DATA = NeedData()
CONNECTION_CLOSED = ConnectionClosed()
