"""The IMAP server connection, sans-IO: bytes in, typed commands out.

Theory of operation
-------------------
``Connection`` buffers what ``receive_data`` gives it and ``next_event`` cuts it into
commands. A command is one or more line pieces separated by literals: a piece ending in
``{n}`` / ``{n+}`` / ``~{n}`` / ``~{n+}`` is followed by exactly ``n`` bytes of literal data,
read in bulk (one slice of the buffer, never a loop per line or byte), and then by the next
piece. When the last piece arrives the whole command is parsed at once (``parser.py``).

Modes (the legal transitions; everything else is a bug in the caller)::

    COMMAND  --{n} announced------------------------------> APPROVAL
    COMMAND  --{n+} within the limit---------------------> LITERAL
    COMMAND  --{n+} above the limit, BAD [TOOBIG]---------> DISCARD --> SKIP_LINE --> COMMAND
    COMMAND  --line too long, tagged BAD------------------> SKIP_LINE
    COMMAND  --line too long, no tag, BYE-----------------> CLOSED
    APPROVAL --accept_literal() (+ Ready)-----------------> LITERAL --> COMMAND
    APPROVAL --refuse_literal() (tagged NO)---------------> COMMAND
    COMMAND  --start_idle() after Idle-------------------> IDLE --DONE or error--> COMMAND
    COMMAND  --sasl_challenge()---------------------------> SASL --one line------> COMMAND

Limits (``Limits``): command text without literals, literal size, literals per command, nesting
depth and sequence set size. A synchronising literal above ``max_literal`` is refused with
``NO [TOOBIG]`` before it is read; a non-synchronising one cannot be refused in advance, so the
core answers ``BAD [TOOBIG]`` at once and then drops the announced bytes as they arrive,
without buffering them, and the rest of that command with them (RFC 7888 §4; closing is the
other choice the RFC allows, and would punish a client for one oversized message). Without
LITERAL+ (``literal_plus=False``, LITERAL- only) the non-synchronising limit is 4096 bytes
(RFC 7888 §5).

Errors: ``next_event`` raises ``ProtocolError``; the session writes ``reply`` and, unless
``fatal``, calls ``next_event`` again: the core has already skipped the bad command, so the
next one parses normally. After ``Limits.max_bad_commands`` errors in a row the error becomes
fatal with a BYE (a client that only sends garbage is not served forever).
"""

from __future__ import annotations

import base64
import enum
import re
from typing import NoReturn

from courriel.wire.errors import ProtocolError
from courriel.wire.imap.commands import Command
from courriel.wire.imap.events import (
    CONNECTION_CLOSED,
    NEED_DATA,
    AuthenticateResponse,
    ConnectionClosed,
    IdleDone,
    LiteralRequest,
    NeedData,
)
from courriel.wire.imap.lexer import InvalidName, Limits
from courriel.wire.imap.parse_search import BadCharset
from courriel.wire.imap.parser import decode_base64, parse_command, read_tag

Event = Command | NeedData | ConnectionClosed | LiteralRequest | IdleDone | AuthenticateResponse

CONTINUE_LITERAL = b"+ Ready for literal data\r\n"
CONTINUE_IDLE = b"+ idling\r\n"
_MARKER_RE = re.compile(rb"(~?)\{(\d{1,20})(\+?)\}\Z")
_NAME_RE = re.compile(rb"[^ ]+ ([A-Za-z]+)(?: ([A-Za-z]+))?")
_TAIL = 32  # bytes kept while skipping a line, enough to see a literal marker at its end


class _Mode(enum.Enum):
    COMMAND = "command"
    APPROVAL = "approval"
    LITERAL = "literal"
    DISCARD = "discard"
    SKIP_LINE = "skip line"
    IDLE = "idle"
    SASL = "sasl"
    CLOSED = "closed"


