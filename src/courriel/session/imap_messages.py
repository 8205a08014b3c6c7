"""Message commands of the selected state: FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE.

Theory of operation
-------------------
Each handler resolves its sequence set against the session's ``SelectedView`` (UIDs, or
message sequence numbers where a number past the last message is a BAD, RFC 9051 §9), asks
the store, updates the view with what the store answered, and returns the responses.

FETCH and SEARCH leave rendering and evaluation to ``imap_fetch`` and ``imap_search``; this
module only fetches what their plans say they need: the stored parse in batches of
``META_BATCH`` (``get_meta``; for SEARCH only its header fields unless BODY or TEXT needs the
part tree), the raw message one at a time. A FETCH of row items only (FLAGS, UID, MODSEQ,
RFC822.SIZE: a client's flag sync) is one pass over the view with no store call, and a SEARCH
of row keys only never reads the parse. A large FETCH is sent in pieces of
about ``FLUSH_BYTES`` so memory stays bounded; everything else is one write. When the plan sets
\\Seen, it is stored before rendering so FLAGS in the response is current (RFC 9051 §6.4.5).

No command holds the event loop for long (``courriel.session.timeslice``): the FETCH and
SEARCH loops yield every few milliseconds between messages, and a message of
``OFFLOAD_BYTES`` or more is rendered or searched in a worker thread.

A message expunged by another session but not yet announced (its EXPUNGE is held back during
FETCH, STORE and SEARCH, RFC 9051 §7.5.1) keeps its sequence number. A FETCH of its row items
(flags, UID, size, dates) is still answered from the view, as RFC 2180 §4.1.1 allows; its
body and parse are gone from the store with it. A UID FETCH that needed them reads the expunge
at once and announces it in the same response, which UID commands may carry, and ends OK: the
UID names no message any more, which UID FETCH ignores. A FETCH by sequence number may not
announce it, leaves the message out and ends with ``NO [EXPUNGEISSUED]`` (RFC 5530, RFC 2180
§4.1.2) so the client knows why.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from courriel.mail.flags import display_order
from courriel.mail.message import MessageMeta, SearchFields, search_fields_of
from courriel.session import imap_context, imap_fetch, imap_objects, imap_search
from courriel.session.imap_selected import SelectedView
from courriel.session.imap_state import Io, SessionState, readonly_refusal
from courriel.session.timeslice import OFFLOAD_BYTES, TimeSlice, offload
from courriel.store.base import Copied, FlagOp, Mailbox, MessageInfo, NotFound
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses as r
from courriel.wire.imap import search as s
from courriel.wire.imap.fetch import FetchItem
from courriel.wire.imap.sequence import MAX_NUMBER

META_BATCH = 200
FLUSH_BYTES = 256 * 1024
_OPS = {c.StoreMode.ADD: FlagOp.ADD, c.StoreMode.REMOVE: FlagOp.REMOVE}
# Items answered from the MessageInfo row alone, rendered without the general FETCH machinery.
_ROW_ITEMS = frozenset({FetchItem.UID, FetchItem.FLAGS, FetchItem.MODSEQ, FetchItem.RFC822_SIZE})


async def _load_meta(
    state: SessionState, view: SelectedView, uids: list[int]
) -> dict[int, MessageMeta]:
    stored = await state.store.get_meta(view.mailbox.id, uids)
    return {uid: MessageMeta.from_bytes(data) for uid, data in stored.items() if data}


async def _search_meta(
    state: SessionState, view: SelectedView, plan: imap_search.SearchPlan, uids: list[int]
) -> dict[int, MessageMeta | SearchFields]:
    """What the plan needs of the stored parse: the header fields alone unless BODY or TEXT
    walks the part tree, which is the costly part of ``from_bytes``."""
    stored = await state.store.get_meta(view.mailbox.id, uids)
    if plan.needs_body:
        return {uid: MessageMeta.from_bytes(data) for uid, data in stored.items() if data}
    return {uid: search_fields_of(data) for uid, data in stored.items() if data}


async def _raw(state: SessionState, view: SelectedView, uid: int) -> bytes | None:
    try:
        return await state.store.read_message(view.mailbox.id, uid)
    except NotFound:
        return None  # expunged by another session, announcement held back


async def _mark_seen(
    state: SessionState, view: SelectedView, uids: list[int]
) -> tuple[set[int], bytes]:
    """Sets \\Seen; the UIDs it changed and the FLAGS to send before their FETCH responses."""
    unseen = [u for u in uids if "\\Seen" not in view.infos[u].flags]
    if not unseen:
        return set(), b""
    result = await state.store.store_flags(
        view.mailbox.id, unseen, FlagOp.ADD, frozenset({"\\Seen"})
    )
    announce = view.absorb(result.changed)
    return {i.uid for i in result.changed}, announce


class _RowFetch:
    """``* n FETCH (...)`` of row items only (``FETCH 1:* (FLAGS UID)``, the client's sync).

    The same bytes as ``imap_fetch.render_fetch``; FLAGS is encoded once per distinct flag set,
    as a mailbox has few of them.
    """

    __slots__ = ("_attributes", "_flags", "_recent", "_uidonly")

    def __init__(self, plan: imap_fetch.FetchPlan, recent: AbstractSet[int]) -> None:
        self._attributes = plan.attributes
        self._uidonly = plan.uidonly
        self._recent = recent
        self._flags: dict[tuple[frozenset[str], bool], bytes] = {}

    @staticmethod
    def applies(plan: imap_fetch.FetchPlan) -> bool:
        return not plan.implicit_flags and all(a in _ROW_ITEMS for a in plan.attributes)

    def render(self, seq: int, info: MessageInfo) -> bytes:
        items: list[bytes] = []
        for attr in self._attributes:
            if attr is FetchItem.UID:
                if not self._uidonly:
                    items.append(r.item_uid(info.uid))
            elif attr is FetchItem.FLAGS:
                key = (info.flags, info.uid in self._recent)
                encoded = self._flags.get(key)
                if encoded is None:
                    encoded = r.item_flags(display_order(info.flags, recent=key[1]))
                    self._flags[key] = encoded
                items.append(encoded)
            elif attr is FetchItem.MODSEQ:
                items.append(r.item_modseq(info.modseq))
            else:
                items.append(r.item_rfc822_size(info.size))
        return r.uidfetch(info.uid, items) if self._uidonly else r.fetch(seq, items)


async def fetch(state: SessionState, io: Io, cmd: c.Fetch, *, may_set_seen: bool = True) -> bytes:
    """``may_set_seen`` False: the user lacks the right to (RFC 4314 §4 "s"), as with EXAMINE."""
    view = state.selected()
    attributes = cmd.attributes
    first = False
    if cmd.changedsince is not None or FetchItem.MODSEQ in attributes:
        first = state.enable_condstore()  # RFC 7162 §3.1: CHANGEDSINCE or MODSEQ enables it
    if cmd.vanished and not state.qresync:
        return r.bad(cmd.tag, "VANISHED needs QRESYNC enabled")  # RFC 7162 §3.2.6
    uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    out: list[bytes] = []
    if cmd.vanished and cmd.changedsince is not None:
        wanted = cmd.sequence_set
        gone = await state.store.expunged_since(view.mailbox.id, cmd.changedsince)
        earlier = [e.uid for e in gone if wanted.contains(e.uid, view.max_uid or MAX_NUMBER)]
        if earlier:
            out.append(r.vanished(earlier, earlier=True))  # RFC 7162 §3.2.6
    if cmd.changedsince is not None:
        since = cmd.changedsince
        uids = [u for u in uids if view.infos[u].modseq > since]  # RFC 7162 §3.1.4.1
    if cmd.partial is not None:
        uids = list(imap_search.partial_slice(uids, cmd.partial))  # RFC 9394 §4
    plan = imap_fetch.plan_fetch(
        attributes,
        uid=cmd.uid,
        condstore=state.condstore,
        read_only=view.readonly or not may_set_seen,
        uidonly=view.uidonly,
    )
    seen_now: set[int] = set()
    if plan.sets_seen:
        seen_now, announce = await _mark_seen(state, view, uids)
        out.append(announce)
    if _RowFetch.applies(plan):
        await _fetch_rows(io, view, uids, _RowFetch(plan, view.recent), out)
        out.append(await state.refresh(allow_expunge=cmd.uid))
        out.append(_fetch_ok(state, cmd, first))
        return b"".join(out)
    missing: list[int] = []  # expunged elsewhere before their body or parse could be read
    size = 0
    turn = TimeSlice()
    for start in range(0, len(uids), META_BATCH):
        batch = uids[start : start + META_BATCH]
        metas = await _load_meta(state, view, batch) if plan.needs_meta else {}
        extras = await imap_objects.rendered(state, view, plan.extras, batch) if plan.extras else {}
        for uid in batch:
            await turn.step()  # other clients go on between messages of a long FETCH
            info = view.infos.get(uid)
            seq = view.seq_of(uid)
            raw = await _raw(state, view, uid) if plan.needs_body else None
            meta = metas.get(uid)
            lost = (plan.needs_body and raw is None) or (plan.needs_meta and meta is None)
            lost = lost or bool(plan.extras and uid not in extras)
            if info is None or seq is None or lost:
                missing.append(uid)
                continue
            try:
                message = (seq, info, meta, raw)
                seen, recent = uid in seen_now, uid in view.recent
                piece = await _render(state, plan, message, seen, recent, extras.get(uid))
            except imap_fetch.UnknownCte as e:
                return b"".join(out) + r.no(cmd.tag, str(e), r.UNKNOWN_CTE)  # RFC 3516 §4.3
            out.append(piece)
            size += len(piece)
            if size >= FLUSH_BYTES:
                await io.send(b"".join(out))
                out, size = [], 0
    if missing and cmd.uid:
        # RFC 9051 §7.5.1: a UID FETCH may carry EXPUNGE, so the expunge is read now rather
        # than on its event, announced, and the UIDs it removed are ones that name no message,
        # which UID FETCH ignores (§6.4.9): no failure for a race the client cannot avoid.
        view.dirty = True
    out.append(await state.refresh(allow_expunge=cmd.uid))
    if any(u in view.infos for u in missing):
        # RFC 2180 §4.1.2: the body is gone but its EXPUNGE may not be sent during FETCH.
        out.append(r.no(cmd.tag, "Some messages were expunged", r.EXPUNGEISSUED))
    else:
        out.append(_fetch_ok(state, cmd, first))
    return b"".join(out)


def _fetch_ok(state: SessionState, cmd: c.Fetch, first: bool) -> bytes:
    text = ("UID FETCH" if cmd.uid else "FETCH") + " completed"
    return state.condstore_announce(first) + r.ok(cmd.tag, text, state.condstore_code(first))


async def _render(
    state: SessionState,
    plan: imap_fetch.FetchPlan,
    message: tuple[int, MessageInfo, MessageMeta | None, bytes | None],
    seen_changed: bool,
    recent: bool,
    extras: dict[FetchItem, bytes] | None = None,
) -> bytes:
    """One message's FETCH response; a large message is rendered in a worker thread."""
    seq, info, meta, raw = message
    render = functools.partial(
        imap_fetch.render_fetch,
        seq,
        info,
        plan,
        meta,
        raw,
        utf8=state.utf8,
        seen_changed=seen_changed,
        recent=recent,
        extras=extras,
    )
    return await offload(render, heavy=raw is not None and len(raw) >= OFFLOAD_BYTES)


async def _fetch_rows(
    io: Io, view: SelectedView, uids: list[int], rows: _RowFetch, out: list[bytes]
) -> None:
    """One pass over the view, sending every ``FLUSH_BYTES``; the view changes only between
    commands, so every UID resolved from it is still there."""
    infos = view.infos
    seq_of = view.seq_of
    size = sum(map(len, out))
    turn = TimeSlice()
    for start in range(0, len(uids), META_BATCH):
        await turn.step()
        first = len(out)
        for uid in uids[start : start + META_BATCH]:
            seq = seq_of(uid)
            if seq is not None:
                out.append(rows.render(seq, infos[uid]))
        size += sum(map(len, out[first:]))
        if size >= FLUSH_BYTES:
            await io.send(b"".join(out))
            out.clear()
            size = 0


async def store(state: SessionState, cmd: c.Store) -> bytes:
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
    for start in range(0, len(uids), META_BATCH):
        batch = uids[start : start + META_BATCH]
        metas = await _search_meta(state, view, plan, batch) if plan.needs_meta else {}
        extras = (
            await state.store.message_extras(view.mailbox.id, batch) if plan.needs_extras else {}
        )
        for seq, uid in enumerate(batch, start + 1):
            info = infos.get(uid)
            if info is None or (plan.needs_extras and uid not in extras):
                continue  # gone from the store: expunged elsewhere, not announced yet
            await turn.step()  # BODY and TEXT decode every message: others go on meanwhile
            raw = await _raw(state, view, uid) if plan.needs_body else None
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


async def search(state: SessionState, cmd: c.Search) -> bytes:
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


async def _target(state: SessionState, name: str) -> Mailbox | None:
    return await state.store.get_mailbox(state.user_id, name)


async def copy_or_move(
    state: SessionState,
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


async def expunge(state: SessionState, cmd: c.Expunge) -> bytes:
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
