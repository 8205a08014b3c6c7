"""FETCH: which data a request needs, and the exact untagged response for one message.

Theory of operation
-------------------
A FETCH runs in two steps so the session reads no more than it must. ``plan_fetch`` looks at
the attributes once per command and says what each message will need: nothing beyond the
``MessageInfo`` row (FLAGS, UID, sizes, dates, MODSEQ), the stored parse (``needs_meta``:
ENVELOPE, BODYSTRUCTURE, BODY, and sections that name a part), or the raw message
(``needs_body``: any section bytes). It also normalises the list: UID added to UID FETCH,
FLAGS added when the fetch sets ``\\Seen``, MODSEQ added once CONDSTORE is enabled,
duplicates dropped. ``render_fetch`` then writes one message's ``* n FETCH (...)`` with one
join: ENVELOPE and BODYSTRUCTURE are the bytes made at delivery, sections are slices of the
raw message (``courriel.mail.message.section_bytes``), BINARY decodes only the part asked for.

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

from collections.abc import Mapping, Sequence
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
from courriel.store.base import MessageInfo
from courriel.wire.imap import responses
from courriel.wire.imap.fetch import (
    FetchAttribute,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Section,
    SectionText,
)

__all__ = ["FetchPlan", "UnknownCte", "plan_fetch", "render_fetch"]

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


def _item(
    item: FetchItem,
    info: MessageInfo,
    meta: MessageMeta | None,
    raw: bytes | None,
    recent: bool,
) -> bytes:
    match item:
        case FetchItem.UID:
            return responses.item_uid(info.uid)
        case FetchItem.FLAGS:
            return responses.item_flags(display_order(info.flags, recent=recent))
        case FetchItem.MODSEQ:
            return responses.item_modseq(info.modseq)
        case FetchItem.RFC822_SIZE:
            return responses.item_rfc822_size(info.size)
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
        if isinstance(attr, FetchBody):
            items.append(_body(attr, meta, raw))
        elif isinstance(attr, FetchBinarySize):
            items.append(_binary_size(attr, info, meta))
        elif attr is FetchItem.FLAGS and plan.implicit_flags and not seen_changed:
            continue
        elif attr is FetchItem.UID and plan.uidonly:
            continue  # RFC 9586 §3.3: the UID leads the UIDFETCH response instead
        elif attr in EXTRA_ITEMS:
            if extras is None:
                raise ValueError(f"{attr.value} needs the message's extras; see FetchPlan")
            items.append(extras[attr])
        else:
            items.append(_item(attr, info, meta, raw, recent))
    if plan.uidonly:
        return responses.uidfetch(info.uid, items)
    return responses.fetch(seq, items)
