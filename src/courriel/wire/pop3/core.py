"""The POP3 connection state machine: bytes in, command events out, no I/O.

Theory of operation
-------------------
``receive_data`` appends to one buffer. ``next_event`` takes one line from it (LF ends a line, a
CR before it is dropped), checks it against the state table below and returns one event; with no
complete line it returns ``NEED_DATA``. Lines are taken lazily, one per call, so pipelined
commands (RFC 2449 §6.6) come out in order and each is read in the state the previous one left:
a session must handle an event, and tell the core what came of it, before asking for the next.

The session moves the core along where the outcome is its decision: ``challenge`` (a SASL
challenge is out, so the next line is a response, not a command), ``authenticated`` (AUTHORIZATION
to TRANSACTION), ``tls_started`` / ``stls_declined`` (after STLS). The core moves itself on QUIT.

Limits: a command line is at most ``max_line`` octets with its CRLF (RFC 2449 §4); a SASL response
line at most ``max_sasl_line`` (RFC 5034 §4 lifts the command limit for them). A longer line is
refused once and the rest of it, up to the next LF, is skipped without being buffered. Every
``ProtocolError`` spends one unit of the error budget; the one that spends the last is fatal.

STLS: when the Stls event is returned, the core pauses and throws away any bytes that came after
the STLS line, counting them (``trailing_data``). Those bytes were sent in the clear before the
handshake and must never be read as commands (RFC 2595 §4; the CVE-2011-0411 class): the adapter
takes the count (``discard_trailing_data``) for its log and negotiates, and ``tls_started``
empties the buffer whatever happened.
"""

from __future__ import annotations

import binascii
import enum
from dataclasses import dataclass

from courriel.wire.errors import ProtocolError
from courriel.wire.linebuffer import LineBuffer, LineTooLong
from courriel.wire.pop3 import commands as c
from courriel.wire.pop3 import replies


class State(enum.Enum):
    AUTHORIZATION = "authorization"  # RFC 1939 §4
    STARTING_TLS = "starting-tls"  # STLS accepted; nothing is read until the session reports
    SASL = "sasl"  # a SASL challenge is out; the next line is the client's response
    TRANSACTION = "transaction"  # RFC 1939 §5
    UPDATE = "update"  # RFC 1939 §6: QUIT from TRANSACTION; the session removes what was marked
    CLOSED = "closed"  # QUIT from AUTHORIZATION, or a fatal error


class Trigger(enum.Enum):
    STLS = "STLS command"
    TLS_STARTED = "tls_started()"
    STLS_DECLINED = "stls_declined()"
    CHALLENGE = "challenge()"
    SASL_RESPONSE = "SASL response line"
    AUTHENTICATED = "authenticated()"
    QUIT = "QUIT command"
    FATAL = "fatal protocol error"
    CLOSE = "close()"


# Every legal move; anything else is a bug in the caller and raises RuntimeError.
_TRANSITIONS: dict[tuple[State, Trigger], State] = {
    (State.AUTHORIZATION, Trigger.STLS): State.STARTING_TLS,  # RFC 2595 §4
    (State.STARTING_TLS, Trigger.TLS_STARTED): State.AUTHORIZATION,  # RFC 2595 §4: stays in AUTH
    (State.STARTING_TLS, Trigger.STLS_DECLINED): State.AUTHORIZATION,
    (State.AUTHORIZATION, Trigger.CHALLENGE): State.SASL,  # RFC 5034 §4
    (State.SASL, Trigger.SASL_RESPONSE): State.AUTHORIZATION,
    (State.AUTHORIZATION, Trigger.AUTHENTICATED): State.TRANSACTION,  # RFC 1939 §4
    (State.AUTHORIZATION, Trigger.QUIT): State.CLOSED,  # RFC 1939 §6: no UPDATE before login
    (State.TRANSACTION, Trigger.QUIT): State.UPDATE,  # RFC 1939 §6
    **{(s, Trigger.FATAL): State.CLOSED for s in State},
    **{(s, Trigger.CLOSE): State.CLOSED for s in State},
}