def _marker(line: bytes) -> tuple[int, bool, bool] | None:
    """(size, non-synchronising, literal8) when ``line`` ends with a literal marker."""
    if not line.endswith(b"}"):
        return None
    brace = line.rfind(b"{")
    m = _MARKER_RE.match(line, brace - 1 if brace > 0 and line[brace - 1] == 0x7E else brace)
    if brace < 0 or m is None:
        return None
    return int(m.group(2)), m.group(3) == b"+", m.group(1) == b"~"


class Connection:
    """One IMAP server connection's framing and parsing state; see the module docstring."""

    def __init__(self, limits: Limits | None = None, *, literal_plus: bool = True) -> None:
        self.limits = limits or Limits()
        self.literal_plus = literal_plus
        self._buf = bytearray()
        self._start = 0  # first unconsumed byte: lines are cut by moving it, not by deleting
        self._scan = 0  # where the search for the next LF resumes
        self._eof = False
        self._mode = _Mode.COMMAND
        self._utf8 = False
        self._texts: list[bytes] = []
        self._literals: list[bytes] = []
        self._text_len = 0
        self._literal_bytes = 0
        self._want = 0  # bytes of literal to read or to discard
        self._request: LiteralRequest | None = None
        self._tag = ""  # tag of the IDLE or AUTHENTICATE in progress
        self._errors = 0

    # --- session-facing API -------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means the peer closed its side."""
        if data:
            if self._start:  # compact once per read, not once per command
                del self._buf[: self._start]
                self._scan -= self._start
                self._start = 0
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Event:
        try:
            event = self._next()
        except (BadCharset, InvalidName):
            self._errors = 0  # a tagged NO for a well-formed command, not a syntax error
            raise
        except ProtocolError as e:
            self._errors += 1
            if self._errors >= self.limits.max_bad_commands and not e.fatal:
                self._mode = _Mode.CLOSED
                bye = b"* BYE Too many invalid commands\r\n"
                raise ProtocolError(e.reply + bye, fatal=True) from e
            raise
        if not isinstance(event, NeedData | LiteralRequest | ConnectionClosed):
            self._errors = 0
        return event

    def accept_literal(self) -> bytes:
        """Go on with the announced literal; returns the continuation request to write."""
        if self._mode is not _Mode.APPROVAL or self._request is None:
            raise RuntimeError("no synchronising literal is waiting for approval")
        self._want = self._request.size
        self._request = None
        self._mode = _Mode.LITERAL
        return CONTINUE_LITERAL

    def refuse_literal(self, text: str = "Literal too big", code: str = "TOOBIG") -> bytes:
        """Drop the command before its literal is sent; returns the tagged NO to write."""
        if self._mode is not _Mode.APPROVAL or self._request is None:
            raise RuntimeError("no synchronising literal is waiting for approval")
        tag = self._request.tag
        self._reset_command()
        self._mode = _Mode.COMMAND
        prefix = f"[{code}] " if code else ""
        return f"{tag} NO {prefix}{text}\r\n".encode()  # RFC 9051 §7.1 TOOBIG

    def start_idle(self, tag: str) -> bytes:
        """Enter IDLE for the command tagged ``tag``; returns the continuation to write."""
        self._require_idle_mode()
        self._mode, self._tag = _Mode.IDLE, tag
        return CONTINUE_IDLE

    def sasl_challenge(self, tag: str, challenge: bytes) -> bytes:
        """Expect one SASL response line; returns ``+ base64(challenge)`` to write."""
        self._require_idle_mode()
        self._mode, self._tag = _Mode.SASL, tag
        return b"+ " + base64.b64encode(challenge) + b"\r\n"

    def enable_utf8(self) -> None:
        """IMAP4rev2 or UTF8=ACCEPT is in force: mailbox names are UTF-8 from now on."""
        self._utf8 = True

    @property
    def utf8(self) -> bool:
        return self._utf8

    @property
    def idling(self) -> bool:
        return self._mode is _Mode.IDLE

    @property
    def in_sasl(self) -> bool:
        return self._mode is _Mode.SASL

    @property
    def mid_command(self) -> bool:
        """Part of a command has arrived (a partial line, literals of an unfinished command),
        or a literal or the rest of a refused line is awaited: more of it is on its way."""
        waiting = self._mode in (_Mode.LITERAL, _Mode.DISCARD, _Mode.SKIP_LINE)
        return waiting or bool(self._texts) or len(self._buf) > self._start

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not yet consumed (STARTTLS throws them away, COMPRESS must find
        none)."""
        return bytes(self._buf[self._start :])

    def take_trailing_data(self) -> bytes:
        """Removes and returns the unconsumed bytes (for the adapter to inflate, say)."""
        data = bytes(self._buf[self._start :])
        self._buf.clear()
        self._start = self._scan = 0
        return data

    # --- framing ------------------------------------------------------------------------------

    def _require_idle_mode(self) -> None:
        if self._mode is not _Mode.COMMAND or self._texts:
            raise RuntimeError("the connection is in the middle of a command")

    def _need(self) -> NeedData | ConnectionClosed:
        return CONNECTION_CLOSED if self._eof else NEED_DATA

    def _reset_command(self) -> None:
        self._texts = []
        self._literals = []
        self._text_len = 0
        self._literal_bytes = 0
        self._request = None

    def _next(self) -> Event:
        while True:
            mode = self._mode
            if mode is _Mode.COMMAND:
                event = self._read_piece()
            elif mode is _Mode.LITERAL:
                event = self._read_literal()
            elif mode is _Mode.APPROVAL:
                assert self._request is not None
                return self._request
            elif mode is _Mode.DISCARD:
                event = self._discard()
            elif mode is _Mode.SKIP_LINE:
                event = self._skip_line()
            elif mode is _Mode.IDLE:
                event = self._read_idle()
            elif mode is _Mode.SASL:
                event = self._read_sasl()
            else:
                return CONNECTION_CLOSED
            if event is not None:
                return event

    def _take_line(self, limit: int) -> bytes | None:
        """The next line without its CRLF (or bare LF), or None; ``limit`` bounds waiting."""
        buf, start = self._buf, self._start
        nl = buf.find(b"\n", self._scan)
        if nl < 0:
            self._scan = len(buf)
            if len(buf) - start > limit:
                self._too_long()
            return None
        end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
        line = bytes(buf[start:end])
        self._start = self._scan = nl + 1
        if len(line) > limit:
            marker = _marker(line)
            # a complete line: only a non-synchronising literal after it still has to go
            self._too_long(line, skip=False, discard=marker[0] if marker and marker[1] else 0)
        return line

    def _too_long(self, line: bytes = b"", *, skip: bool = True, discard: int = 0) -> NoReturn:
        if self._mode in (_Mode.IDLE, _Mode.SASL):
            tag: str | None = self._tag
        elif self._texts:
            tag = read_tag(self._texts[0])
        else:
            head = line[:256] or bytes(self._buf[self._start : self._start + 256])
            # a tag is only believed when a space ends it; 256 bytes of letters are no tag
            tag = read_tag(head) if b" " in head else None
        self._reset_command()
        if discard:
            self._mode, self._want = _Mode.DISCARD, discard
        else:
            self._mode = _Mode.SKIP_LINE if skip else _Mode.COMMAND
        if not tag:
            self._mode = _Mode.CLOSED
            raise ProtocolError(b"* BYE Command line too long\r\n", fatal=True)
        raise ProtocolError(f"{tag} BAD Command line too long\r\n".encode())

    def _read_piece(self) -> Event | None:
        line = self._take_line(self.limits.max_line - self._text_len)
        if line is None:
            return self._need()
        if not line and not self._texts:
            return None  # a stray empty line between commands is ignored
        self._texts.append(line)
        self._text_len += len(line)
        marker = _marker(line)
        if marker is None:
            texts, literals = self._texts, self._literals
            self._reset_command()
            return parse_command(texts, literals, limits=self.limits, utf8=self._utf8)
        return self._literal_announced(*marker)

    def _literal_announced(self, size: int, nonsync: bool, binary: bool) -> Event | None:
        tag = read_tag(self._texts[0])
        too_many = len(self._literals) >= self.limits.max_literals
        if nonsync:
            cap = self.limits.max_literal
            if not self.literal_plus:
                cap = min(cap, self.limits.literal_minus_cap)  # RFC 7888 §5 LITERAL-
            if size > cap or too_many or tag is None:
                self._reset_command()
                self._mode, self._want = _Mode.DISCARD, size  # RFC 7888 §4
                raise ProtocolError(self._literal_error(tag, too_many))
            self._mode, self._want = _Mode.LITERAL, size
            return None
        if size > self.limits.max_literal or too_many or tag is None:
            self._reset_command()  # the client waits for "+", so nothing needs discarding
            raise ProtocolError(self._literal_error(tag, too_many, status="NO"))
        self._request = LiteralRequest(tag, self._command_name(), size, self._literal_bytes, binary)
        self._mode = _Mode.APPROVAL
        return self._request

    def _literal_error(self, tag: str | None, too_many: bool, status: str = "BAD") -> bytes:
        if tag is None:
            return b"* BAD Invalid or missing tag\r\n"
        if too_many:
            return f"{tag} BAD Too many literals in one command\r\n".encode()
        # RFC 9051 §7.1 TOOBIG
        return f"{tag} {status} [TOOBIG] Literal too big\r\n".encode()

    def _command_name(self) -> str:
        m = _NAME_RE.match(self._texts[0])
        if m is None:
            return ""
        name = m.group(1).decode("ascii").upper()
        if name == "UID" and m.group(2):
            name += " " + m.group(2).decode("ascii").upper()
        return name

    def _read_literal(self) -> Event | None:
        want, start = self._want, self._start
        if len(self._buf) - start < want:
            return self._need()
        with memoryview(self._buf) as view:
            data = bytes(view[start : start + want])  # one copy, straight out of the buffer
        self._start = self._scan = start + want
        self._literals.append(data)
        self._literal_bytes += want
        self._mode = _Mode.COMMAND
        return None

    def _discard(self) -> Event | None:
        available = len(self._buf) - self._start
        drop = min(self._want, available)
        if drop == available:
            self._buf.clear()  # a refused literal is never kept in memory
            self._start = self._scan = 0
        else:
            self._start = self._scan = self._start + drop
        self._want -= drop
        if self._want:
            return self._need()
        self._mode = _Mode.SKIP_LINE
        return None

    def _skip_line(self) -> Event | None:
        buf, start = self._buf, self._start
        nl = buf.find(b"\n", self._scan)
        if nl < 0:
            if len(buf) - start > _TAIL:
                del buf[: len(buf) - _TAIL]
                self._start = 0
            self._scan = len(buf)
            return self._need()
        end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
        marker = _marker(bytes(buf[max(start, end - _TAIL) : end]))
        self._start = self._scan = nl + 1
        if marker is not None and marker[1]:
            self._mode, self._want = _Mode.DISCARD, marker[0]
        else:
            self._mode = _Mode.COMMAND
        return None

    def _read_idle(self) -> Event | None:
        line = self._take_line(self.limits.max_line)
        if line is None:
            return self._need()
        self._mode = _Mode.COMMAND
        if line.upper() == b"DONE":  # RFC 9051 §6.3.13
            return IdleDone(self._tag)
        marker = _marker(line)
        if marker is not None and marker[1]:
            self._mode, self._want = _Mode.DISCARD, marker[0]
        raise ProtocolError(f"{self._tag} BAD Expected DONE\r\n".encode())

    def _read_sasl(self) -> Event | None:
        line = self._take_line(self.limits.max_line)
        if line is None:
            return self._need()
        self._mode = _Mode.COMMAND
        if line == b"*":  # RFC 9051 §6.2.2: the client cancels
            return AuthenticateResponse(self._tag, b"", cancelled=True)
        data = decode_base64(line)
        if data is None:
            raise ProtocolError(f"{self._tag} BAD Invalid base64 in SASL response\r\n".encode())
        return AuthenticateResponse(self._tag, data)
