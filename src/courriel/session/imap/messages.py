"""Message commands of the selected state: STORE, SEARCH, COPY, MOVE, EXPUNGE (FETCH: ``fetch``).

Theory of operation
-------------------
Each handler resolves its sequence set against the session's ``SelectedView`` (UIDs, or
message sequence numbers where a number past the last message is a BAD, RFC 9051 §9), asks
the store, updates the view with what the store answered, and returns the responses.

SEARCH leaves evaluation to ``imap_search``; this module only reads what its plan says it
needs: the stored parse in batches of ``META_BATCH`` (``get_meta``; only its header fields
unless BODY or TEXT needs the part tree), the raw messages a megabyte at a time
(``fetch.BodiesAhead``). A SEARCH of row keys
only never reads the parse.

No command holds the event loop for long (``courriel.timeslice``): the SEARCH loop
yields every few milliseconds between messages, and a message of ``OFFLOAD_BYTES`` or more is
searched in a worker thread.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from courriel.mail.flags import display_order
from courriel.mail.message import MessageMeta, SearchFields, search_fields_of
from courriel.session.imap import context as imap_context
from courriel.session.imap import search as imap_search
from courriel.session.imap.fetch import META_BATCH, BodiesAhead
from courriel.session.imap.selected import SelectedView
from courriel.session.imap.state import (
    Authenticated,
    Selected,
    SessionState,
    readonly_refusal,
)
from courriel.store.base import Copied, FlagOp, Mailbox, MessageInfo
from courriel.timeslice import OFFLOAD_BYTES, TimeSlice, offload
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap import search as s

_OPS = {c.StoreMode.ADD: FlagOp.ADD, c.StoreMode.REMOVE: FlagOp.REMOVE}


async def _search_meta(
    state: SessionState, view: SelectedView, plan: imap_search.SearchPlan, uids: list[int]
) -> dict[int, MessageMeta | SearchFields]:
    """What the plan needs of the stored parse: the header fields alone unless BODY or TEXT
    walks the part tree, which is the costly part of ``from_bytes``."""
    stored = await state.store.get_meta(view.mailbox.id, uids)
    if plan.needs_body:
        return {uid: MessageMeta.from_bytes(data) for uid, data in stored.items() if data}
    return {uid: search_fields_of(data) for uid, data in stored.items() if data}


async def store(state: Selected, cmd: c.Store) -> bytes:
    view = state.selected()
    if view.readonly:
        return readonly_refusal(cmd.tag)
    first = False
    if cmd.unchangedsince is not None:
        first = state.enable_condstore()  # RFC 7162 §3.1: UNCHANGEDSINCE enables CONDSTORE
    uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    op = _OPS.get(cmd.mode, FlagOp.REPLACE)
    flags = frozenset(f for f in cmd.flags if f.upper() != "\\RECENT")
    result = await state.store.store_flags(
        view.mailbox.id, uids, op, flags, unchanged_since=cmd.unchangedsince
    )
    if result.changed:
        view.advance(result.changed[0].modseq)  # one MODSEQ for every message it changed
    if state.junk is not None and op is not FlagOp.REMOVE and result.changed:
        # $Junk / $NotJunk set by a client teach the junk filter
        changed = [i.uid for i in result.changed]
        await state.junk.after_flags(state.user_id, view.mailbox.id, changed, sorted(flags))
    out = [view.learn_keywords(flags) if op is not FlagOp.REMOVE else b""]
    out.append(view.absorb(result.changed))  # keywords set elsewhere meanwhile, announced first
    for info in sorted(result.changed, key=lambda i: i.uid):
        seq = view.seq_of(info.uid)
        if seq is None:
            continue
        recent = info.uid in view.recent
        out.append(
            _store_fetch(
                seq, info, cmd, condstore=state.condstore, recent=recent, uidonly=view.uidonly
            )
        )
    out.append(await state.refresh(allow_expunge=cmd.uid))
    code = state.condstore_code(first)
    if result.modified:
        if code is not None:
            # One code per response: MODIFIED takes the tagged OK, HIGHESTMODSEQ goes untagged.
            out.append(r.untagged("OK", "Highest", code))
        numbers = result.modified if cmd.uid else [view.seq_of(u) or 0 for u in result.modified]
        code = r.modified(n for n in numbers if n)  # RFC 7162 §3.1.3
    out.append(r.ok(cmd.tag, ("UID STORE" if cmd.uid else "STORE") + " completed", code))
    return b"".join(out)


def _store_fetch(
    seq: int, info: MessageInfo, cmd: c.Store, *, condstore: bool, recent: bool, uidonly: bool
) -> bytes:
    items: list[bytes] = []
    if cmd.uid or condstore:
        items.append(r.item_uid(info.uid))
    if not cmd.silent:
        items.append(r.item_flags(display_order(info.flags, recent=recent)))
    if condstore:
        # RFC 7162 §3.1.3: the new MODSEQ is reported even with .SILENT
        items.append(r.item_modseq(info.modseq))
    if not items or (cmd.silent and not condstore):
        return b""
    if uidonly:  # RFC 9586 §3.3: the UID leads the response
        return r.uidfetch(info.uid, [i for i in items if not i.startswith(b"UID ")])
    return r.fetch(seq, items)


def uses_modseq(key: s.SearchKey) -> bool:
    match key:
        case s.SearchModSeq():
            return True
        case s.SearchNot(key=inner):
            return uses_modseq(inner)
        case s.SearchOr(left=left, right=right):
            return uses_modseq(left) or uses_modseq(right)
        case s.SearchAnd(keys=keys):
            return any(uses_modseq(k) for k in keys)
        case _:
            return False


async def search_matches(
    state: SessionState, view: SelectedView, plan: imap_search.SearchPlan, tree: s.SearchKey
) -> list[tuple[int, int]]:
    """(sequence number, UID) of each message that matches, ascending."""
    matched: list[tuple[int, int]] = []
    # The view changes only at command boundaries (events just mark it dirty), so a UID's
    # sequence number is its position in this copy, with no search per message.
    uids = list(view.uids)
    infos = view.infos
    recent = view.recent
    turn = TimeSlice()
    if not plan.needs_meta and not plan.needs_body and not plan.needs_extras:
        # RFC 9051 §6.4.4: flags, UIDs, sizes, internal dates: the view answers alone.
        for seq, uid in enumerate(uids, 1):
            if seq % 16 == 0:  # up to 256 keys each: a check every few messages
                await turn.step()
            if imap_search.matches(tree, seq, infos[uid], None, None, view, recent=uid in recent):
                matched.append((seq, uid))
        return matched
    if not plan.needs_body and not plan.needs_extras:
        return await _search_fields(state, view, tree, uids)
    bodies = BodiesAhead(state, view)
    for start in range(0, len(uids), META_BATCH):
        batch = uids[start : start + META_BATCH]
        metas = await _search_meta(state, view, plan, batch) if plan.needs_meta else {}
        extras = (
            await state.store.message_extras(view.mailbox.id, batch) if plan.needs_extras else {}
        )
        for i, uid in enumerate(batch):
            seq = start + i + 1
            info = infos.get(uid)
            if info is None or (plan.needs_extras and uid not in extras):
                continue  # gone from the store: expunged elsewhere, not announced yet
            await turn.step()  # BODY and TEXT decode every message: others go on meanwhile
            raw = await bodies.take(batch, i) if plan.needs_body else None
            found = await offload(
                functools.partial(
                    imap_search.matches,
                    tree,
                    seq,
                    info,
                    metas.get(uid),
                    raw,
                    view,
                    recent=uid in view.recent,
                    extras=extras.get(uid),
                ),
                heavy=raw is not None and len(raw) >= OFFLOAD_BYTES,  # one huge message
            )
            if found:
                matched.append((seq, uid))
    return matched


async def _search_fields(
    state: SessionState, view: SelectedView, tree: s.SearchKey, uids: list[int]
) -> list[tuple[int, int]]:
    """Header keys and SENT* only. The keys on the fields the store keeps searchable are
    answered by it for the whole mailbox in one query (``Store.search_headers``); the other
    fields come from the mailbox's ``FieldCache``, and the stored parse is read only for
    messages no search has compared those fields of."""
    keys = imap_search.stored_keys(tree)
    hits: dict[tuple[str, str], set[int]] = {}
    unmade: AbstractSet[int] = frozenset()
    if keys:
        found = await state.store.search_headers(view.mailbox.id, keys)
        hits = dict(zip(keys, found.hits, strict=True))
        unmade = found.unmade
    infos = view.infos
    if isinstance(tree, s.SearchHeader) and not unmade and hits:
        # The common case, one header key: the store's answer is the answer.
        (matching,) = hits.values()
        return [(seq, uid) for seq, uid in enumerate(uids, 1) if uid in matching]
    names, sent = imap_search.compared_fields(tree, hits)
    cache = view.fields
    todo = cache.missing(names, sent, uids) if names or sent else []
    every_name = names
    if unmade:  # their parse could not be read for the store: compared as before, and fail
        every_name, _ = imap_search.compared_fields(tree)
        todo = sorted({*todo, *cache.missing(every_name, sent, [u for u in uids if u in unmade])})
    for start in range(0, len(todo), META_BATCH):
        stored = await state.store.get_meta(view.mailbox.id, todo[start : start + META_BATCH])
        for uid, data in stored.items():
            if data:
                cache.add(uid, search_fields_of(data), every_name, sent)
    matched: list[tuple[int, int]] = []
    turn = TimeSlice()
    for seq, uid in enumerate(uids, 1):
        info = infos.get(uid)
        if info is None:
            continue
        if seq % 16 == 0:
            await turn.step()
        answered = None if uid in unmade else hits
        fields = cache.fields(uid, every_name if answered is None else names, sent)
        if imap_search.matches(
            tree, seq, info, fields, None, view, recent=uid in view.recent, hits=answered
        ):
            matched.append((seq, uid))
    return matched


def _returned_modseq(
    view: SelectedView, matched: list[tuple[int, int]], returns: Sequence[str] | None
) -> int | None:
    """The highest MODSEQ of the messages the answer returns (RFC 4731 §3.2, RFC 7162 §3.1.5):
    with MIN or MAX alone, of those messages only; otherwise of every message matched."""
    opts = {o.upper() for o in returns or ()}
    if opts and opts <= {"MIN", "MAX", "SAVE"} and matched:
        seqs = sorted(matched)
        chosen = [seqs[0]] if "MIN" in opts else []
        chosen += [seqs[-1]] if "MAX" in opts else []
        matched = chosen or matched
    return max((view.infos[u].modseq for _, u in matched), default=0) or None


async def search(state: Selected, cmd: c.Search) -> bytes:
    view = state.selected()
    plan = imap_search.plan_search(cmd.criteria)
    matched = await search_matches(state, view, plan, cmd.criteria)
    modseq = None
    first = False
    if uses_modseq(cmd.criteria):
        first = state.enable_condstore()  # RFC 7162 §3.1: a MODSEQ search key enables it
        modseq = _returned_modseq(view, matched, cmd.returns)
    numbers = [u if cmd.uid else n for n, u in matched]
    returns = cmd.returns
    if returns is not None and "SAVE" in (o.upper() for o in returns):
        saved = [u for _, u in matched]
        if cmd.partial is not None:  # RFC 9394 §3.1: SAVE keeps what PARTIAL returns
            saved = list(imap_search.partial_slice(saved, cmd.partial))
        view.saved = set(saved)  # RFC 5182 §2.1
    out = [imap_context.register(view, cmd, cmd.criteria, None, [u for _, u in matched])]
    if returns is None and state.rev2:
        returns = ("ALL",)  # RFC 9051 §6.4.4: IMAP4rev2 answers with ESEARCH
    if returns is None:
        out.append(imap_search.search_response(numbers, modseq=modseq))
    else:
        esearch = imap_search.esearch_response(
            cmd.tag, cmd.uid, returns, numbers, modseq=modseq, partial=cmd.partial
        )
        out.append(esearch)
    out.append(await state.refresh(allow_expunge=cmd.uid))
    text = ("UID SEARCH" if cmd.uid else "SEARCH") + " completed"
    out.append(state.condstore_announce(first))
    out.append(r.ok(cmd.tag, text, state.condstore_code(first)))
    return b"".join(out)


async def _target(state: Authenticated, name: str) -> Mailbox | None:
    return await state.store.get_mailbox(state.user_id, name)


async def copy_or_move(
    state: Selected,
    cmd: c.Copy | c.Move,
    target_id: int | None = None,
    rights: str | None = None,
) -> bytes:
    """``target_id``: the target found and checked by the caller (another user's mailbox);
    ``rights``: given when the source or the target is another user's mailbox, the user's
    rights on the target: the store gives the copies the user's own \\Seen and only the flags
    those rights allow, in the copy's transaction (``imap_shared``, RFC 4314 §4)."""
    view = state.selected()
    is_move = isinstance(cmd, c.Move)
    if is_move and view.readonly:
        return readonly_refusal(cmd.tag)
    uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    if target_id is not None:
        box = await state.store.get_mailbox_by_id(target_id)
    else:
        box = await _target(state, cmd.mailbox)
    if box is None:
        return r.no(cmd.tag, "No such mailbox", r.TRYCREATE)  # RFC 9051 §6.4.7
    target = box.id
    verb = ("UID " if cmd.uid else "") + ("MOVE" if is_move else "COPY")
    if not uids:
        return r.ok(cmd.tag, f"{verb} completed, no messages")
    if target == view.mailbox.id:
        view.dirty = True  # new messages in this very mailbox: EXISTS before the OK
    seen_user = None if rights is None else state.user_id
    flag_rights = "stw" if rights is None else rights
    if not is_move:
        copied = await state.store.copy(
            view.mailbox.id, uids, target, seen_user=seen_user, rights=flag_rights
        )
        if state.junk is not None:  # into or out of Junk teaches the junk filter
            await state.junk.after_copy(state.user_id, view.mailbox, box, copied.pairs)
        out = [await state.refresh(allow_expunge=True)]
        out.append(r.ok(cmd.tag, f"{verb} completed", _copyuid(copied)))  # RFC 4315 §3
        return b"".join(out)
    moved = await state.store.move(
        view.mailbox.id, uids, target, seen_user=seen_user, rights=flag_rights
    )
    if state.junk is not None:
        await state.junk.after_copy(state.user_id, view.mailbox, box, moved.pairs)
    # RFC 6851 §4.3: COPYUID comes untagged, before the expunges of the moved messages.
    out = [r.untagged("OK", "Moved", _copyuid(moved))]
    out.append(view.remove([src for src, _ in moved.pairs], qresync=state.qresync))
    out.append(await state.refresh(allow_expunge=True))
    out.append(r.ok(cmd.tag, f"{verb} completed"))
    return b"".join(out)


def _copyuid(copied: Copied) -> bytes | None:
    return r.copyuid(copied.uidvalidity, copied.pairs) if copied.pairs else None


async def expunge(state: Selected, cmd: c.Expunge) -> bytes:
    view = state.selected()
    if view.readonly:
        return readonly_refusal(cmd.tag)
    # The store is the authority on \Deleted: another session may have set or cleared it a
    # moment ago, so the store decides which messages go, in the expunge's own transaction.
    # RFC 4315 §2.1: UID EXPUNGE only of the messages the set names.
    uids = None if cmd.uids is None else view.resolve(cmd.uids, uid=True)
    out: list[bytes] = []
    if uids != []:
        expunged = await state.store.expunge_deleted(view.mailbox.id, uids)
        gone = [e.uid for e in expunged]
        out.append(imap_context.before_expunge(view, gone))  # RFC 5267 §4.3
        out.append(view.remove(gone, qresync=state.qresync))
        if expunged:
            view.advance(expunged[0].modseq)  # one MODSEQ for the whole expunge
    out.append(await state.refresh(allow_expunge=True))
    out.append(r.ok(cmd.tag, ("UID EXPUNGE" if cmd.uids else "EXPUNGE") + " completed"))
    return b"".join(out)
