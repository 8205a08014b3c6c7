"""What local delivery does to a message: trace headers, the submission fix-ups; the parse.

Theory of operation
-------------------
The SMTP session hands over a message exactly as the client sent it (dot-unstuffed, CRLF line
ends; the core refuses bare LF and CR, so no other line end reaches here). Delivery then:

1. on submission only, adds ``Date`` and ``Message-ID`` when the client left them out
   (``submission_fixups``, RFC 6409 §8.2 and §8.3); nothing else in the client's header is
   touched, so the stored message is the client's bytes with header fields added on top;
2. prepends the trace fields (``trace_headers``): ``Return-Path`` on the inbound MX (RFC 5321
   §4.4: the final delivery adds it) and a ``Received`` field naming the client, this server,
   the protocol (RFC 3848 ESMTP / ESMTPS / ESMTPA / ESMTPSA), the TLS version and cipher as a
   comment, ``for <recipient>`` when there is exactly one (more would disclose Bcc recipients
   to each other), and the date;
3. ``courriel.queue.local.deliver_local`` then appends it to every local recipient's INBOX in
   one store call. That step talks to the store, so it lives with the rest of delivery in
   ``courriel.queue``.

The message is stored unparsed; the store parses it once, on first need (``courriel.store.base``,
"Parsed on first need"), with ``parse_meta``: a message of ``PARSE_INLINE_BYTES`` or more in a
thread, since a large one, or one of thousands of parts, takes the event loop for 100 ms and
more. Everything here is pure but that (asyncio only to parse a large message in a thread).
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from courriel.mail import envelope, mime
from courriel.mail.message import parse

PARSE_INLINE_BYTES = 64 * 1024  # smaller messages parse in well under a millisecond

# One header field line (name and colon) at the start of a line; continuation lines start with
# white space and are skipped by the name test.
_FIELD_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)
# What may stand in a comment as is: not parentheses, backslash, controls or white space.
_UNSAFE_IN_COMMENT = re.compile(r"[^\x21-\x27\x2a-\x5b\x5d-\x7e\x80-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class TraceInfo:
    """What the Received field says about the hop that brought the message."""

    helo: str  # the EHLO/HELO argument as the client sent it
    client_ip: str
    hostname: str  # this server
    esmtp: bool  # EHLO (True) or HELO
    tls_version: str | None = None  # "TLSv1.3" when the session ran under TLS
    tls_cipher: str | None = None
    tls_bits: int = 0
    authenticated: bool = False
    queue_id: str = ""


def protocol_name(info: TraceInfo) -> str:
    """The ``with`` keyword of RFC 3848: SMTP, ESMTP, ESMTPS, ESMTPA or ESMTPSA."""
    if not info.esmtp:
        return "SMTP"
    suffix = ("S" if info.tls_version else "") + ("A" if info.authenticated else "")
    return "ESMTP" + suffix  # RFC 3848 §1


def new_queue_id() -> str:
    """A short random id naming one accepted message in Received fields and logs."""
    return secrets.token_hex(6).upper()


@functools.lru_cache(maxsize=256)  # a session's HELO and cipher recur in every Received field
def _clean(text: str) -> str:
    # A client-chosen string inside a comment must not close it, start a new line or a
    # nested comment, which would let it forge trace information.
    return _UNSAFE_IN_COMMENT.sub("?", text)[:200]


_last_date: tuple[datetime, str] | None = None


def _date(now: datetime) -> str:
    """``format_datetime(now)``, kept for the rest of its second: messages arriving in the
    same second share the string instead of formatting it again."""
    global _last_date  # one entry, replaced whole: safe across threads
    whole = now.replace(microsecond=0)
    last = _last_date
    if last is not None and last[0] == whole and last[0].tzinfo is whole.tzinfo:
        return last[1]
    text = format_datetime(whole)
    _last_date = (whole, text)
    return text


def received_field(info: TraceInfo, recipients: Sequence[str], now: datetime) -> bytes:
    """The ``Received`` field for this hop (RFC 5321 §4.4, RFC 5322 §3.6.7), folded."""
    helo = _clean(info.helo) or "unknown"
    lines = [f"Received: from {helo} ([{info.client_ip}])"]
    with_part = f"\tby {info.hostname} (courriel) with {protocol_name(info)}"
    if info.queue_id:
        with_part += f" id {info.queue_id}"
    lines.append(with_part)
    if info.tls_version:
        cipher = f" with cipher {_clean(info.tls_cipher or 'unknown')}" if info.tls_cipher else ""
        bits = f" ({info.tls_bits} bits)" if info.tls_bits else ""
        lines.append(f"\t(using {info.tls_version}{cipher}{bits})")
    date = _date(now)
    if len(recipients) == 1:
        # RFC 5321 §4.4: "for" names one recipient; with several it would reveal Bcc ones.
        lines.append(f"\tfor <{recipients[0]}>; {date}")
    else:
        lines[-1] += ";"
        lines.append(f"\t{date}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def return_path_field(sender: str) -> bytes:
    """``Return-Path`` as the final delivery records it (RFC 5321 §4.4, RFC 5322 §3.6.7)."""
    return f"Return-Path: <{sender}>\r\n".encode()


def trace_headers(
    info: TraceInfo, recipients: Sequence[str], now: datetime, *, return_path: str | None
) -> bytes:
    """Return-Path (when given: MX delivery) followed by Received."""
    prefix = return_path_field(return_path) if return_path is not None else b""
    return prefix + received_field(info, recipients, now)


def header_end(raw: bytes) -> int:
    """Where the header block ends (the offset of the body, after the empty line)."""
    return mime.body_start(raw, 0, len(raw))


def header_names(raw: bytes) -> set[bytes]:
    """The lower-case names of the fields in the top-level header."""
    end = header_end(raw)
    return {m.group(1).lower() for m in _FIELD_NAME.finditer(raw, 0, end)}


def message_id(hostname: str) -> str:
    """A new globally unique Message-ID (RFC 5322 §3.6.4) under our host name."""
    return f"<{secrets.token_hex(16)}@{hostname}>"


def submission_fixups(raw: bytes, hostname: str, now: datetime) -> bytes:
    """Adds Date and Message-ID when missing (RFC 6409 §8.2, §8.3); otherwise ``raw`` as is."""
    names = header_names(raw)
    added = b""
    if b"date" not in names:
        added += f"Date: {format_datetime(now)}\r\n".encode()  # RFC 6409 §8.3
    if b"message-id" not in names:
        added += f"Message-ID: {message_id(hostname)}\r\n".encode()  # RFC 6409 §8.3
    if not added:
        return raw
    if raw.startswith(b"\r\n") or not raw:
        return added + (raw or b"\r\n")  # no header at all: the fields become it
    return added + raw


def from_addresses(raw: bytes) -> list[str]:
    """The addresses of the first From field, as ``local@domain`` (lower-case domain).

    A missing From yields ``[]``. Group syntax and address-less entries are left out; an
    entry that cannot be read at all yields ``""`` so the caller refuses it.
    """
    end = header_end(raw)
    found = mime.first_fields(raw, 0, end, frozenset({b"from"}))
    value = found.get(b"from")
    if value is None:
        return []
    out: list[str] = []
    for addr in envelope.parse_addresses(value):
        if addr.mailbox is None or addr.host is None:
            if addr.mailbox is not None and addr.host is None and addr.name is None:
                continue  # start of a group
            if addr.mailbox is None and addr.host is None and addr.name is None:
                continue  # end of a group
            out.append("")
            continue
        # parse_addresses reads bytes as Latin-1; RFC 6532 headers are UTF-8.
        text = f"{addr.mailbox}@{addr.host}".encode("latin-1", "replace")
        out.append(text.decode("utf-8", "replace"))
    return out


async def parse_meta(raw: bytes) -> bytes:
    """The stored parse of ``raw``; a large message is parsed off the event loop."""
    if len(raw) < PARSE_INLINE_BYTES:
        return parse(raw).to_bytes()
    return await asyncio.to_thread(lambda: parse(raw).to_bytes())
