"""IMAP URLs (RFC 5092) naming one message or section, for CATENATE, URLAUTH and BURL.

Theory of operation
-------------------
``parse`` reads the three forms of a URL naming one message (RFC 5092 §3, §7):

* absolute: ``imap://user[;AUTH=...]@host[:port]/INBOX;UIDVALIDITY=385759045/;UID=20``
* from the server's root: ``/INBOX;UIDVALIDITY=385759045/;UID=20``
* relative to the selected mailbox: ``;UID=20``

each followed by ``[/;SECTION=s][/;PARTIAL=o[.l]]`` and, for URLAUTH (RFC 4467 §2, §3),
``[;EXPIRE=date-time];URLAUTH=access[:mechanism:token]``. Parameter names are
case-insensitive; the user, mailbox and section are percent-decoded and read as UTF-8 (RFC
5092 §3: mailbox names in UTF-8, which is how courriel names mailboxes), and the section is
read with the FETCH section grammar (RFC 5092 §6 takes it from FETCH BODY[...]).

The *rump* is the URL up to and including ``;URLAUTH=access`` exactly as written: it is what
a URLAUTH token signs (RFC 4467 §2.3), so it is kept byte for byte, never rebuilt.
``parse_urlauth`` adds what URLAUTH asks of a URL: the absolute form, with a user, and an
access identifier. Search URLs (``?``), URLs of a mailbox or a server, and anything else are
``BadUrl``: CATENATE answers it with ``BADURL``, GENURLAUTH with NO, URLFETCH with NIL.

Parsing is one regular expression without nested repetition over a string of at most
``MAX_URL`` characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote_to_bytes

from courriel.wire.imap.fetch import Section
from courriel.wire.imap.parse_fetch import parse_section
from courriel.wire.imap.strings import astring

MAX_URL = 4096
_URL_RE = re.compile(
    r"(?P<rump>"
    r"(?:(?:imap://(?:(?P<user>[^@/;:?#]+)(?:;AUTH=[^@/]+)?@)?(?P<host>[^/@;?#]+))?"
    r"/(?P<mailbox>[^/;?#][^;?#]*?)(?:;UIDVALIDITY=(?P<uidvalidity>[0-9]{1,10}))?/)?"
    r";UID=(?P<uid>[0-9]{1,10})"
    r"(?:/;SECTION=(?P<section>[^/;?#]+))?"
    r"(?:/;PARTIAL=(?P<offset>[0-9]{1,10})(?:\.(?P<length>[0-9]{1,10}))?)?"
    r"(?:;EXPIRE=(?P<expire>[^;?#]+))?"
    r"(?:;URLAUTH=(?P<access>[^:;?#]+))?)"
    r"(?::(?P<mechanism>[A-Za-z0-9_.-]+):(?P<token>[0-9A-Fa-f]{32,128}))?",
    re.IGNORECASE,
)
_ACCESS_RE = re.compile(r"(anonymous|authuser|(?:user|submit)\+[^:;]+)", re.IGNORECASE)


class BadUrl(ValueError):  # noqa: N818 - reads as "imapurl.BadUrl"
    """Not an IMAP URL naming one message or section; the text says why."""


@dataclass(frozen=True, slots=True)
class ImapUrl:
    uid: int
    mailbox: str | None = None  # None: the selected mailbox (a relative URL)
    uidvalidity: int | None = None
    user: str | None = None
    host: str | None = None  # without the port; None unless absolute
    section: Section | None = None  # None: the whole message
    partial: tuple[int, int | None] | None = None  # (origin, length or None for the rest)
    expire: datetime | None = None
    access: str | None = None  # "anonymous", "authuser", "user+NAME" or "submit+NAME"
    mechanism: str | None = None  # upper-case
    token: str | None = None  # lower-case hex
    rump: str = ""  # up to and including ";URLAUTH=access", as written; "" without it

    @property
    def authorized(self) -> bool:
        return self.mechanism is not None

    @property
    def owner(self) -> str:
        """The owner's address: the user part, or user@host when it has no "@" (courriel's
        login names are addresses, and ``imap://alice@example.org/`` names alice there)."""
        user = self.user or ""
        return user if "@" in user or self.host is None else f"{user}@{self.host}"


