"""OBJECTID (RFC 8474), SAVEDATE (RFC 8514) and PREVIEW (RFC 8970): the FETCH items read from
``Store.message_extras`` rather than from the view's rows, and the MAILBOXID of a mailbox.

Theory of operation
-------------------
The ids are made from what the store keeps anyway, so they are stable and need no columns
of their own (``imap_ids``).

A PREVIEW is made from the message and its parse on the first FETCH that asks for it
(``courriel.mail.preview``; a large message in a worker thread) and kept by the store, so
later FETCHes read it with the other extras.
"""

from __future__ import annotations

import functools

from courriel.mail.message import MessageMeta, MetaFormatError
from courriel.mail.preview import preview
from courriel.session.imap import ids as imap_ids
from courriel.session.imap.selected import SelectedView
from courriel.session.imap.state import SessionState
from courriel.store.base import Mailbox, MessageExtras, NotFound
from courriel.timeslice import OFFLOAD_BYTES, offload
from courriel.wire.imap import responses as r
from courriel.wire.imap.fetch import FetchItem


def mailbox_id_code(box: Mailbox) -> bytes:
    """``MAILBOXID (M12)``: the response code of SELECT, EXAMINE and CREATE (RFC 8474 §4)."""
    return b"MAILBOXID (" + imap_ids.mailbox_id(box).encode("ascii") + b")"


async def _previews(
    state: SessionState, view: SelectedView, rows: dict[int, MessageExtras]
) -> dict[int, str]:
    """Makes and keeps the previews not made yet."""
    todo = [uid for uid, x in rows.items() if x.preview is None]
    if not todo:
        return {}
    metas = await state.store.get_meta(view.mailbox.id, todo)
    made: dict[int, str] = {}
    for uid in todo:
        try:
            raw = await state.store.read_message(view.mailbox.id, uid)
            meta = MessageMeta.from_bytes(metas[uid])
        except (NotFound, KeyError, MetaFormatError):
            continue  # expunged meanwhile, or a parse this version cannot read
        made[uid] = await offload(
            functools.partial(preview, raw, meta), heavy=len(raw) >= OFFLOAD_BYTES
        )
    await state.store.set_previews(view.mailbox.id, made)
    return made


async def rendered(
    state: SessionState, view: SelectedView, items: frozenset[FetchItem], uids: list[int]
) -> dict[int, dict[FetchItem, bytes]]:
    """The FETCH items of ``items`` for each of ``uids`` still in the store."""
    rows = await state.store.message_extras(view.mailbox.id, uids)
    made = await _previews(state, view, rows) if FetchItem.PREVIEW in items else {}
    out: dict[int, dict[FetchItem, bytes]] = {}
    for uid, x in rows.items():
        one: dict[FetchItem, bytes] = {}
        if FetchItem.SAVEDATE in items:
            one[FetchItem.SAVEDATE] = r.item_savedate(x.savedate)
        if FetchItem.EMAILID in items:
            one[FetchItem.EMAILID] = r.item_objectid(b"EMAILID", imap_ids.email_id(x.blob_id))
        if FetchItem.THREADID in items:
            one[FetchItem.THREADID] = r.item_objectid(b"THREADID", imap_ids.thread_id(x.sort_keys))
        if FetchItem.PREVIEW in items:
            one[FetchItem.PREVIEW] = r.item_preview(x.preview or made.get(uid))
        out[uid] = one
    return out
