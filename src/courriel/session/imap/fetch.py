"""FETCH: which data a request needs, the command that reads it, and the exact untagged
response for one message.

Theory of operation
-------------------
A FETCH runs in two steps so the session reads no more than it must. ``plan_fetch`` looks at
the attributes once per command and says what each message will need: nothing beyond the
``MessageInfo`` row (FLAGS, UID, sizes, dates, MODSEQ), the stored parse (``needs_meta``:
ENVELOPE, BODYSTRUCTURE, BODY, and sections that name a part), or the raw message
(``needs_body``: any section bytes). It also normalises the list: UID added to UID FETCH,
FLAGS added when the fetch sets ``\\Seen``, MODSEQ added once CONDSTORE is enabled,
duplicates dropped. ``render_fetch`` then writes one message's ``* n FETCH (...)`` with one
join: ENVELOPE and BODYSTRUCTURE are the bytes the parse made, sections are slices of the
raw message (``courriel.mail.message.section_bytes``), BINARY decodes only the part asked for.

``fetch`` runs the command in the selected state and reads only what the plan says: the
stored parse in batches of ``META_BATCH``, the raw messages up to ``BODY_BATCH_BYTES`` at a time
(``BodiesAhead``). A FETCH of row items
only (FLAGS, UID, MODSEQ, RFC822.SIZE: a client's flag sync) takes the fast path, one pass over
the view with no store call and each distinct flag set encoded once (``_RowFetch``, the same
bytes as ``render_fetch``). A large FETCH is sent in pieces of about ``FLUSH_BYTES`` so memory
stays bounded. When the plan sets \\Seen, it is stored before rendering so FLAGS in the
response is current (RFC 9051 §6.4.5). The loop yields every few milliseconds between
messages (``courriel.timeslice``), and a message of ``OFFLOAD_BYTES`` or more is
rendered in a worker thread.

A message expunged by another session but not yet announced (its EXPUNGE is held back during
FETCH, STORE and SEARCH, RFC 9051 §7.5.1) keeps its sequence number. A FETCH of its row items
(flags, UID, size, dates) is still answered from the view, as RFC 2180 §4.1.1 allows; its
body and parse are gone from the store with it. A UID FETCH that needed them reads the expunge
at once and announces it in the same response, which UID commands may carry, and ends OK: the
UID names no message any more, which UID FETCH ignores. A FETCH by sequence number may not
announce it, leaves the message out and ends with ``NO [EXPUNGEISSUED]`` (RFC 5530, RFC 2180
§4.1.2) so the client knows why.

Choices where the RFCs leave room, made as Dovecot makes them:

* a section that does not exist (``BODY[5]``, ``BODY[1.HEADER]`` of a text part) is an empty
  literal ``{0}``, not NIL, and so is a partial whose origin lies past the end;
* a literal never carries NUL: BODY data holding one has it replaced by 0x80 (the wire
  encoder's choice, ``responses.item_section``); BINARY sends ``~{n}`` instead (RFC 3516);
* the FLAGS added because of an implicit ``\\Seen`` is sent only when ``\\Seen`` changed;
* the UID added to a UID FETCH comes first, since some clients read it before anything else;
  other items keep the order of the request.
"""

from __future__ import annotations

import functools
import operator
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from courriel.mail import mime
from courriel.mail.flags import display_order
from courriel.mail.message import (
    MessageMeta,
    UnknownTransferEncoding,
    decoded_part,
    find_part,
    section_bytes,
)
from courriel.session.imap import objects as imap_objects
from courriel.session.imap import search as imap_search
from courriel.session.imap.selected import SelectedView
from courriel.session.imap.state import Io, Selected, SessionState
from courriel.store.base import FlagOp, MessageInfo
from courriel.timeslice import OFFLOAD_BYTES, TimeSlice, offload
from courriel.wire.imap import commands as c
from courriel.wire.imap import responses
from courriel.wire.imap.fetch import (
    FetchAttribute,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Section,
    SectionText,
)
from courriel.wire.imap.sequence import MAX_NUMBER

__all__ = [
    "BodiesAhead",
    "FetchPlan",
    "UnknownCte",
    "fetch",
    "plan_fetch",
    "render_fetch",
]

