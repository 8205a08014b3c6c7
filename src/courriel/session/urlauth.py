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

What a URL names is read once (``Named``) and given out as it is stored (``body``: URLFETCH,
BURL, and CATENATE, which reads its own URLs the same way), decoded (``binary``, RFC 5524
BINARY, with FETCH BINARY's decoding) or described (``bodypartstructure``, with the
BODYSTRUCTURE encoder that FETCH uses).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from courriel.mail import mime
from courriel.mail.message import (
    MessageMeta,
    MetaFormatError,
    decoded_part,
    find_part,
    section_bytes,
)
from courriel.mail.structure import PartKind, entity_bodystructure
from courriel.store.base import NotFound, Store, User
from courriel.wire.imap import imapurl
from courriel.wire.imap.fetch import SectionText

MECHANISM = "INTERNAL"
KEY_BYTES = 32
_CTE = frozenset({b"content-transfer-encoding"})


class UrlAuthError(Exception):
    """GENURLAUTH cannot sign this URL; the text says why."""


def token(key: bytes, rump: str) -> str:
    return hmac.new(key, rump.encode("utf-8"), hashlib.sha256).hexdigest()


async def generate(store: Store, user: User, text: str, mechanism: str) -> str:
    """The URL with ``:internal:<token>`` appended (RFC 4467 §6, GENURLAUTH)."""
    try:
        url = imapurl.parse_urlauth(text)
    except imapurl.BadUrl as e:
        raise UrlAuthError(str(e)) from None
    if url.authorized:
        raise UrlAuthError("The URL already carries a mechanism and token")
    if mechanism.upper() != MECHANISM:
        raise UrlAuthError(f"Unknown URLAUTH mechanism {mechanism}")  # RFC 4467 §7
    if url.owner.lower() != user.address.lower():
        raise UrlAuthError("Only the owner of a mailbox may sign its URLs")
    assert url.mailbox is not None  # parse_urlauth: the absolute form names its mailbox
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


@dataclass(frozen=True, slots=True)
class Named:
    """The message a URL names, read from the store, with its stored parse when the URL
    names a section (or when asked for it); the URL's section and PARTIAL apply to it."""

    url: imapurl.ImapUrl
    raw: bytes
    meta: MessageMeta | None


async def read_named(
    store: Store, mailbox_id: int, url: imapurl.ImapUrl, *, need_meta: bool = False
) -> Named | None:
    """The message ``url`` names in the mailbox, or None when it is gone (or its stored
    parse, needed for a section, cannot be read)."""
    try:
        raw = await store.read_message(mailbox_id, url.uid)
    except NotFound:
        return None
    meta = None
    if need_meta or url.section is not None:
        stored = (await store.get_meta(mailbox_id, [url.uid])).get(url.uid)
        try:
            meta = MessageMeta.from_bytes(stored) if stored else None
        except MetaFormatError:
            meta = None
        if meta is None:
            return None
    return Named(url, raw, meta)


def _window(named: Named, data: bytes) -> bytes:
    if named.url.partial is None:
        return data
    origin, length = named.url.partial
    return data[origin:] if length is None else data[origin : origin + length]


def body(named: Named) -> bytes | None:
    """What the URL names as stored, as FETCH BODY[section] has it, cut to the URL's
    PARTIAL; None when the message has no such section."""
    data: bytes | None = named.raw
    if named.url.section is not None:
        assert named.meta is not None  # read_named reads it for a section
        data = section_bytes(named.raw, named.meta, named.url.section)
    return None if data is None else _window(named, data)


def _single_body(meta: MessageMeta, path: tuple[int, ...]) -> bool:
    """Whether the message at ``path`` (the message itself, or the one a message/rfc822
    part holds) has a body that is not multipart: its TEXT is then its part 1."""
    node = find_part(meta, path)
    if node is not None and path:
        node = node.children[0] if node.kind is PartKind.MESSAGE else None
    return node is not None and node.kind is PartKind.LEAF


