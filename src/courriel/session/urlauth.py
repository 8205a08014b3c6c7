"""URLAUTH (RFC 4467): signing IMAP URLs of messages, and fetching by such a URL.

Theory of operation
-------------------
A URLAUTH URL names one message (or part) of a user's mailbox and says who may fetch it: anyone
("anonymous"), any user of this server ("authuser"), one user ("user+name"), or the submission
server acting for one user ("submit+name", which is how BURL, RFC 4468, uses it). GENURLAUTH
signs the URL's *rump* (everything up to ";URLAUTH=access") with the mailbox's access key,
an HMAC-SHA256 of the rump in hex; that is courriel's INTERNAL mechanism (RFC 4467 §7 leaves its
algorithm to the server and asks for at least 128 bits). Fetching checks, without telling the
caller which check failed: the token against the current key (RESETKEY makes a new one and
voids every older URL), EXPIRE, the access identifier against who asks, UIDVALIDITY, and that
the message is still there. Only the URL's owner may sign, and only their own mailboxes.

Both the IMAP session (GENURLAUTH, RESETKEY, URLFETCH) and the SMTP submission session (BURL)
call this module: they run in one process group on one store, so BURL needs no IMAP connection.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from courriel.mail.message import MessageMeta, section_bytes
from courriel.store.base import NotFound, Store, User
from courriel.wire.imap import imapurl
from courriel.wire.imap.fetch import Section, SectionText

MECHANISM = "INTERNAL"
KEY_BYTES = 32
_SECTION_RE = re.compile(
    r"(?:([1-9][0-9]{0,8}(?:\.[1-9][0-9]{0,8}){0,31})(?:\.(MIME|HEADER|TEXT))?|(HEADER|TEXT))", re.I
)


class UrlAuthError(Exception):
    """GENURLAUTH cannot sign this URL; the text says why."""


def token(key: bytes, rump: str) -> str:
    return hmac.new(key, rump.encode("utf-8"), hashlib.sha256).hexdigest()


async def generate(store: Store, user: User, text: str, mechanism: str) -> str:
    """The URL with ``:internal:<token>`` appended (RFC 4467 §6, GENURLAUTH)."""
    try:
        url = imapurl.parse(text)
    except imapurl.BadUrl as e:
        raise UrlAuthError(str(e)) from None
    if url.authorized:
        raise UrlAuthError("The URL already carries a mechanism and token")
    if mechanism.upper() != MECHANISM:
        raise UrlAuthError(f"Unknown URLAUTH mechanism {mechanism}")  # RFC 4467 §7
    if url.owner.lower() != user.address.lower():
        raise UrlAuthError("Only the owner of a mailbox may sign its URLs")
    box = await store.get_mailbox(user.id, url.mailbox)
    if box is None:
        raise UrlAuthError("No such mailbox")
    key = await store.urlauth_key(box.id) or await store.urlauth_key(
        box.id, secrets.token_bytes(KEY_BYTES)
    )
    assert key is not None
    return f"{url.rump}:{MECHANISM.lower()}:{token(key, url.rump)}"


def _allowed(access: str, user: str | None, *, submit: bool) -> bool:
    kind, _, name = access.partition("+")
    if kind == "anonymous":
        return True
    if user is None:
        return False
    if kind == "authuser":
        return True
    same = name.lower() == user.lower()
    return same and (kind == "submit") == submit  # RFC 4467 §3: user+ IMAP, submit+ BURL


async def fetch(
    store: Store, text: str, *, user: str | None, submit: bool = False, now: datetime
) -> bytes | None:
    """The bytes the URL names, or None when it is not valid for ``user`` (an address, or
    None for an anonymous caller); ``submit`` when the submission server asks for ``user``."""
    try:
        url = imapurl.parse(text)
    except imapurl.BadUrl:
        return None
    if url.mechanism != MECHANISM or url.token is None:
        return None
    if url.expire is not None and url.expire <= now:
        return None  # RFC 4467 §2.2: expired
    if not _allowed(url.access, user, submit=submit):
        return None
    owner = await store.get_user(url.owner)
    box = await store.get_mailbox(owner.id, url.mailbox) if owner is not None else None
    if box is None or (url.uidvalidity is not None and url.uidvalidity != box.uidvalidity):
        return None
    key = await store.urlauth_key(box.id)
    if key is None or not hmac.compare_digest(token(key, url.rump), url.token):
        return None
    try:
        raw = await store.read_message(box.id, url.uid)
    except NotFound:
        return None
    data: bytes | None = raw
    if url.section is not None:
        data = await _section(store, box.id, url.uid, raw, url.section)
    if data is not None and url.partial is not None:
        offset, length = url.partial
        data = data[offset : None if length is None else offset + length]
    return data


async def _section(store: Store, mailbox_id: int, uid: int, raw: bytes, text: str) -> bytes | None:
    m = _SECTION_RE.fullmatch(text)
    if m is None:
        return None
    part = tuple(int(p) for p in m[1].split(".")) if m[1] else ()
    what = (m[2] or m[3] or "").upper()
    spec = Section(part, SectionText(what) if what else None)
    stored = (await store.get_meta(mailbox_id, [uid])).get(uid)
    if not stored:
        return None
    return section_bytes(raw, MessageMeta.from_bytes(stored), spec)