# Sections of the top-level message that are plain slices of its header block or body, so
# they need the raw bytes but not the parse.
_TOP_LEVEL_TEXTS = (
    None,
    SectionText.HEADER,
    SectionText.TEXT,
    SectionText.HEADER_FIELDS,
    SectionText.HEADER_FIELDS_NOT,
)
_META_ITEMS = frozenset({FetchItem.ENVELOPE, FetchItem.BODYSTRUCTURE, FetchItem.BODY})
_BODY_ITEMS = frozenset({FetchItem.RFC822, FetchItem.RFC822_HEADER, FetchItem.RFC822_TEXT})
# RFC 9051 §6.4.5: RFC822 and RFC822.TEXT are BODY[] and BODY[TEXT], which set \Seen.
_SEEN_ITEMS = frozenset({FetchItem.RFC822, FetchItem.RFC822_TEXT})
EXTRA_ITEMS = frozenset(
    {FetchItem.SAVEDATE, FetchItem.EMAILID, FetchItem.THREADID, FetchItem.PREVIEW}
)


class UnknownCte(Exception):  # noqa: N818 - named after the response code the session sends
    """BINARY of a part whose Content-Transfer-Encoding courriel cannot decode.

    The session answers the command ``NO [UNKNOWN-CTE]`` (RFC 3516 §4.3) and sends nothing
    for the message.
    """

    def __init__(self, encoding: str, part: tuple[int, ...]) -> None:
        section = ".".join(str(n) for n in part)
        super().__init__(f"Unknown Content-Transfer-Encoding {encoding!r} in part {section}")
        self.encoding = encoding
        self.part = part


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What one FETCH command needs per message, and the attributes it answers, in order."""

    attributes: tuple[FetchAttribute, ...]
    needs_meta: bool  # the stored parse (MessageMeta)
    needs_body: bool  # the raw message
    sets_seen: bool  # the session must add \Seen before rendering
    wants_modseq: bool
    implicit_flags: bool  # FLAGS is in ``attributes`` only because of sets_seen
    # OBJECTID, SAVEDATE, PREVIEW: rendered by ``imap_objects`` from ``Store.message_extras``
    extras: frozenset[FetchItem] = frozenset()
    uidonly: bool = False  # RFC 9586: answer with UIDFETCH


def _needs(attr: FetchAttribute) -> tuple[bool, bool]:
    """``(needs_meta, needs_body)`` of one attribute."""
    if isinstance(attr, FetchItem):
        return attr in _META_ITEMS, attr in _BODY_ITEMS
    if isinstance(attr, FetchBinarySize):
        return bool(attr.part), False  # BINARY.SIZE[] is RFC822.SIZE
    section = attr.section
    top_level = not section.part and section.text in _TOP_LEVEL_TEXTS
    return not top_level, True


def _sets_seen(attr: FetchAttribute) -> bool:
    if isinstance(attr, FetchBody):
        return not attr.peek  # RFC 9051 §6.4.5: BODY[...] and BINARY[...] set \Seen
    return attr in _SEEN_ITEMS


def plan_fetch(
    attributes: Sequence[FetchAttribute],
    *,
    uid: bool,
    condstore: bool,
    read_only: bool = False,
    uidonly: bool = False,
) -> FetchPlan:
    """The plan for one FETCH; ``read_only`` for a mailbox opened with EXAMINE.

    ``condstore`` is whether CONDSTORE (or QRESYNC) is enabled on the connection.
    """
    requested = list(dict.fromkeys(attributes))
    # RFC 9051 §6.4.5: no \Seen change where the session may not write flags (EXAMINE).
    sets_seen = not read_only and any(_sets_seen(a) for a in requested)
    implicit_flags = sets_seen and FetchItem.FLAGS not in requested
    wants_modseq = condstore or FetchItem.MODSEQ in requested
    normalised: list[FetchAttribute] = []
    if uid and FetchItem.UID not in requested:
        normalised.append(FetchItem.UID)  # RFC 9051 §6.4.9: UID FETCH always returns UID
    normalised += requested
    if implicit_flags:
        normalised.append(FetchItem.FLAGS)  # RFC 9051 §6.4.5: changed flags SHOULD be sent
    if wants_modseq and FetchItem.MODSEQ not in requested:
        normalised.append(FetchItem.MODSEQ)  # RFC 7162 §3.1.4.1: every FETCH once enabled
    meta = body = False
    for attr in normalised:
        m, b = _needs(attr)
        meta |= m
        body |= b
    return FetchPlan(
        attributes=tuple(normalised),
        needs_meta=meta,
        needs_body=body,
        sets_seen=sets_seen,
        wants_modseq=wants_modseq,
        implicit_flags=implicit_flags,
        extras=frozenset(a for a in normalised if a in EXTRA_ITEMS),
        uidonly=uidonly,
    )


# --- rendering ----------------------------------------------------------------------------------


def _need(value: bytes | None, what: str) -> bytes:
    if value is None:
        raise ValueError(f"FETCH of {what} needs the raw message; the plan said so")
    return value


def _need_meta(meta: MessageMeta | None, what: str) -> MessageMeta:
    if meta is None:
        raise ValueError(f"FETCH of {what} needs the message meta; the plan said so")
    return meta


def _top_level(raw: bytes, section: Section) -> bytes:
    """A top-level section from the raw bytes alone, as ``section_bytes`` would give it."""
    header_end = mime.body_start(raw, 0, len(raw))
    text = section.text
    if text is None:
        return raw
    if text is SectionText.HEADER:
        return raw[:header_end]
    if text is SectionText.TEXT:
        return raw[header_end:]
    exclude = text is SectionText.HEADER_FIELDS_NOT
    wanted = mime.field_name_set(section.fields)
    return mime.field_lines(raw, 0, header_end, wanted, exclude=exclude)


def _section_data(attr: FetchBody, meta: MessageMeta | None, raw: bytes) -> bytes:
    section = attr.section
    if not section.part and section.text in _TOP_LEVEL_TEXTS:
        return _top_level(raw, section)
    found = section_bytes(raw, _need_meta(meta, "a body part"), section)
    return b"" if found is None else found  # a missing part is empty, as Dovecot answers


def _binary_data(attr: FetchBody, meta: MessageMeta | None, raw: bytes) -> bytes:
    part = attr.section.part
    if not part:
        return raw  # RFC 3516 §4.1: BINARY[] is the message as it is
    try:
        found = decoded_part(raw, _need_meta(meta, "BINARY"), part)
    except UnknownTransferEncoding as exc:
        raise UnknownCte(exc.encoding, part) from exc  # RFC 3516 §4.3
    return b"" if found is None else found


def _body(attr: FetchBody, meta: MessageMeta | None, raw: bytes | None) -> bytes:
    data = _need(raw, "a body section")
    if attr.binary:
        data = _binary_data(attr, meta, data)
    else:
        data = _section_data(attr, meta, data)
    if attr.partial is not None:
        # RFC 9051 §6.4.5: octets origin..origin+count-1; past the end is an empty string
        origin, count = attr.partial
        data = data[origin : origin + count]
    name = attr.response_name()
    if attr.binary:
        return responses.item_binary(name, data)  # RFC 3516 §4.2: literal8 only with NUL
    return responses.item_section(name, data)


def _binary_size(attr: FetchBinarySize, info: MessageInfo, meta: MessageMeta | None) -> bytes:
    name = attr.response_name()
    if not attr.part:
        return responses.item_binary_size(name, info.size)
    node = find_part(_need_meta(meta, "BINARY.SIZE"), attr.part)
    if node is None:
        return responses.item_binary_size(name, 0)  # the empty BINARY[] of a missing part
    if node.binary_size is None:
        raise UnknownCte(node.encoding, attr.part)  # RFC 3516 §4.3
    return responses.item_binary_size(name, node.binary_size)


def _raw_item(item: FetchItem, raw: bytes | None) -> bytes:
    data = _need(raw, item.value)
    if item is FetchItem.RFC822:
        return responses.item_section(b"RFC822", data)
    header_end = mime.body_start(data, 0, len(data))
    if item is FetchItem.RFC822_HEADER:
        return responses.item_section(b"RFC822.HEADER", data[:header_end])
    return responses.item_section(b"RFC822.TEXT", data[header_end:])


def _item(item: FetchItem, info: MessageInfo, meta: MessageMeta | None, raw: bytes | None) -> bytes:
    """The items ``render_fetch`` does not render itself (UID, FLAGS and RFC822.SIZE)."""
    match item:
        case FetchItem.MODSEQ:
            return responses.item_modseq(info.modseq)
        case FetchItem.INTERNALDATE:
            return responses.item_internaldate(info.internal_date)
        case FetchItem.ENVELOPE:
            return responses.item_raw(b"ENVELOPE", _need_meta(meta, "ENVELOPE").envelope)
        case FetchItem.BODYSTRUCTURE:
            encoded = _need_meta(meta, "BODYSTRUCTURE").bodystructure
            return responses.item_raw(b"BODYSTRUCTURE", encoded)
        case FetchItem.BODY:
            return responses.item_raw(b"BODY", _need_meta(meta, "BODY").body)
        case FetchItem.RFC822 | FetchItem.RFC822_HEADER | FetchItem.RFC822_TEXT:
            return _raw_item(item, raw)
        case _:
            raise ValueError(f"{item.value} is rendered from the message's extras")


def render_fetch(
    seq: int,
    info: MessageInfo,
    plan: FetchPlan,
    meta: MessageMeta | None,
    raw: bytes | None,
    *,
    utf8: bool,
    recent: bool = False,
    seen_changed: bool = True,
    extras: Mapping[FetchItem, bytes] | None = None,
) -> bytes:
    """The complete ``* seq FETCH (...)\\r\\n`` for one message, items in plan order.

    ``info`` must already carry the flags after any implicit ``\\Seen``; ``seen_changed``
    False (the message was already seen) leaves out the FLAGS the plan added for it.
    ``extras`` holds the items of ``plan.extras``, rendered. ``utf8`` is the connection's
    UTF-8 mode: every item courriel sends today is encoded so
    that it is valid in both modes (pre-encoded strings use literals where 8-bit occurs).
    Raises ``UnknownCte`` for BINARY of a part it cannot decode, and ``ValueError`` when
    ``meta`` or ``raw`` is missing although the plan asked for it.
    """
    del utf8  # see the docstring: nothing rendered here differs between the two modes
    items: list[bytes] = []
    for attr in plan.attributes:
        # The items of a page of headers first, by identity: an enum's hash is Python code.
        if isinstance(attr, FetchBody):
            items.append(_body(attr, meta, raw))
        elif attr is FetchItem.UID:
            if not plan.uidonly:  # RFC 9586 §3.3: the UID leads the UIDFETCH response instead
                items.append(responses.item_uid(info.uid))
        elif attr is FetchItem.FLAGS:
            if seen_changed or not plan.implicit_flags:
                items.append(responses.item_flags(display_order(info.flags, recent=recent)))
        elif attr is FetchItem.RFC822_SIZE:
            items.append(responses.item_rfc822_size(info.size))
        elif isinstance(attr, FetchBinarySize):
            items.append(_binary_size(attr, info, meta))
        elif attr in EXTRA_ITEMS:
            if extras is None:
                raise ValueError(f"{attr.value} needs the message's extras; see FetchPlan")
            items.append(extras[attr])
        else:
            items.append(_item(attr, info, meta, raw))
    if plan.uidonly:
        return responses.uidfetch(info.uid, items)
    return responses.fetch(seq, items)


# --- the FETCH command: reading what the plan needs, the row-only fast path, sending ---

META_BATCH = 200
# Written in pieces of this size as the response is made: the size at which the connection's
# output is written anyway (``courriel.net.driver.FLUSH_BYTES``), so the client starts reading
# after the first piece instead of waiting for a larger one.
FLUSH_BYTES = 64 * 1024
BODY_BATCH_BYTES = 1 << 20  # bodies one store read brings at most (one message at least)
# Items answered from the MessageInfo row alone, rendered without the general FETCH machinery.
_ROW_ITEMS = frozenset({FetchItem.UID, FetchItem.FLAGS, FetchItem.MODSEQ, FetchItem.RFC822_SIZE})


async def _load_meta(
    state: SessionState, view: SelectedView, uids: list[int]
) -> dict[int, MessageMeta]:
    stored = await state.store.get_meta(view.mailbox.id, uids)
    return {uid: MessageMeta.from_bytes(data) for uid, data in stored.items() if data}


class BodiesAhead:
    """The bodies of a command's messages, read ahead: one store read brings the next message's
    body and those after it while they add up to at most ``BODY_BATCH_BYTES`` (FETCH of a page
    of headers, SEARCH TEXT), instead of one read per message."""

    __slots__ = ("_bodies", "_state", "_view")

    def __init__(self, state: SessionState, view: SelectedView) -> None:
        self._state = state
        self._view = view
        self._bodies: dict[int, bytes] = {}

    async def take(self, uids: Sequence[int], i: int) -> bytes | None:
        """The body of ``uids[i]``; None when it was expunged by another session meanwhile."""
        uid = uids[i]
        if uid not in self._bodies:
            take: list[int] = []
            total = 0
            for u in uids[i:]:
                info = self._view.infos.get(u)
                total += 0 if info is None else info.size
                if take and total > BODY_BATCH_BYTES:
                    break
                take.append(u)
            self._bodies = await self._state.store.read_messages(self._view.mailbox.id, take)
        return self._bodies.pop(uid, None)


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

    The same bytes as ``render_fetch``, made with one ``%`` format per message from a template
    built once for the command (``_pick`` puts the values in the template's order); FLAGS is
    encoded once per distinct flag set, as a mailbox has few of them.
    """

    __slots__ = ("_flags", "_pick", "_recent", "_template")

    # Positions in the tuple ``render`` hands to ``_pick``.
    _SEQ, _UID, _FLAGS, _MODSEQ, _SIZE = range(5)

    def __init__(self, plan: FetchPlan, recent: AbstractSet[int]) -> None:
        self._recent = recent
        self._flags: dict[tuple[frozenset[str], bool], bytes] = {}
        if plan.uidonly:  # UIDFETCH carries the UID in front (RFC 9586 §3.3)
            head, order = b"* %d UIDFETCH (", [self._UID]
        else:
            head, order = b"* %d FETCH (", [self._SEQ]
        items: list[bytes] = []
        for attr in plan.attributes:
            if attr is FetchItem.UID:
                if not plan.uidonly:
                    items.append(b"UID %d")
                    order.append(self._UID)
            elif attr is FetchItem.FLAGS:
                items.append(b"%s")
                order.append(self._FLAGS)
            elif attr is FetchItem.MODSEQ:
                items.append(b"MODSEQ (%d)")  # RFC 7162 §3.1.4.1
                order.append(self._MODSEQ)
            else:
                items.append(b"RFC822.SIZE %d")
                order.append(self._SIZE)
        self._template = head + b" ".join(items) + b")\r\n"
        self._pick = operator.itemgetter(*order)

    @staticmethod
    def applies(plan: FetchPlan) -> bool:
        return not plan.implicit_flags and all(a in _ROW_ITEMS for a in plan.attributes)

    def render(self, seq: int, info: MessageInfo) -> bytes:
        key = (info.flags, info.uid in self._recent)
        flags = self._flags.get(key)
        if flags is None:
            flags = responses.item_flags(display_order(info.flags, recent=key[1]))
            self._flags[key] = flags
        values = (seq, info.uid, flags, info.modseq, info.size)
        return self._template % self._pick(values)  # type: ignore[no-any-return]


