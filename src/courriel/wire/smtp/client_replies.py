"""What an SMTP client reads: replies with hard bounds, and the EHLO capabilities in them.

Theory of operation
-------------------
``ReplyReader`` turns the octets a server sends into ``Reply`` records (the same record the
server core sends). Input is fed in whatever pieces the network delivered; ``next_reply``
returns one complete reply or ``None`` when more input is needed. A line is found with one
``find`` on the buffer (``LineBuffer.readline``), never scanned octet by octet.

Everything is bounded, because the server is a stranger on the internet:

* a line longer than ``max_line`` octets (RFC 5321 §4.5.3.1.5 allows 512; real servers send a
  little more, so the default is 2048) is an error as soon as that many octets hold no LF, so a
  server sending a 10 MB line costs 2 KB of memory, not 10 MB;
* a reply of more than ``max_lines`` lines or ``max_bytes`` octets is an error, so a server that
  sends "250-" forever cannot make a reply grow without end;
* a line that does not start with three digits and a space, a hyphen or its end, or a
  continuation line whose code differs from the first (RFC 5321 §4.2.1), is an error.

Each error is a ``BadReply`` (a ``ProtocolError``, always fatal): the client cannot know where
the next reply starts, so the only safe course is to close the connection.

Line ends: CRLF, and a bare LF is taken as a line end too (servers that send one are sloppy,
not hostile, and a reply cannot smuggle anything). Text is decoded as UTF-8 with replacement
and control characters become "?", so a reply quoted in a bounce or a log is printable.
The enhanced status code (RFC 3463) is split off the text when its class matches the reply's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from courriel.wire.errors import ProtocolError
from courriel.wire.linebuffer import LineBuffer, LineTooLong
from courriel.wire.smtp.replies import Reply

_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")  # RFC 3463 §2
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class BadReply(ProtocolError):  # noqa: N818 - reads as "client_replies.BadReply"
    """The server sent something that is not an SMTP reply; close the connection."""

    def __init__(self, reason: str) -> None:
        super().__init__(b"", fatal=True)
        self.args = (reason,)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReplyLimits:
    max_line: int = 2048  # octets of one reply line, CRLF included
    max_lines: int = 128  # lines of one multi-line reply (an EHLO answer has ~15)
    max_bytes: int = 64 * 1024  # octets of one reply


class ReplyReader:
    """Replies from the octets a server sends, one at a time."""

    __slots__ = ("_buf", "_code", "_limits", "_lines", "_size")

    def __init__(self, limits: ReplyLimits | None = None) -> None:
        self._limits = limits or ReplyLimits()
        self._buf = LineBuffer()
        self._code = 0  # the code of the reply being read; 0 between replies
        self._lines: list[str] = []
        self._size = 0

    def feed(self, data: bytes) -> None:
        self._buf.feed(data)

    @property
    def buffered(self) -> int:
        """Octets received and not yet part of a returned reply."""
        return len(self._buf) + self._size

    def next_reply(self) -> Reply | None:
        """The next complete reply, or ``None`` until more input arrives; raises ``BadReply``."""
        limits = self._limits
        while True:
            try:
                raw = self._buf.readline(limits.max_line)
            except LineTooLong:
                too_long = f"the server sent a line longer than {limits.max_line} octets"
                raise BadReply(too_long) from None
            if raw is None:
                return None
            self._size += len(raw)
            if len(self._lines) >= limits.max_lines or self._size > limits.max_bytes:
                raise BadReply(
                    f"the server sent a reply longer than {limits.max_lines} lines "
                    f"or {limits.max_bytes} octets"
                )
            code, last, text = _split_line(raw)
            if self._code and code != self._code:
                raise BadReply(f"reply lines disagree on the code ({self._code}, then {code})")
            self._code = code
            self._lines.append(text)
            if last:
                return self._finish()

    def _finish(self) -> Reply:
        code, lines = self._code, self._lines
        self._code, self._lines, self._size = 0, [], 0
        enhanced = ""
        m = _ENHANCED.match(lines[0])
        if m and int(m.group(1)) == code // 100:
            enhanced = f"{m.group(1)}.{int(m.group(2))}.{int(m.group(3))}"
            lines = [_strip_enhanced(line) for line in lines]
        return Reply(code, enhanced, lines[0], tuple(lines[1:]))


def _strip_enhanced(line: str) -> str:
    m = _ENHANCED.match(line)
    return line[m.end() :] if m else line  # RFC 2034 §4: repeated on every line


def _split_line(raw: bytes) -> tuple[int, bool, str]:
    """(code, is the last line, text) of one reply line; raises ``BadReply``."""
    line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    head = line[:3]
    if len(head) < 3 or not head.isdigit() or not b"2" <= head[:1] <= b"5":
        raise BadReply(f"not an SMTP reply line: {_printable(line[:60])!r}")  # RFC 5321 §4.2
    sep = line[3:4]
    if sep not in (b"", b" ", b"-"):
        raise BadReply(f"not an SMTP reply line: {_printable(line[:60])!r}")
    return int(head), sep != b"-", _printable(line[4:])


def _printable(data: bytes) -> str:
    return _CONTROL.sub("?", data.decode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a server offered in its EHLO answer; all false for a HELO-only server."""

    esmtp: bool = False
    pipelining: bool = False  # RFC 2920
    size: int | None = None  # RFC 1870: None when not offered, 0 when offered without a limit
    eight_bit_mime: bool = False  # RFC 6152
    smtputf8: bool = False  # RFC 6531
    chunking: bool = False  # RFC 3030
    binary_mime: bool = False  # RFC 3030 §3
    dsn: bool = False  # RFC 3461
    starttls: bool = False  # RFC 3207
    enhanced_status_codes: bool = False  # RFC 2034
    requiretls: bool = False  # RFC 8689
    auth: frozenset[str] = frozenset()  # RFC 4954 mechanisms, upper case

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Capabilities:
        """The keywords of a 250 EHLO answer; the first line is the server's name."""
        found: dict[str, str] = {}
        for line in reply.more:
            keyword, _, value = line.strip().partition(" ")
            keyword = keyword.upper()
            if keyword.startswith("AUTH="):  # the pre-RFC 4954 form some servers still send
                keyword, value = "AUTH", keyword[5:] + " " + value
            if keyword == "AUTH" and "AUTH" in found:
                value = found["AUTH"] + " " + value
            found[keyword] = value
        size: int | None = None
        if "SIZE" in found:
            number = found["SIZE"].strip()
            size = int(number) if number.isdigit() and len(number) < 19 else 0
        return cls(
            esmtp=True,
            pipelining="PIPELINING" in found,
            size=size,
            eight_bit_mime="8BITMIME" in found,
            smtputf8="SMTPUTF8" in found,
            chunking="CHUNKING" in found,
            binary_mime="BINARYMIME" in found,
            dsn="DSN" in found,
            starttls="STARTTLS" in found,
            enhanced_status_codes="ENHANCEDSTATUSCODES" in found,
            requiretls="REQUIRETLS" in found,
            auth=frozenset(found.get("AUTH", "").upper().split()),
        )
