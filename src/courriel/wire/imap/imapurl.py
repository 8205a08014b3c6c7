"""IMAP URLs (RFC 5092) of one message or part, as URLAUTH (RFC 4467) and BURL (RFC 4468) use.

Theory of operation
-------------------
Only the form that names a message is read here::

    imap://user[;AUTH=...]@host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s]
        [/;PARTIAL=o[.l]][;EXPIRE=date-time];URLAUTH=access[:mechanism:token]

Parameter names are case-insensitive; the user, mailbox and section are percent-decoded (RFC
5092 §3: the mailbox name in UTF-8). The *rump* is the URL up to and including
``;URLAUTH=access`` exactly as written: it is what a URLAUTH token signs (RFC 4467 §2.3), so
it is kept byte for byte, never rebuilt. Anything else is ``BadUrl``. Parsing is one regular
expression without nested repetition over a string bounded by the command's line limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote

from courriel.wire.imap.strings import astring

_URL_RE = re.compile(
    r"(?P<rump>imap://(?P<user>[^@/;:]+)(?:;AUTH=[^@/]+)?@(?P<host>[^/]+)"
    r"/(?P<mailbox>[^;/][^;]*?)(?:;UIDVALIDITY=(?P<uidvalidity>[0-9]{1,10}))?"
    r"/;UID=(?P<uid>[0-9]{1,10})"
    r"(?:/;SECTION=(?P<section>[^/;]+))?"
    r"(?:/;PARTIAL=(?P<offset>[0-9]{1,10})(?:\.(?P<length>[0-9]{1,10}))?)?"
    r"(?:;EXPIRE=(?P<expire>[^;]+))?"
    r"(?:;URLAUTH=(?P<access>[^:;]+)))"
    r"(?::(?P<mechanism>[A-Za-z0-9_.-]+):(?P<token>[0-9A-Fa-f]{32,128}))?",
    re.IGNORECASE,
)
_ACCESS_RE = re.compile(r"(anonymous|authuser|(?:user|submit)\+[^:;]+)", re.IGNORECASE)


class BadUrl(ValueError):  # noqa: N818 - reads as "imapurl.BadUrl"
    """Not an IMAP URL of a message with a URLAUTH access identifier."""


@dataclass(frozen=True, slots=True)
class ImapUrl:
    rump: str  # up to and including ";URLAUTH=access", as written
    user: str
    host: str  # without the port
    mailbox: str
    uid: int
    access: str  # "anonymous", "authuser", "user+NAME" or "submit+NAME"; name decoded
    uidvalidity: int | None = None
    section: str | None = None
    partial: tuple[int, int | None] | None = None
    expire: datetime | None = None
    mechanism: str | None = None  # upper-case
    token: str | None = None  # lower-case hex

    @property
    def authorized(self) -> bool:
        return self.mechanism is not None

    @property
    def owner(self) -> str:
        """The owner's address: the user part, or user@host when it has no "@" (courriel's
        login names are addresses, and ``imap://alice@example.org/`` names alice there)."""
        return self.user if "@" in self.user else f"{self.user}@{self.host}"


def parse(text: str) -> ImapUrl:
    m = _URL_RE.fullmatch(text)
    if m is None:
        raise BadUrl("Not an IMAP URL of a message with ;URLAUTH=")
    access = unquote(m["access"])
    if not _ACCESS_RE.fullmatch(access):
        raise BadUrl(f"Unknown URLAUTH access identifier {access!r}")  # RFC 4467 §3
    kind, plus, name = access.partition("+")
    access = kind.lower() + plus + name
    expire = None
    if m["expire"]:
        try:
            expire = datetime.fromisoformat(unquote(m["expire"]).replace("Z", "+00:00"))
        except ValueError:
            raise BadUrl("EXPIRE is not an RFC 3339 date-time") from None
        if expire.tzinfo is None:
            raise BadUrl("EXPIRE needs a time zone")  # RFC 5092 §3.1 (date-time)
    partial = None
    if m["offset"] is not None:
        partial = (int(m["offset"]), int(m["length"]) if m["length"] else None)
    return ImapUrl(
        rump=m["rump"],
        user=unquote(m["user"]),
        host=m["host"].rsplit(":", 1)[0] if m["host"].count(":") == 1 else m["host"],
        mailbox=unquote(m["mailbox"]),
        uid=int(m["uid"]),
        access=access,
        uidvalidity=int(m["uidvalidity"]) if m["uidvalidity"] else None,
        section=unquote(m["section"]) if m["section"] else None,
        partial=partial,
        expire=expire,
        mechanism=m["mechanism"].upper() if m["mechanism"] else None,
        token=m["token"].lower() if m["token"] else None,
    )


def genurlauth_response(urls: list[str]) -> bytes:
    """``* GENURLAUTH url ...`` (RFC 4467 §8)."""
    return b"* GENURLAUTH" + b"".join(b" " + astring(u) for u in urls) + b"\r\n"


def urlfetch_response(url: str, data: bytes | None) -> bytes:
    """``* URLFETCH url data`` with NIL for a URL that gave nothing (RFC 4467 §8)."""
    if data is None:
        body = b"NIL"
    elif b"\0" in data:
        body = b"~{%d}\r\n" % len(data) + data  # binary content (RFC 3516 literal8)
    else:
        body = b"{%d}\r\n" % len(data) + data
    return b"* URLFETCH " + astring(url) + b" " + body + b"\r\n"