def binary(named: Named) -> bytes | None:
    """What the URL names without its Content-Transfer-Encoding (RFC 5524 §3.1 BINARY), as
    FETCH BINARY decodes a part (RFC 3516), then cut to the URL's PARTIAL. Header sections
    carry no transfer encoding and come as they are; TEXT of a message is decoded as its
    body. None when the section does not exist; ``UnknownTransferEncoding`` when the part's
    encoding is not one courriel decodes."""
    section = named.url.section
    if section is None:
        return _window(named, named.raw)  # RFC 3516 §4.1: BINARY[] is the message as it is
    meta = named.meta
    assert meta is not None
    path = section.part
    data: bytes | None
    if section.text is None:
        data = decoded_part(named.raw, meta, path)
    elif section.text is SectionText.TEXT and _single_body(meta, path):
        data = decoded_part(named.raw, meta, (*path, 1))  # the message's one body part
    else:
        data = section_bytes(named.raw, meta, section)
    return None if data is None else _window(named, data)


def bodypartstructure(named: Named, *, decoded: bytes | None = None) -> bytes | None:
    """The BODYPARTSTRUCTURE (RFC 5259) of the part the URL names, or None when it names no
    part (a missing one, or a HEADER, TEXT or MIME section). With ``decoded``, the BINARY
    data sent with it, the structure describes that data as RFC 5524 §3.2 asks: an identity
    encoding (7bit, 8bit or binary, by what the data holds), and the decoded size and lines."""
    section = named.url.section
    if section is not None and section.text is not None:
        return None
    path = () if section is None else section.part
    meta = named.meta
    assert meta is not None
    node = find_part(meta, path)
    if node is None:
        return None
    raw = named.raw
    if not path:
        start, end = 0, len(raw)
    else:
        start, end = node.header_start, node.body_end
    digest = node.media_type == "message" and node.media_subtype == "rfc822"
    changed = decoded is not None and decoded != raw[node.body_start : end]
    if path and node.kind is PartKind.LEAF and changed:  # BINARY[] is the message unchanged
        # the part as sent: the same header but for an identity encoding, the decoded body
        assert decoded is not None
        header = mime.field_lines(raw, start, node.body_start, _CTE, exclude=True)
        # labelled with the narrowest identity encoding the decoded data fits (RFC 5524 §3.2)
        cte = mime.data_domain(decoded).encode()
        raw = header[:-2] + b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + decoded
        start, end = 0, len(raw)
    return entity_bodystructure(raw, start, end, digest=digest)


async def resolve(
    store: Store,
    text: str,
    *,
    user: str | None,
    submit: bool = False,
    now: datetime,
    need_meta: bool = False,
) -> Named | None:
    """The message a URLAUTH URL names, or None when the URL is not valid for ``user`` (an
    address, or None for an anonymous caller); ``submit`` when the submission server asks
    for ``user``; ``need_meta`` reads the stored parse even for a whole message. The caller
    never learns which check failed (RFC 4467 §6)."""
    try:
        url = imapurl.parse_urlauth(text)
    except imapurl.BadUrl:
        return None
    if url.mechanism != MECHANISM or url.token is None:
        return None
    if url.expire is not None and url.expire <= now:
        return None  # RFC 4467 §2.2: expired
    assert url.access is not None and url.mailbox is not None  # parse_urlauth
    if not _allowed(url.access, user, submit=submit):
        return None
    owner = await store.get_user(url.owner)
    box = await store.get_mailbox(owner.id, url.mailbox) if owner is not None else None
    if box is None or (url.uidvalidity is not None and url.uidvalidity != box.uidvalidity):
        return None
    key = await store.urlauth_key(box.id)
    if key is None or not hmac.compare_digest(token(key, url.rump), url.token):
        return None
    return await read_named(store, box.id, url, need_meta=need_meta)


async def fetch(
    store: Store, text: str, *, user: str | None, submit: bool = False, now: datetime
) -> bytes | None:
    """The bytes the URL names (URLFETCH, BURL), or None when it gives nothing."""
    named = await resolve(store, text, user=user, submit=submit, now=now)
    return None if named is None else body(named)
