"""IMAP URLs naming one message or section (RFC 5092), as CATENATE takes them (RFC 4469 §5).

Theory of operation
-------------------
``parse_imap_url`` reads the three forms a client may send to the server it is talking to:

* absolute: ``imap://user@host/INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.2``
* from the server's root: ``/INBOX;UIDVALIDITY=385759045/;UID=20``
* relative to the selected mailbox: ``;UID=20/;SECTION=TEXT``

with an optional ``/;PARTIAL=origin[.length]`` (RFC 5092 §3.2). Percent-encoded octets are
decoded and the mailbox name read as UTF-8, which is how courriel names mailboxes. The host
and port of an absolute URL are not compared: the session checks the user, the mailbox and
the UIDVALIDITY against its own account. Search URLs (``?``), URLAUTH (RFC 4467: see
``imapurl``, which reads the authorized form URLFETCH and BURL take) and anything else give
None, which CATENATE answers with ``BADURL``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from courriel.wire.imap.fetch import Section
from courriel.wire.imap.parse_fetch import parse_section

_ABSOLUTE = re.compile(r"imap://(?:(?P<user>[^@/;]*)(?:;[^@/]*)?@)?[^/@]+(?P<path>/.*)", re.I)
_TAIL = (
    r"(?:/;SECTION=(?P<section>[^;?#]+?))?"
    r"(?:/;PARTIAL=(?P<origin>\d{1,10})(?:\.(?P<length>\d{1,10}))?)?"
)
_PATH = re.compile(
    r"/(?P<mailbox>[^;?#]+?)(?:;UIDVALIDITY=(?P<uidvalidity>\d{1,10}))?/;UID=(?P<uid>\d{1,10})"
    + _TAIL
    + r"\Z",
    re.I,
)
_RELATIVE = re.compile(r";UID=(?P<uid>\d{1,10})" + _TAIL + r"\Z", re.I)
MAX_URL = 4096


@dataclass(frozen=True, slots=True)
class ImapUrl:
    uid: int
    mailbox: str | None = None  # None: the selected mailbox
    uidvalidity: int | None = None
    user: str | None = None
    section: Section | None = None  # None: the whole message
    partial: tuple[int, int | None] | None = None  # (origin, length or None for the rest)


def _decode(text: str) -> str | None:
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return None


def parse_imap_url(url: str) -> ImapUrl | None:
    """The message or section ``url`` names; None for a URL this server does not read."""
    if len(url) > MAX_URL:
        return None
    user: str | None = None
    absolute = _ABSOLUTE.fullmatch(url)
    if absolute is not None:
        if absolute.group("user") is not None:
            user = _decode(absolute.group("user"))
            if user is None:
                return None
        url = absolute.group("path")
    m = _PATH.fullmatch(url) or (None if absolute else _RELATIVE.fullmatch(url))
    if m is None:
        return None
    groups = m.groupdict()
    mailbox = None
    if groups.get("mailbox") is not None:
        mailbox = _decode(groups["mailbox"])
        if not mailbox:
            return None
    section = None
    if m.group("section") is not None:
        spec = _decode(m.group("section"))
        section = None if spec is None else parse_section(spec.encode("utf-8"))
        if section is None:
            return None
    partial = None
    if m.group("origin") is not None:
        length = m.group("length")
        partial = (int(m.group("origin")), None if length is None else int(length))
    uid = int(m.group("uid"))
    validity = groups.get("uidvalidity")
    if uid == 0:
        return None
    return ImapUrl(
        uid, mailbox, None if validity is None else int(validity), user, section, partial
    )