async def fetch(state: Selected, io: Io, cmd: c.Fetch, *, may_set_seen: bool = True) -> bytes:
    """``may_set_seen`` False: the user lacks the right to (RFC 4314 §4 "s"), as with EXAMINE."""
    view = state.selected()
    attributes = cmd.attributes
    first = False
    if cmd.changedsince is not None or FetchItem.MODSEQ in attributes:
        first = state.enable_condstore()  # RFC 7162 §3.1: CHANGEDSINCE or MODSEQ enables it
    if cmd.vanished and not state.qresync:
        return responses.bad(cmd.tag, "VANISHED needs QRESYNC enabled")  # RFC 7162 §3.2.6
    uids = view.resolve(cmd.sequence_set, uid=cmd.uid)
    out: list[bytes] = []
    if cmd.vanished and cmd.changedsince is not None:
        wanted = cmd.sequence_set
        gone = await state.store.expunged_since(view.mailbox.id, cmd.changedsince)
        earlier = [e.uid for e in gone if wanted.contains(e.uid, view.max_uid or MAX_NUMBER)]
        if earlier:
            out.append(responses.vanished(earlier, earlier=True))  # RFC 7162 §3.2.6
    if cmd.changedsince is not None:
        since = cmd.changedsince
        uids = [u for u in uids if view.infos[u].modseq > since]  # RFC 7162 §3.1.4.1
    if cmd.partial is not None:
        uids = list(imap_search.partial_slice(uids, cmd.partial))  # RFC 9394 §4
    plan = plan_fetch(
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
    bodies = BodiesAhead(state, view)
    for start in range(0, len(uids), META_BATCH):
        batch = uids[start : start + META_BATCH]
        metas = await _load_meta(state, view, batch) if plan.needs_meta else {}
        extras = await imap_objects.rendered(state, view, plan.extras, batch) if plan.extras else {}
        for i, uid in enumerate(batch):
            await turn.step()  # other clients go on between messages of a long FETCH
            info = view.infos.get(uid)
            seq = view.seq_of(uid)
            raw = await bodies.take(batch, i) if plan.needs_body else None
            meta = metas.get(uid)
            lost = (plan.needs_body and raw is None) or (plan.needs_meta and meta is None)
            lost = lost or bool(plan.extras and uid not in extras)
            if info is None or seq is None or lost:
                missing.append(uid)
                continue
            try:
                render = functools.partial(
                    render_fetch,
                    seq,
                    info,
                    plan,
                    meta,
                    raw,
                    utf8=state.utf8,
                    seen_changed=uid in seen_now,
                    recent=uid in view.recent,
                    extras=extras.get(uid),
                )
                # A large message is rendered in a worker thread; the rest right here, with no
                # coroutine in between (a page of headers renders 20 messages per command).
                if raw is not None and len(raw) >= OFFLOAD_BYTES:
                    piece = await offload(render, heavy=True)
                else:
                    piece = render()
            except UnknownCte as e:
                refusal = responses.no(cmd.tag, str(e), responses.UNKNOWN_CTE)  # RFC 3516 §4.3
                return b"".join(out) + refusal
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
        # RFC 2180 §4.1.2: the body is gone but its EXPUNGE may not be sent during FETCH. The
        # text is the one Dovecot and Zimbra use, which tools that drive many clients (imaptest)
        # recognise as this race rather than a failure.
        text = "Some of the requested messages no longer exist"
        out.append(responses.no(cmd.tag, text, responses.EXPUNGEISSUED))
    else:
        out.append(_fetch_ok(state, cmd, first))
    return b"".join(out)


def _fetch_ok(state: SessionState, cmd: c.Fetch, first: bool) -> bytes:
    text = ("UID FETCH" if cmd.uid else "FETCH") + " completed"
    code = state.condstore_code(first)
    return state.condstore_announce(first) + responses.ok(cmd.tag, text, code)


async def _fetch_rows(
    io: Io, view: SelectedView, uids: list[int], rows: _RowFetch, out: list[bytes]
) -> None:
    """One pass over the view, sending every ``FLUSH_BYTES``; the view changes only between
    commands, so every UID resolved from it is still there."""
    infos = view.infos
    ordered = view.uids
    count = len(ordered)
    size = sum(map(len, out))
    turn = TimeSlice()
    at = 0  # where the next UID should be in the view: ``uids`` mostly follow it, in order
    for start in range(0, len(uids), META_BATCH):
        await turn.step()
        first = len(out)
        for uid in uids[start : start + META_BATCH]:
            if at >= count or ordered[at] != uid:
                at = bisect_left(ordered, uid)  # a gap (or a set out of order): look it up
                if at >= count or ordered[at] != uid:
                    continue
            at += 1
            out.append(rows.render(at, infos[uid]))
        size += sum(map(len, out[first:]))
        if size >= FLUSH_BYTES:
            await io.send(b"".join(out))
            out.clear()
            size = 0