# Commands each reading state accepts (RFC 1939 §4-§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4).
_LEGAL: dict[State, frozenset[bytes]] = {
    State.AUTHORIZATION: frozenset({b"USER", b"PASS", b"AUTH", b"STLS", b"CAPA", b"QUIT"}),
    State.TRANSACTION: frozenset(
        {b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL", b"CAPA", b"QUIT"}
    ),
}
_PAUSED_STATES = frozenset({State.STARTING_TLS, State.UPDATE, State.CLOSED})

# Mechanisms that carry the password itself; refused without TLS like USER/PASS (RFC 4616 §6).
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


@dataclass(frozen=True, slots=True)
class Pop3Config:
    """What one listener offers. 995: ``tls_active=True``; 110: ``stls_offered=True``."""

    tls_active: bool = False  # TLS from the first byte (implicit TLS, port 995)
    stls_offered: bool = True  # STLS is announced and accepted while TLS is not active
    cleartext_auth: bool = False  # USER/PASS, PLAIN and LOGIN also without TLS (loopback only)
    user_command: bool = True  # offer USER/PASS at all
    sasl_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")  # upper-case, in preference order
    max_line: int = 255  # RFC 2449 §4: octets per command line, CRLF included
    max_sasl_line: int = 16384  # RFC 5034 §4: SASL responses are not bound by max_line
    max_errors: int = 10  # protocol errors per connection; the last one closes it

    def __post_init__(self) -> None:
        if self.max_line < 6 or self.max_sasl_line < 6:  # "CAPA\r\n" must fit
            raise ValueError("max_line and max_sasl_line must be at least 6")
        if self.max_errors < 1:
            raise ValueError("max_errors must be at least 1")
        for mechanism in self.sasl_mechanisms:
            if mechanism != mechanism.upper():
                raise ValueError(f"SASL mechanism names are upper-case: {mechanism!r}")


def _error(
    text: str, code: replies.RespCode | None = None, *, fatal: bool = False
) -> ProtocolError:
    return ProtocolError(replies.err(text, code), fatal=fatal)


class Pop3Connection:
    """One POP3 connection's protocol state; see the package docstring for how to drive it."""

    def __init__(self, config: Pop3Config) -> None:
        self.config = config
        self._state = State.AUTHORIZATION
        self._tls = config.tls_active
        self._buffer = LineBuffer()
        self._skipping = False  # inside a too-long line: drop everything up to the next LF
        self._trailing = 0
        self._after_user = False  # the previous command was USER (RFC 1939 §7 for PASS)
        self._errors = 0

    # --- what the session and adapter read ----------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls

    @property
    def plaintext_auth_allowed(self) -> bool:
        """Whether USER/PASS, PLAIN and LOGIN are accepted now."""
        return self._tls or self.config.cleartext_auth

    @property
    def mid_command(self) -> bool:
        """Part of a command line has arrived: the rest is on its way."""
        return bool(self._buffer)

    @property
    def trailing_data(self) -> bool:
        """Bytes came after the STLS line, before the handshake (thrown away, never read)."""
        return self._trailing > 0

    @property
    def errors(self) -> int:
        """Protocol errors so far on this connection."""
        return self._errors

    def sasl_mechanisms(self) -> tuple[str, ...]:
        """The SASL mechanisms AUTH accepts now (RFC 5034 §4)."""
        if self.plaintext_auth_allowed:
            return self.config.sasl_mechanisms
        return tuple(m for m in self.config.sasl_mechanisms if m not in PLAINTEXT_MECHANISMS)

    def capa_lines(self) -> list[str]:
        """The capabilities (RFC 2449 §5-§6), the same in AUTHORIZATION and TRANSACTION."""
        lines = ["TOP", "UIDL"]  # RFC 2449 §6.1, §6.8
        if self.config.user_command and self.plaintext_auth_allowed:
            lines.append("USER")  # RFC 2449 §6.2: only where USER/PASS will be accepted
        mechanisms = self.sasl_mechanisms()
        if mechanisms:
            lines.append("SASL " + " ".join(mechanisms))  # RFC 2449 §6.3
        lines += ["RESP-CODES", "AUTH-RESP-CODE"]  # RFC 2449 §6.4, RFC 3206 §6
        lines += ["PIPELINING", "EXPIRE NEVER"]  # RFC 2449 §6.6, §6.7: messages are kept
        if self.config.stls_offered and not self._tls:
            lines.append("STLS")  # RFC 2595 §4: gone once TLS is active
        lines.append("IMPLEMENTATION courriel")  # RFC 2449 §6.9
        return lines

    def capa_response(self) -> bytes:
        """The whole reply to CAPA."""
        return replies.multiline(replies.ok("capability list follows"), self.capa_lines())

    # --- what the session tells the core ------------------------------------------------------

    def challenge(self, data: bytes) -> bytes:
        """Bytes of a SASL challenge; the next line read is the client's response (RFC 5034 §4)."""
        self._move(Trigger.CHALLENGE)
        return b"+ " + binascii.b2a_base64(data, newline=False) + b"\r\n"

    def authenticated(self) -> None:
        """The session accepted the credentials: TRANSACTION begins (RFC 1939 §4)."""
        self._move(Trigger.AUTHENTICATED)
        self._after_user = False

    def close(self) -> None:
        """The session ends the conversation after its current reply (too many failed logins)."""
        self._move(Trigger.CLOSE)
        self._buffer.clear()

    def discard_trailing_data(self) -> int:
        """How many octets came after STLS, before the handshake, and were thrown away (RFC 2595
        §4: sent in the clear, never read as commands); the count starts again at zero."""
        count, self._trailing = self._trailing, 0
        return count

    def tls_started(self) -> None:
        """The STLS handshake completed: forget everything said in the clear (RFC 2595 §4)."""
        self._move(Trigger.TLS_STARTED)
        self._tls = True
        self._buffer.clear()
        self._skipping = False
        self._trailing = 0

    def stls_declined(self) -> None:
        """The session answered STLS with -ERR: go on reading commands without TLS."""
        self._move(Trigger.STLS_DECLINED)

    # --- bytes in, events out -----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Buffers bytes from the client; nothing is parsed until ``next_event``."""
        if self._state in _PAUSED_STATES:
            if self._state is State.STARTING_TLS:
                self._trailing += len(data)
            return  # after STLS, QUIT or a fatal error nothing more is read as POP3
        self._buffer.feed(data)

    def next_event(self) -> c.Event:
        """The next event; ``NEED_DATA`` or ``PAUSED`` when there is none. Raises ProtocolError."""
        if self._state in _PAUSED_STATES:
            return c.PAUSED
        sasl = self._state is State.SASL
        try:
            line = self._take_line(self.config.max_sasl_line if sasl else self.config.max_line)
            if line is None:
                return c.NEED_DATA
            if sasl:
                self._move(Trigger.SASL_RESPONSE)
                return c.parse_sasl_response(line)
            return self._command(line)
        except ProtocolError as error:
            if self._state is State.SASL:  # RFC 5034 §4: a failed response ends the exchange
                self._move(Trigger.SASL_RESPONSE)
            raise self._charge(error) from None

    def _take_line(self, limit: int) -> bytes | None:
        """The next line without its line end; refuses and skips one longer than ``limit``."""
        if self._skipping:
            if not self._buffer.discard_line():
                return None
            self._skipping = False
        try:
            line = self._buffer.readline(limit)
        except LineTooLong:
            # Refused once; the rest of the line is dropped as it arrives, never buffered.
            self._skipping = not self._buffer.discard_line()
            raise _error("line too long") from None  # RFC 2449 §4
        if line is None:
            return None
        # RFC 1939 §3 ends lines with CRLF; a bare LF is taken too, as every POP3 server does.
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]

    def _command(self, line: bytes) -> c.Command:
        after_user, self._after_user = self._after_user, False
        keyword, args, rest = c.split_command(line)
        if keyword in c.FOREIGN_KEYWORDS:
            raise _error("this is a POP3 server", fatal=True)
        if keyword not in c.PARSERS:
            raise _error("unknown command")
        if keyword not in _LEGAL[self._state]:
            when = "before" if self._state is State.AUTHORIZATION else "after"
            raise _error(f"{keyword.decode()} is not valid {when} authentication")
        if keyword in (b"USER", b"PASS"):
            self._check_user_pass(keyword, after_user)
        command = c.parse_command(keyword, args, rest)
        if isinstance(command, c.Auth):
            self._check_mechanism(command.mechanism)
        elif isinstance(command, c.Stls):
            self._check_stls()
        self._after_user = isinstance(command, c.User)
        self._after(command)
        return command

    def _refuse_plaintext(self) -> ProtocolError:
        hint = "; use STLS first" if self.config.stls_offered else ""
        text = "plaintext authentication is not allowed without TLS" + hint
        return _error(text, replies.RespCode.AUTH)  # RFC 2595 §2.1, RFC 3206 §5

    def _check_user_pass(self, keyword: bytes, after_user: bool) -> None:
        if not self.config.user_command:
            raise _error("USER/PASS is not offered; use AUTH")
        if not self.plaintext_auth_allowed:
            raise self._refuse_plaintext()
        if keyword == b"PASS" and not after_user:
            raise _error("PASS must come right after USER")  # RFC 1939 §7

    def _check_mechanism(self, mechanism: str) -> None:
        if mechanism in self.sasl_mechanisms():
            return
        if mechanism in self.config.sasl_mechanisms:
            raise self._refuse_plaintext()
        raise _error("unsupported authentication mechanism")  # RFC 5034 §4

    def _check_stls(self) -> None:
        if self._tls:
            raise _error("TLS is already active")  # RFC 2595 §4
        if not self.config.stls_offered:
            raise _error("STLS is not offered here")

    def _after(self, command: c.Command) -> None:
        if isinstance(command, c.Stls):
            self._move(Trigger.STLS)
            self._trailing = self._buffer.clear()
        elif isinstance(command, c.Quit):
            self._move(Trigger.QUIT)
            self._buffer.clear()  # RFC 1939 §6: the server closes after replying to QUIT

    def _charge(self, error: ProtocolError) -> ProtocolError:
        self._errors += 1
        if not error.fatal and self._errors >= self.config.max_errors:
            error = _error("too many errors; closing the connection", fatal=True)
        if error.fatal:
            self._move(Trigger.FATAL)
            self._buffer.clear()
        return error

    def _move(self, trigger: Trigger) -> None:
        try:
            self._state = _TRANSITIONS[self._state, trigger]
        except KeyError:
            raise RuntimeError(
                f"{trigger.value} is not possible in state {self._state.name}"
            ) from None
