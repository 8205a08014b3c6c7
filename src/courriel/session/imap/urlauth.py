"""GENURLAUTH, RESETKEY and URLFETCH (RFC 4467) for the IMAP session; see ``session.urlauth``.

Theory of operation
-------------------
GENURLAUTH signs every URL of the command or none (the first it cannot sign gets the NO);
RESETKEY forgets the access key of one mailbox or of all the user's mailboxes, voiding every
URL signed before; URLFETCH answers each URL with its data or NIL, never saying why a URL gave
nothing (RFC 4467 §6: a client must not learn whether a message exists from a failed fetch).

A URL sent with RFC 5524 parameters (URLAUTH=BINARY) is answered with one parenthesized item
each: ``(BODYPARTSTRUCTURE body)`` first, then ``(BINARY data)`` or ``(BODY data)``. BINARY
decodes as FETCH BINARY does; a part whose encoding courriel cannot decode gives
``(BINARY NIL)`` beside its BODYPARTSTRUCTURE as stored (§4), and BODYPARTSTRUCTURE sent with
BINARY describes the decoded data: an identity encoding, the decoded size (§3.2). A URL that
names no part (a missing one, or a HEADER or TEXT section asked for its BODYPARTSTRUCTURE) is
NIL, as in RFC 5524 §4's last example.
"""

from __future__ import annotations

from datetime import UTC, datetime

from courriel.mail.message import UnknownTransferEncoding
from courriel.session import urlauth
from courriel.session.imap.state import Authenticated
from courriel.wire.imap import commands as c
from courriel.wire.imap import imapurl
from courriel.wire.imap import responses as r


async def command(state: Authenticated, cmd: c.UrlAuthCommand) -> bytes:
    user = state.user
    match cmd:
        case c.GenUrlAuth():
            urls = []
            for url, mechanism in cmd.items:
                try:
                    urls.append(await urlauth.generate(state.store, user, url, mechanism))
                except urlauth.UrlAuthError as e:
                    return r.no(cmd.tag, str(e))  # RFC 4467 §6: NO, nothing generated
            return imapurl.genurlauth_response(urls) + r.ok(cmd.tag, "GENURLAUTH completed")
        case c.ResetKey():
            unknown = [m for m in cmd.mechanisms if m != urlauth.MECHANISM]
            if unknown:
                return r.no(cmd.tag, f"Unknown URLAUTH mechanism {unknown[0]}")
            mailbox_id = None
            if cmd.mailbox is not None:
                box = await state.store.get_mailbox(user.id, cmd.mailbox)
                if box is None:
                    return r.no(cmd.tag, "No such mailbox", r.NONEXISTENT)
                mailbox_id = box.id
            await state.store.reset_urlauth_keys(user.id, mailbox_id)
            return r.ok(cmd.tag, "RESETKEY completed")
        case c.UrlFetch():
            out = []
            now = datetime.now(UTC)
            for item in cmd.items:
                named = await urlauth.resolve(
                    state.store,
                    item.url,
                    user=user.address,
                    now=now,
                    need_meta="BODYPARTSTRUCTURE" in item.params,
                )
                out.append(_urlfetch_one(item, named))
            return b"".join(out) + r.ok(cmd.tag, "URLFETCH completed")


def _urlfetch_one(item: c.UrlFetchItem, named: urlauth.Named | None) -> bytes:
    """One URL's ``* URLFETCH``: its data, or the items RFC 5524 §3.2 asks for; NIL for a
    URL that names nothing (§3.1: "precisely as specified in [URLAUTH]")."""
    if named is None:
        return imapurl.urlfetch_response(item.url, None)
    if not item.params:
        return imapurl.urlfetch_response(item.url, urlauth.body(named))
    items: list[tuple[str, bytes | None]] = []
    decoded: bytes | None = None
    if "BINARY" in item.params:
        try:
            decoded = urlauth.binary(named)
        except UnknownTransferEncoding:
            decoded = None  # RFC 5524 §3.2: BINARY NIL, the rest as usual
        else:
            if decoded is None:
                return imapurl.urlfetch_response(item.url, None)  # no such section
        items.append(("BINARY", decoded))
    if "BODY" in item.params:
        data = urlauth.body(named)
        if data is None:
            return imapurl.urlfetch_response(item.url, None)
        items.append(("BODY", data))
    if "BODYPARTSTRUCTURE" in item.params:
        structure = urlauth.bodypartstructure(named, decoded=decoded)
        if structure is None:
            return imapurl.urlfetch_response(item.url, None)  # names no part (§4, last example)
        items.insert(0, ("BODYPARTSTRUCTURE", structure))
    return imapurl.urlfetch_metadata_response(item.url, items)
