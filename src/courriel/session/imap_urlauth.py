"""GENURLAUTH, RESETKEY and URLFETCH (RFC 4467) for the IMAP session; see ``session.urlauth``.

Theory of operation
-------------------
GENURLAUTH signs every URL of the command or none (the first it cannot sign gets the NO);
RESETKEY forgets the access key of one mailbox or of all the user's mailboxes, voiding every
URL signed before; URLFETCH answers each URL with its data or NIL, never saying why a URL gave
nothing (RFC 4467 §6: a client must not learn whether a message exists from a failed fetch).
"""

from __future__ import annotations

from datetime import UTC, datetime

from courriel.session import urlauth
from courriel.session.imap_state import SessionState
from courriel.wire.imap import commands as c
from courriel.wire.imap import imapurl
from courriel.wire.imap import responses as r


async def command(state: SessionState, cmd: c.UrlAuthCommand) -> bytes:
    user = state.user
    assert user is not None, "handlers of authenticated commands run after login"
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
            for url in cmd.urls:
                data = await urlauth.fetch(state.store, url, user=user.address, now=now)
                out.append(imapurl.urlfetch_response(url, data))
            return b"".join(out) + r.ok(cmd.tag, "URLFETCH completed")
