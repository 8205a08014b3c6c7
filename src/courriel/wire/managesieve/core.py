"""The ManageSieve protocol engine (RFC 5804): bytes in, commands out, no I/O.

Theory of operation
-------------------
``ManageSieveConnection.receive_data`` buffers what the client sent; ``next_event`` returns the
next whole command, ``NeedData``, or ``Paused`` once the connection is over, and raises
``ProtocolError`` (carrying the ``NO`` or ``BYE`` to send) for a malformed one. A command is a
name and arguments separated by spaces: quoted strings, literals ``{n+}`` / ``{n}`` followed by
CRLF and n octets (RFC 5804 §4; a literal is never answered with a continuation, so both forms
are read alike), and numbers. The non-literal part of a command is bounded
(``max_line``), and so is each literal (``max_literal``): a larger one cannot be skipped safely
and ends the connection with BYE.

State table (what the core lets through; the session decides the rest):

    =============  ============================================  =================
    state          commands                                      next state
    =============  ============================================  =================
    NOT_AUTH       CAPABILITY NOOP LOGOUT STARTTLS AUTHENTICATE  SASL on AUTHENTICATE
    SASL           a string (base64) or "*"                      NOT_AUTH / AUTH (session)
    AUTH           every command but AUTHENTICATE and STARTTLS   NOT_AUTH on UNAUTHENTICATE
    LOGOUT         nothing                                       -
    =============  ============================================  =================

After ``STARTTLS`` the adapter throws away ``trailing_data`` (bytes pipelined before the
handshake must not be read as commands, RFC 5804 §2.2: ``discard_trailing_data``) and calls
``tls_started``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass

from courriel.wire.errors import ProtocolError
from courriel.wire.managesieve import commands as c
from courriel.wire.managesieve import responses as r


class State(enum.Enum):
    NOT_AUTH = "not authenticated"
    SASL = "authenticating"
    AUTH = "authenticated"
    LOGOUT = "logout"


@dataclass(frozen=True, slots=True)
class ManageSieveConfig:
    max_line: int = 8 * 1024
    max_literal: int = 1024 * 1024
    max_errors: int = 10  # bad commands in a row before BYE
    tls_active: bool = False


_ATOM = re.compile(rb"[A-Za-z]+")
_LITERAL = re.compile(rb"\{([0-9]{1,10})(\+?)\}\r\n")
_NUMBER = re.compile(rb"[0-9]{1,10}")

_NOT_AUTH = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE"})
_AUTH = frozenset(
    {
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "UNAUTHENTICATE",
        "HAVESPACE",
        "PUTSCRIPT",
        "CHECKSCRIPT",
        "LISTSCRIPTS",
        "SETACTIVE",
        "GETSCRIPT",
        "DELETESCRIPT",
        "RENAMESCRIPT",
    }
)
# command -> argument kinds: "s" string, "n" number, "?" an optional string
_ARGS: dict[str, str] = {
    "CAPABILITY": "",
    "NOOP": "?",
    "LOGOUT": "",
    "STARTTLS": "",
    "AUTHENTICATE": "s?",
    "UNAUTHENTICATE": "",
    "HAVESPACE": "sn",
    "PUTSCRIPT": "ss",
    "CHECKSCRIPT": "s",
    "LISTSCRIPTS": "",
    "SETACTIVE": "s",
    "GETSCRIPT": "s",
    "DELETESCRIPT": "s",
    "RENAMESCRIPT": "ss",
}


class _Incomplete(Exception):  # noqa: N818 - control flow: wait for more bytes
    pass


class _Bad(Exception):  # noqa: N818
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ManageSieveConnection:
    def __init__(self, config: ManageSieveConfig | None = None) -> None:
        self.config = config or ManageSieveConfig()
        self.state = State.NOT_AUTH
        self.tls_active = self.config.tls_active
        self._buf = bytearray()
        self._errors = 0
        self.trailing_data = b""

    # --- input --------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    @property
    def mid_command(self) -> bool:
        """Part of a command (its line, or a literal it announced) has arrived: the rest is on
        its way. A command stays buffered until all of it is there."""
        return bool(self._buf)

    def next_event(self) -> c.Event:
        if self.state is State.LOGOUT:
            return c.Paused()
        try:
            parsed = self._parse()
        except _Incomplete:
            if self._pending_line_too_long():
                self.state = State.LOGOUT
                raise ProtocolError(r.bye("command line too long"), fatal=True) from None
            return c.NeedData()
        except _Bad as e:
            self._skip_line()  # the malformed command is still buffered: drop its line
            return self._bad(e.text)
        if parsed is None:
            return c.NeedData()
        values, consumed = parsed
        del self._buf[:consumed]
        try:
            return self._command(values)
        except _Bad as e:
            return self._bad(e.text)

    def _bad(self, text: str) -> c.Event:
        self._errors += 1
        if self._errors >= self.config.max_errors:
            self.state = State.LOGOUT
            raise ProtocolError(r.bye("too many bad commands"), fatal=True)
        if self.state is State.SASL:
            self.state = State.NOT_AUTH
        raise ProtocolError(r.no(text))

    def _skip_line(self) -> None:
        end = self._buf.find(b"\r\n")
        del self._buf[: len(self._buf) if end < 0 else end + 2]

    def _pending_line_too_long(self) -> bool:
        # The non-literal part of the buffered command must stay short; literals are
        # bounded separately, when their size is read.
        if len(self._buf) > self.config.max_line + self.config.max_literal:
            return True  # more than one command may ever take, literal included
        head = bytes(self._buf[: self.config.max_line + 1])
        return len(head) > self.config.max_line and _LITERAL.search(head) is None

    # --- the grammar --------------------------------------------------------------------------

    def _parse(self) -> tuple[list[bytes | int], int] | None:
        """Every token of the first command and the bytes it took; _Incomplete if partial."""
        buf = self._buf
        values: list[bytes | int] = []
        pos = 0
        if self.state is not State.SASL:
            m = _ATOM.match(buf, 0)
            if m is None:
                if buf.find(b"\r\n") < 0:
                    raise _Incomplete
                raise _Bad("expected a command name")
            values.append(m.group().upper())
            pos = m.end()
            if pos == len(buf):
                raise _Incomplete
        else:
            value, pos = self._string(buf, 0)
            values.append(value)
            return self._end(buf, pos, values)
        while True:
            if buf.startswith(b"\r\n", pos):
                return values, pos + 2
            if pos >= len(buf) or (pos == len(buf) - 1 and buf[pos] == 13):
                raise _Incomplete
            if buf[pos] != 32:
                raise _Bad("expected a space between arguments")
            pos += 1
            if pos >= len(buf):
                raise _Incomplete
            m = _NUMBER.match(buf, pos)
            if m is not None and not buf.startswith(b"{", pos):
                values.append(int(m.group()))
                pos = m.end()
                continue
            value, pos = self._string(buf, pos)
            values.append(value)

    def _end(
        self, buf: bytearray, pos: int, values: list[bytes | int]
    ) -> tuple[list[bytes | int], int]:
        if len(buf) < pos + 2:
            raise _Incomplete
        if not buf.startswith(b"\r\n", pos):
            raise _Bad("expected the end of the line")
        return values, pos + 2

    def _string(self, buf: bytearray, pos: int) -> tuple[bytes, int]:
        if pos >= len(buf):
            raise _Incomplete
        if buf[pos] == 34:  # a quoted string
            out = bytearray()
            i = pos + 1
            while True:
                if i >= len(buf):
                    raise _Incomplete
                ch = buf[i]
                if ch == 34:
                    return bytes(out), i + 1
                if ch == 92:
                    if i + 1 >= len(buf):
                        raise _Incomplete
                    nxt = buf[i + 1]
                    if nxt not in (34, 92):
                        raise _Bad('only \\\\ and \\" may be escaped in a quoted string')
                    out.append(nxt)
                    i += 2
                    continue
                if ch in (13, 10, 0):
                    raise _Bad("a quoted string holds a line break")
                out.append(ch)
                i += 1
        if buf[pos] == 123:  # "{": a literal
            m = _LITERAL.match(buf, pos)
            if m is None:
                if buf.find(b"\r\n", pos) < 0:
                    raise _Incomplete
                raise _Bad("a malformed literal")
            size = int(m.group(1))
            if size > self.config.max_literal:
                self.state = State.LOGOUT
                raise ProtocolError(
                    r.bye(
                        f"a literal larger than {self.config.max_literal} bytes", r.QUOTA_MAXSIZE
                    ),
                    fatal=True,
                )
            end = m.end() + size
            if len(buf) < end:
                raise _Incomplete
            return bytes(buf[m.end() : end]), end
        raise _Bad("expected a string")

    # --- commands -----------------------------------------------------------------------------

    def _command(self, values: list[bytes | int]) -> c.Command:
        if self.state is State.SASL:
            return self._sasl_response(values[0])
        name = values[0]
        assert isinstance(name, bytes)
        command = name.decode("ascii")
        args = values[1:]
        if command not in _ARGS:
            raise _Bad(f"unknown command {command}")
        allowed = _AUTH if self.state is State.AUTH else _NOT_AUTH
        if command not in allowed:
            raise _Bad(f"{command} is not allowed when {self.state.value}")
        kinds = _ARGS[command]
        required = kinds.replace("?", "")
        if not (len(required) <= len(args) <= len(kinds)):
            raise _Bad(f"{command}: wrong number of arguments")
        for kind, arg in zip(kinds, args, strict=False):
            if (kind == "n") != isinstance(arg, int):
                raise _Bad(f"{command}: {'a number' if kind == 'n' else 'a string'} expected")
        self._errors = 0
        return self._typed(command, args)

    def _typed(self, command: str, args: list[bytes | int]) -> c.Command:
        text = [_utf8(a) if isinstance(a, bytes) else "" for a in args]
        match command:
            case "CAPABILITY":
                return c.Capability()
            case "NOOP":
                return c.Noop(text[0] if args else None)
            case "LOGOUT":
                self.state = State.LOGOUT
                return c.Logout()
            case "STARTTLS":
                if self.tls_active:
                    raise _Bad("TLS is already active")
                self.trailing_data = bytes(self._buf)
                return c.StartTls()
            case "AUTHENTICATE":
                initial = None
                if len(args) > 1:
                    assert isinstance(args[1], bytes)
                    initial = _b64(args[1])
                self.state = State.SASL
                return c.Authenticate(text[0].upper(), initial)
            case "UNAUTHENTICATE":
                self.state = State.NOT_AUTH
                return c.Unauthenticate()
            case "HAVESPACE":
                size = args[1]
                assert isinstance(size, int)
                return c.HaveSpace(text[0], size)
            case "PUTSCRIPT":
                content = args[1]
                assert isinstance(content, bytes)
                return c.PutScript(text[0], content)
            case "CHECKSCRIPT":
                content = args[0]
                assert isinstance(content, bytes)
                return c.CheckScript(content)
            case "LISTSCRIPTS":
                return c.ListScripts()
            case "SETACTIVE":
                return c.SetActive(text[0])
            case "GETSCRIPT":
                return c.GetScript(text[0])
            case "DELETESCRIPT":
                return c.DeleteScript(text[0])
            case "RENAMESCRIPT":
                return c.RenameScript(text[0], text[1])
        raise _Bad(f"unknown command {command}")

    def _sasl_response(self, value: bytes | int) -> c.Command:
        assert isinstance(value, bytes)
        if value == b"*":
            self.state = State.NOT_AUTH
            return c.AuthCancel()  # RFC 5804 §2.1
        return c.AuthResponse(_b64(value))

    # --- what the session tells the core ------------------------------------------------------

    def authenticated(self) -> None:
        self.state = State.AUTH

    def authentication_failed(self) -> None:
        if self.state is not State.LOGOUT:
            self.state = State.NOT_AUTH

    def discard_trailing_data(self) -> int:
        """Throws away what came after STARTTLS, before the handshake; how many octets (RFC 5804
        §2.2: sent in clear, never read as commands)."""
        count = len(self._buf)
        self._buf.clear()
        self.trailing_data = b""
        return count

    def tls_started(self) -> None:
        self.tls_active = True
        self.trailing_data = b""

    def close(self) -> None:
        self.state = State.LOGOUT


def _utf8(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad("a string is not valid UTF-8") from None


def _b64(value: bytes) -> bytes:
    if value == b"":
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad("the SASL response is not valid base64") from None
