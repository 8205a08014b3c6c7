"""POP3 reply bytes: status lines, multi-line responses, and stored messages for RETR and TOP.

Theory of operation
-------------------
Every reply the server sends is built here, so the sentences are the same whichever session code
sends them. A status line is ``+OK`` or ``-ERR``, an optional RFC 2449 response code in brackets,
text, CRLF. A multi-line response is a status line, lines with a leading "." doubled, and a line
holding only "." (RFC 1939 §3).

RETR and TOP send a stored message, which can be megabytes. Stored messages have CRLF line ends,
so byte-stuffing is one ``bytes.replace`` of ``b"\\r\\n."`` with ``b"\\r\\n.."`` plus a "." before
the first line: no Python loop per line, and the client receives exactly the bytes that were
delivered (DESIGN.md, speed notes). TOP cuts the body after ``n`` lines with one ``bytes.split``
bounded by ``n``, also in C.

Text given to a builder is the server's own; CR, LF or a leading "[" in it is a bug in the caller
and raises ``ValueError`` rather than putting a second line or a false response code on the wire.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

CRLF = b"\r\n"
_END = b".\r\n"


class RespCode(enum.Enum):
    """Extended response codes, sent in brackets after -ERR (RFC 2449 §8, RFC 3206)."""

    IN_USE = "IN-USE"  # RFC 2449 §8.1.1: the maildrop is locked by another session
    LOGIN_DELAY = "LOGIN-DELAY"  # RFC 2449 §8.1.2: logged in too recently
    SYS_TEMP = "SYS/TEMP"  # RFC 3206 §4: a temporary system problem; try again later
    SYS_PERM = "SYS/PERM"  # RFC 3206 §4: a permanent system problem; an administrator must act
    AUTH = "AUTH"  # RFC 3206 §5: the credentials (or how they were sent) are at fault


def _line(text: str) -> bytes:
    if "\r" in text or "\n" in text:
        raise ValueError(f"reply text must be one line: {text!r}")
    return text.encode("utf-8")


def ok(text: str = "") -> bytes:
    """``+OK text`` (RFC 1939 §3)."""
    return b"+OK " + _line(text) + CRLF if text else b"+OK\r\n"


def err(text: str, code: RespCode | None = None) -> bytes:
    """``-ERR [CODE] text`` (RFC 1939 §3, RFC 2449 §8)."""
    if code is None:
        if text.startswith("["):  # RFC 2449 §8: a leading "[" announces a response code
            raise ValueError(f"reply text would read as a response code: {text!r}")
        return b"-ERR " + _line(text) + CRLF
    return b"-ERR [" + code.value.encode("ascii") + b"] " + _line(text) + CRLF


def multiline(status: bytes, lines: Iterable[str]) -> bytes:
    """A +OK status line, the lines dot-stuffed, then the terminating "." (RFC 1939 §3)."""
    parts = [status]
    for text in lines:
        line = _line(text)
        # RFC 1939 §3: a line that begins with "." gets another "." in front.
        parts.append(b"." + line + CRLF if line.startswith(b".") else line + CRLF)
    parts.append(_END)
    return b"".join(parts)


# --- stored messages --------------------------------------------------------------------------


def _stuffed(data: bytes) -> list[bytes]:
    """``data`` byte-stuffed and ended by CRLF, as pieces to join (RFC 1939 §3)."""
    if not data:
        return []
    body = data.replace(b"\r\n.", b"\r\n..")
    pieces = [b".", body] if body.startswith(b".") else [body]
    if not body.endswith(CRLF):
        # The terminator must start a line of its own; a message without a final line end gets
        # one, the only change a client can see and the one every POP3 server makes.
        pieces.append(CRLF)
    return pieces


def message_response(raw: bytes) -> bytes:
    """The whole RETR reply for a stored message: status, stuffed message, "." (RFC 1939 §5)."""
    # RFC 1939 §11: the octet count is the message's size in the maildrop, before stuffing.
    status = b"+OK %d octets\r\n" % len(raw)
    return b"".join([status, *_stuffed(raw), _END])


def header_end(raw: bytes) -> int:
    """Where the body starts: just past the empty line ending the header, or ``len(raw)``."""
    if raw.startswith(CRLF):  # an empty header: the message starts with the separator line
        return 2
    i = raw.find(b"\r\n\r\n")
    return len(raw) if i < 0 else i + 4


def top_response(raw: bytes, body_start: int, n: int) -> bytes:
    """The TOP reply: header, blank line and the first ``n`` body lines (RFC 1939 §7).

    ``body_start`` is ``header_end(raw)``, usually computed once at delivery and kept with the
    message. A body with ``n`` lines or fewer is sent whole.
    """
    if not 0 <= body_start <= len(raw):
        raise ValueError(f"body start {body_start} outside a message of {len(raw)} octets")
    if n < 0:
        raise ValueError(f"negative line count {n}")
    end = _after_lines(raw, body_start, n)
    return b"".join([b"+OK top of message follows\r\n", *_stuffed(raw[:end]), _END])


# TOP nearly always asks for a few lines (mail clients preview with 0 to a few dozen): a loop of
# at most this many finds beats copying the body, and it stays bounded whatever the message size.
_FEW_LINES = 64


def _after_lines(raw: bytes, start: int, n: int) -> int:
    """The offset just past the ``n``-th line from ``start``, or ``len(raw)`` if there are fewer."""
    if n <= _FEW_LINES:
        end = start
        for _ in range(n):
            found = raw.find(CRLF, end)
            if found < 0:
                return len(raw)  # the body ends inside its last line, which TOP sends whole
            end = found + 2
        return end
    if n > raw.count(CRLF, start):
        return len(raw)
    # split with maxsplit=n stops after the n-th CRLF; the last piece is what TOP leaves out.
    return len(raw) - len(raw[start:].split(CRLF, n)[-1])


# --- listings and status lines ----------------------------------------------------------------


def stat_reply(count: int, size: int) -> bytes:
    """``+OK nn mm`` (RFC 1939 §5: nothing else may follow the two numbers on the line)."""
    return b"+OK %d %d\r\n" % (count, size)


def scan_line(msg: int, size: int) -> bytes:
    """The reply to ``LIST msg`` (RFC 1939 §5)."""
    return b"+OK %d %d\r\n" % (msg, size)


def scan_listing(entries: Iterable[tuple[int, int]]) -> bytes:
    """The reply to ``LIST``: one ``msg size`` line per message not marked deleted."""
    listed = list(entries)
    total = sum(size for _, size in listed)
    status = b"+OK %d messages (%d octets)\r\n" % (len(listed), total)
    return b"".join([status, *(b"%d %d\r\n" % entry for entry in listed), _END])


def _unique_id(uid: str) -> bytes:
    # RFC 1939 §7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
    if not 0 < len(uid) <= 70 or not uid.isascii() or not uid.isprintable() or " " in uid:
        raise ValueError(f"not a POP3 unique-id: {uid!r}")
    return uid.encode("ascii")


def uidl_line(msg: int, uid: str) -> bytes:
    """The reply to ``UIDL msg`` (RFC 1939 §7)."""
    return b"+OK %d %s\r\n" % (msg, _unique_id(uid))


def uidl_listing(entries: Iterable[tuple[int, str]]) -> bytes:
    """The reply to ``UIDL``: one ``msg unique-id`` line per message not marked deleted."""
    lines = [b"%d %s\r\n" % (msg, _unique_id(uid)) for msg, uid in entries]
    return b"".join([b"+OK unique-id listing follows\r\n", *lines, _END])


# --- the sentences sessions share -------------------------------------------------------------


def greeting() -> bytes:
    """The first line of every connection (RFC 1939 §4); no APOP timestamp: APOP is not offered."""
    return ok("courriel POP3 server ready")


def signing_off() -> bytes:
    """QUIT in AUTHORIZATION, or an UPDATE that removed everything marked (RFC 1939 §6)."""
    return ok("courriel POP3 server signing off")


def update_failed() -> bytes:
    """QUIT whose UPDATE could not remove the deleted messages (RFC 1939 §6)."""
    return err("some deleted messages were not removed", RespCode.SYS_TEMP)


def no_such_message() -> bytes:
    """A message number past the end of the maildrop snapshot (RFC 1939 §5)."""
    return err("no such message")


def already_deleted(msg: int) -> bytes:
    """A message marked deleted in this session (RFC 1939 §5: it may not be referenced)."""
    return err(f"message {msg} already deleted")


def deleted(msg: int) -> bytes:
    """DELE accepted (RFC 1939 §5)."""
    return ok(f"message {msg} deleted")


def maildrop_status(count: int, size: int) -> bytes:
    """PASS/AUTH success and RSET: the maildrop as the session now sees it (RFC 1939 §5)."""
    return ok(f"maildrop has {count} messages ({size} octets)")


def maildrop_locked() -> bytes:
    """Another session holds the maildrop (RFC 2449 §8.1.1)."""
    return err("maildrop already locked", RespCode.IN_USE)


def login_delay() -> bytes:
    """The user logged in too recently (RFC 2449 §8.1.2)."""
    return err("logged in too recently; try again later", RespCode.LOGIN_DELAY)


def auth_failed() -> bytes:
    """Wrong credentials; one sentence for user and password alike (RFC 3206 §5)."""
    return err("authentication failed", RespCode.AUTH)


def auth_cancelled() -> bytes:
    """The client answered a challenge with "*" (RFC 5034 §4)."""
    return err("authentication cancelled")


def temporary_failure() -> bytes:
    """The store cannot be reached now; nothing changed (RFC 3206 §4)."""
    return err("temporary failure; try again later", RespCode.SYS_TEMP)


def tls_starting() -> bytes:
    """The reply to STLS after which TLS negotiation starts (RFC 2595 §4)."""
    return ok("begin TLS negotiation")


def tls_unavailable() -> bytes:
    """STLS refused by the session, e.g. no certificate can be loaded (RFC 2595 §4)."""
    return err("TLS not available now", RespCode.SYS_TEMP)