def _decode(text: str, what: str) -> str:
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise BadUrl(f"The {what} is not UTF-8") from None


def _access(text: str) -> str:
    access = _decode(text, "access identifier")
    if not _ACCESS_RE.fullmatch(access):
        raise BadUrl(f"Unknown URLAUTH access identifier {access!r}")  # RFC 4467 §3
    kind, plus, name = access.partition("+")
    return kind.lower() + plus + name


def _expire(text: str) -> datetime:
    try:
        expire = datetime.fromisoformat(_decode(text, "EXPIRE").replace("Z", "+00:00"))
    except ValueError:
        raise BadUrl("EXPIRE is not an RFC 3339 date-time") from None
    if expire.tzinfo is None:
        raise BadUrl("EXPIRE needs a time zone")  # RFC 5092 §3.1 (date-time)
    return expire


def parse(text: str) -> ImapUrl:
    """The message or section ``text`` names; ``BadUrl`` for a URL this server does not read."""
    m = _URL_RE.fullmatch(text) if len(text) <= MAX_URL else None
    if m is None:
        raise BadUrl("Not an IMAP URL of a message")
    uid = int(m["uid"])
    if uid == 0:
        raise BadUrl("UID 0 names no message")  # RFC 5092 §9: nz-number
    mailbox = None if m["mailbox"] is None else _decode(m["mailbox"], "mailbox name")
    section = None
    if m["section"] is not None:
        section = parse_section(_decode(m["section"], "section").encode("utf-8"))
        if section is None:
            raise BadUrl("Not a section of a message")
    partial = None
    if m["offset"] is not None:
        partial = (int(m["offset"]), None if m["length"] is None else int(m["length"]))
    host = m["host"]
    if host is not None and host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return ImapUrl(
        uid,
        mailbox,
        None if m["uidvalidity"] is None else int(m["uidvalidity"]),
        None if m["user"] is None else _decode(m["user"], "user name"),
        host,
        section,
        partial,
        None if m["expire"] is None else _expire(m["expire"]),
        None if m["access"] is None else _access(m["access"]),
        None if m["mechanism"] is None else m["mechanism"].upper(),
        None if m["token"] is None else m["token"].lower(),
        m["rump"] if m["access"] is not None else "",
    )


def parse_urlauth(text: str) -> ImapUrl:
    """``parse``, and the URL is a URLAUTH one: absolute, with a user and ``;URLAUTH=``."""
    url = parse(text)
    if url.host is None or url.user is None:
        raise BadUrl("A URLAUTH URL names its server and user")  # RFC 4467 §3
    if url.access is None:
        raise BadUrl("Not an IMAP URL of a message with ;URLAUTH=")
    return url


def genurlauth_response(urls: list[str]) -> bytes:
    """``* GENURLAUTH url ...`` (RFC 4467 §8)."""
    return b"* GENURLAUTH" + b"".join(b" " + astring(u) for u in urls) + b"\r\n"


def _data(data: bytes | None) -> bytes:
    if data is None:
        return b"NIL"
    if b"\0" in data:
        return b"~{%d}\r\n" % len(data) + data  # binary content (RFC 3516 literal8)
    return b"{%d}\r\n" % len(data) + data


def urlfetch_response(url: str, data: bytes | None) -> bytes:
    """``* URLFETCH url data`` with NIL for a URL that gave nothing (RFC 4467 §8)."""
    return b"* URLFETCH " + astring(url) + b" " + _data(data) + b"\r\n"


def urlfetch_metadata_response(url: str, items: Sequence[tuple[str, bytes | None]]) -> bytes:
    """``* URLFETCH url (BODYPARTSTRUCTURE body) (BINARY data)`` (RFC 5524 §3.2, §5
    ``url-metadata``): each item in its own parentheses, in the order given. The value of
    BODYPARTSTRUCTURE is a body's wire form; BINARY and BODY data go as a literal, a literal8
    when it holds a NUL octet, and None as NIL (BINARY that could not be decoded)."""
    out = [b"* URLFETCH ", astring(url)]
    for name, value in items:
        shown = value if name == "BODYPARTSTRUCTURE" and value is not None else _data(value)
        out.append(b" (" + name.encode("ascii") + b" " + shown + b")")
    return b"".join(out) + b"\r\n"
