"""CATENATE (RFC 4469): an APPENDed message joined from text and parts of stored messages.

Theory of operation
-------------------
Each part of ``APPEND ... CATENATE (TEXT {n} URL "/INBOX;UIDVALIDITY=v/;UID=u/;SECTION=1")``
is text sent with the command or an IMAP URL (``wire/imap/imapurl.py``) naming a message or a
section of one. A URL is read only in the account of the session's user: a user in the URL
must be that user, the mailbox one of theirs (the selected one for a relative URL), the
UIDVALIDITY, when given, the mailbox's. The section is cut out of the stored message with
its stored parse, as FETCH BODY[section] would (RFC 4469 §5: "the same as FETCH"), then the
``;PARTIAL=`` window, by the code URLFETCH reads with (``session.urlauth``). Whatever cannot
be read is ``NO [BADURL url]`` (§6); once the message being built passes APPENDLIMIT it is
``NO [TOOBIG]`` (§5) and nothing more is read.
"""

from __future__ import annotations

from collections.abc import Sequence

from courriel.session import urlauth
from courriel.session.imap.state import Authenticated
from courriel.wire.imap import imapurl
from courriel.wire.imap import responses as r


class CatenateRefused(Exception):  # noqa: N818 - reads as what happened
    """A part could not be joined; ``reply`` is the tagged NO without its tag."""

    def __init__(self, text: str, code: bytes) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def _bad(url: str, why: str) -> CatenateRefused:
    shown = url.replace("]", "%5D")  # RFC 4469 §6: url-resp-text holds no "]"
    return CatenateRefused(f"Cannot use the URL: {why}", b"BADURL " + shown.encode("utf-8"))


async def _resolve(state: Authenticated, text: str) -> bytes:
    try:
        url = imapurl.parse(text)
    except imapurl.BadUrl:
        url = None
    if url is None or url.access is not None:  # URLAUTH URLs are for URLFETCH and BURL
        raise _bad(text, "not an IMAP URL of a message this server reads")
    user = state.user
    if url.user is not None and url.user.lower() != user.address.lower():
        raise _bad(text, "another user's message")
    if url.mailbox is None:
        if state.view is None:
            raise _bad(text, "a relative URL needs a selected mailbox")  # RFC 4469 §5
        box = state.view.mailbox
    else:
        found = await state.store.get_mailbox(state.user_id, url.mailbox)
        if found is None:
            raise _bad(text, "no such mailbox")
        box = found
    if url.uidvalidity is not None and url.uidvalidity != box.uidvalidity:
        raise _bad(text, "UIDVALIDITY differs")
    named = await urlauth.read_named(state.store, box.id, url)
    if named is None:
        raise _bad(text, "no such message")
    data = urlauth.body(named)
    if data is None:
        raise _bad(text, "no such section")
    return data


async def assemble(state: Authenticated, parts: Sequence[bytes | str], limit: int) -> bytes:
    """The message the parts make; ``CatenateRefused`` for a bad URL or past ``limit``."""
    pieces: list[bytes] = []
    size = 0
    for part in parts:
        piece = part if isinstance(part, bytes) else await _resolve(state, part)
        size += len(piece)
        if size > limit:
            raise CatenateRefused("Message too big", r.TOOBIG)  # RFC 4469 §5, RFC 7889
        pieces.append(piece)
    return b"".join(pieces)
