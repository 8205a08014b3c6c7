"""SEARCH: which data a program needs, whether one message matches it, and the responses.

Theory of operation
-------------------
The parser (``courriel.wire.imap.parse_search``) gives a tree of few node types. ``plan_search``
walks it once per command and says what each message will need, so flags, UIDs, sizes and
internal dates are answered from the ``MessageInfo`` row alone; header keys and SENT* need only
the header fields of the stored parse (``SearchFields``: the decoded fields SEARCH compares and
the Date, read without the part tree); BODY, TEXT and HEADER of an uncommon field need the raw
message, and BODY and TEXT the whole parse. ``matches`` then evaluates the tree for one
message, short-circuiting AND and OR, and folds the message text at most once per message
whatever the number of string keys. Keys on Subject, From, To, Cc and Bcc whose folded needle
holds no line feed or NUL (``stored_keys``) are answered for the whole mailbox by the store's
search texts (``Store.search_headers``, ``searchtext.stored_text``), and ``matches`` is given
those answers (``hits``) instead of reading the fields.

Semantics; where the RFCs leave room, the choices are Dovecot's unless said otherwise:

* string keys are case-insensitive substrings of decoded text (RFC 2047 words in headers;
  transfer encodings and charsets in bodies), compared after ``searchtext.fold``;
* ``HEADER name ""`` matches every message that has the field (RFC 9051 §6.4.4);
* FROM, TO, CC and BCC (and HEADER of those fields) also match the addresses as parsed: each
  ``name <local@domain>`` with comments and quoting gone, a comment standing in for a missing
  display name, and each group name, so ``<user (c)@ (c) example.org>`` is found by
  ``user@example.org`` and ``user@example.org (Real Name)`` by ``real name``. The decoded
  field is tried first; the parse runs only for fields with comments, quotes or white space
  inside an address, where the two can differ;
* FROM, TO, CC, BCC, SUBJECT and HEADER of the other fields the parse keeps compare the first
  occurrence, the one ENVELOPE shows (RFC 5322 §3.6 allows each of them once; Dovecot reads
  every occurrence, which costs the raw message); HEADER of any other field compares every
  occurrence, read from the raw header block;
* BEFORE, ON and SINCE compare the internal date, SENT* the Date field, each by its calendar
  day in its own time zone, "disregarding time and timezone" (RFC 9051 §6.4.4); a message
  without a readable Date field matches no SENT* key;
* ``*`` in a sequence set is the last message number or the largest UID in use, ``$`` the
  saved result (RFC 5182), which the view keeps as UIDs;
* MODSEQ n matches messages whose mod-sequence is at least n (RFC 7162 §3.1.5); the entry
  name is accepted and ignored, as courriel keeps one mod-sequence per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, assert_never

from courriel.mail import flags as flags_
from courriel.mail import searchtext
from courriel.mail.message import SEARCH_FIELDS, MessageMeta, SearchFields
from courriel.session.imap import ids as imap_ids
from courriel.store.base import MessageExtras, MessageInfo
from courriel.wire.imap import responses
from courriel.wire.imap.search import (
    DateField,
    DateOp,
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchObjectId,
    SearchOr,
    SearchRecent,
    SearchSequence,
    SearchSize,
    SearchText,
    SearchUid,
)

__all__ = [
    "FieldCache",
    "Hits",
    "SearchPlan",
    "SearchView",
    "compared_fields",
    "esearch_response",
    "matches",
    "partial_slice",
    "plan_search",
    "search_response",
    "stored_keys",
]

_META_FIELDS = frozenset(SEARCH_FIELDS)
_STORED_FIELDS = frozenset(searchtext.STORED_FIELDS)
# (field, folded needle) -> UIDs matching, found by the store (``Store.search_headers``)
Hits = Mapping[tuple[str, str], AbstractSet[int]]


class SearchView(Protocol):
    """What a search needs of the selected mailbox as the session sees it now."""

    def seq_of(self, uid: int) -> int | None: ...

    def uid_of(self, seq: int) -> int: ...

    @property
    def max_seq(self) -> int: ...

    @property
    def max_uid(self) -> int: ...

    @property
    def saved(self) -> AbstractSet[int]:
        """UIDs of the result saved by ``SEARCH RETURN (SAVE)``, for ``$`` (RFC 5182).

        Any set type will do (``set`` or ``frozenset``); it is only asked for membership.
        """
        ...


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """``needs_meta`` alone: the header fields (``SearchFields`` will do); with ``needs_body``
    the whole ``MessageMeta`` too, whose part tree BODY and TEXT walk."""

    needs_meta: bool  # the stored parse (SearchFields, or MessageMeta with needs_body)
    needs_body: bool  # the raw message
    needs_extras: bool = False  # ``Store.message_extras``: SAVED* dates, EMAILID, THREADID


def _needs(key: SearchKey) -> tuple[bool, bool]:
    match key:
        case SearchNot(inner):
            return _needs(inner)
        case SearchOr(left, right):
            a, b = _needs(left), _needs(right)
            return a[0] or b[0], a[1] or b[1]
        case SearchAnd(keys):
            pairs = [_needs(k) for k in keys]
            return any(m for m, _ in pairs), any(b for _, b in pairs)
        case SearchHeader(name=name):
            common = name in _META_FIELDS
            return common, not common
        case SearchDate(field=field):
            return field is DateField.SENT, False
        case SearchBody() | SearchText():
            return True, True
        case _:
            return False, False


def _needs_extras(key: SearchKey) -> bool:
    match key:
        case SearchNot(inner):
            return _needs_extras(inner)
        case SearchOr(left, right):
            return _needs_extras(left) or _needs_extras(right)
        case SearchAnd(keys):
            return any(_needs_extras(k) for k in keys)
        case SearchDate(field=field):
            return field is DateField.SAVED
        case SearchObjectId():
            return True
        case _:
            return False


def plan_search(tree: SearchKey) -> SearchPlan:
    """What each message needs for ``tree`` to be evaluated."""
    meta, body = _needs(tree)
    return SearchPlan(needs_meta=meta, needs_body=body, needs_extras=_needs_extras(tree))


def _compared(key: SearchKey, names: set[str], answered: Hits) -> bool:
    """Adds the parse's fields ``key`` compares to ``names``, but for the keys ``answered``
    holds; whether it compares SENT*."""
    match key:
        case SearchNot(inner):
            return _compared(inner, names, answered)
        case SearchOr(left, right):
            return _compared(left, names, answered) | _compared(right, names, answered)
        case SearchAnd(keys):
            sent = False
            for k in keys:  # every key, not up to the first SENT*: each may add names
                sent |= _compared(k, names, answered)
            return sent
        case SearchHeader(name=name, value=value) if name in _META_FIELDS:
            if (name, searchtext.fold(value)) not in answered:
                names.add(name)
            return False
        case SearchDate(field=DateField.SENT):
            return True
        case _:
            return False


def compared_fields(tree: SearchKey, answered: Hits | None = None) -> tuple[frozenset[str], bool]:
    """The ``SEARCH_FIELDS`` names ``tree`` compares, and whether it compares the Date; with
    ``answered``, the names of the keys it does not answer."""
    names: set[str] = set()
    sent = _compared(tree, names, answered or {})
    return frozenset(names), sent


def _stored(key: SearchKey, out: set[tuple[str, str]]) -> None:
    match key:
        case SearchNot(inner):
            _stored(inner, out)
        case SearchOr(left, right):
            _stored(left, out)
            _stored(right, out)
        case SearchAnd(keys):
            for k in keys:
                _stored(k, out)
        case SearchHeader(name=name, value=value) if name in _STORED_FIELDS:
            needle = searchtext.fold(value)
            if searchtext.storable_needle(needle):
                out.add((name, needle))
        case _:
            return


def stored_keys(tree: SearchKey) -> list[tuple[str, str]]:
    """The header keys of ``tree`` the store's search texts answer (``Store.search_headers``):
    (field, folded needle), sorted."""
    out: set[tuple[str, str]] = set()
    _stored(tree, out)
    return sorted(out)


class FieldCache:
    """The header fields SEARCH compared, per field and UID, for one mailbox and UIDVALIDITY.

    What the parse holds for a UID never changes, so entries need no invalidation; a field is
    kept only once a search compared it, and ``drop`` forgets expunged messages. The stored
    SORT and THREAD keys (``courriel.mail.sortkeys``) are kept here too, once a SORT read them.
    """

    __slots__ = ("_dates", "_sizes", "_texts", "sort_keys")

    def __init__(self) -> None:
        self._texts: dict[str, dict[int, str | None]] = {}  # None: the field is absent
        self._dates: dict[int, datetime | None] = {}
        self._sizes: dict[int, int] = {}
        self.sort_keys: dict[int, str] = {}  # UID -> encoded sort keys

    def __len__(self) -> int:
        texts = sum(len(t) for t in self._texts.values())
        return len(self._sizes) + len(self._dates) + texts + len(self.sort_keys)

    def missing(self, names: Iterable[str], sent: bool, uids: Iterable[int]) -> list[int]:
        tables = [self._texts.get(n, {}) for n in names] + ([self._dates] if sent else [])
        return [u for u in uids if u not in self._sizes or any(u not in t for t in tables)]

    def add(self, uid: int, fields: SearchFields, names: Iterable[str], sent: bool) -> None:
        self._sizes[uid] = fields.header_size
        for name in names:
            self._texts.setdefault(name, {})[uid] = fields.text_headers.get(name)
        if sent:
            self._dates[uid] = fields.date

    def fields(self, uid: int, names: Iterable[str], sent: bool) -> SearchFields | None:
        """What ``matches`` needs of message ``uid`` for those fields; None if never added."""
        size = self._sizes.get(uid)
        if size is None:
            return None
        texts = {n: t for n in names if (t := self._texts[n][uid]) is not None}
        return SearchFields(size, self._dates[uid] if sent else None, texts)

    def drop(self, uids: Iterable[int]) -> None:
        for uid in uids:
            self._sizes.pop(uid, None)
            self._dates.pop(uid, None)
            self.sort_keys.pop(uid, None)
            for table in self._texts.values():
                table.pop(uid, None)


# --- evaluation ---------------------------------------------------------------------------------


def _compare_day(day: date, op: DateOp, wanted: date) -> bool:
    if op is DateOp.BEFORE:
        return day < wanted
    if op is DateOp.ON:
        return day == wanted
    return day >= wanted  # SINCE: on or after


def _has_flag(flags: frozenset[str], flag: str) -> bool:
    if flag.startswith("\\"):
        # The store keeps system flags in their canonical spelling; match that spelling.
        return flags_.canonical(flag) in flags
    if flag in flags:
        return True
    # Keywords are kept as given; compare them without regard to case, as Dovecot does.
    wanted = flag.casefold()
    return any(f.casefold() == wanted for f in flags)


class _Message:
    """One message during one evaluation, with its folded text computed on first use."""

    __slots__ = (
        "_header_block",
        "_parts",
        "_pending",
        "extras",
        "hits",
        "info",
        "meta",
        "raw",
        "recent",
        "seq",
        "view",
    )

    def __init__(
        self,
        seq: int,
        info: MessageInfo,
        meta: MessageMeta | SearchFields | None,
        raw: bytes | None,
        view: SearchView,
        recent: bool,
        extras: MessageExtras | None = None,
        hits: Hits | None = None,
    ) -> None:
        self.extras = extras
        self.hits = hits
        self.seq = seq
        self.info = info
        self.meta = meta
        self.raw = raw
        self.view = view
        self.recent = recent
        self._parts: list[str] = []  # folded text of the parts read so far
        self._pending: Iterator[str] | None = None  # the parts not read yet
        self._header_block: str | None = None

    def need_meta(self) -> MessageMeta | SearchFields:
        if self.meta is None:
            raise ValueError("this search key needs the message meta; see plan_search")
        return self.meta

    def need_parts(self) -> MessageMeta:
        meta = self.need_meta()
        if not isinstance(meta, MessageMeta):
            raise ValueError("BODY and TEXT need the whole message meta; see SearchPlan")
        return meta

    def need_raw(self) -> bytes:
        if self.raw is None:
            raise ValueError("this search key needs the raw message; see plan_search")
        return self.raw

    def header(self, key: SearchHeader) -> bool:
        needle = searchtext.fold(key.value)
        if self.hits is not None:
            found = self.hits.get((key.name, needle))
            if found is not None:
                return self.info.uid in found
        if key.name in _META_FIELDS:
            meta = self.need_meta()
            if not needle:
                # Both maps of the parse hold exactly the fields present.
                return key.name in meta.text_headers
            value = meta.text_headers.get(key.name)
            return value is not None and searchtext.field_matches(key.name, needle, value)
        end = None if self.meta is None else self.meta.header_size
        values = searchtext.header_field_texts(self.need_raw(), key.name, end)
        if not needle:
            return bool(values)  # RFC 9051 §6.4.4: an empty string matches a present field
        return any(needle in searchtext.fold(v) for v in values)

    def body(self, value: str) -> bool:
        needle = searchtext.fold(value)
        if any(needle in text for text in self._parts):
            return True
        if self._pending is None and not self._parts:
            self._pending = searchtext.body_texts(self.need_raw(), self.need_parts())
        if self._pending is not None:
            # Parts are decoded and folded only until one matches; a later key resumes here.
            for text in self._pending:
                folded = searchtext.fold(text)
                self._parts.append(folded)
                if needle in folded:
                    return True
            self._pending = None
        return False

    def text(self, value: str) -> bool:
        needle = searchtext.fold(value)
        if self._header_block is None:
            end = None if self.meta is None else self.meta.header_size
            block = searchtext.header_block_text(self.need_raw(), end)
            self._header_block = searchtext.fold(block)
        return needle in self._header_block or self.body(value)

    def sent_day(self) -> date | None:
        when: datetime | None = self.need_meta().date
        return None if when is None else when.date()

    def matches(self, key: SearchKey) -> bool:
        info = self.info
        match key:
            case SearchAll():
                return True
            case SearchFlag(flag, present):
                return _has_flag(info.flags, flag) == present
            case SearchRecent(recent):
                return self.recent == recent
            case SearchSize(larger, size):
                return info.size > size if larger else info.size < size
            case SearchSequence(sset):
                if sset.saved:
                    return info.uid in self.view.saved  # RFC 5182 §2.1
                return sset.contains(self.seq, self.view.max_seq)
            case SearchUid(uids):
                if uids.saved:
                    return info.uid in self.view.saved
                return uids.contains(info.uid, self.view.max_uid)
            case SearchModSeq(modseq):
                return info.modseq >= modseq  # RFC 7162 §3.1.5
            case SearchObjectId(kind, objectid):
                x = self.need_extras()  # RFC 8474 §6: the id, exactly
                if kind == "EMAILID":
                    return imap_ids.email_id(x.blob_id) == objectid
                return imap_ids.thread_id(x.sort_keys) == objectid
            case SearchDate(field, op, day):
                return self.date(field, op, day)
            case SearchHeader():
                return self.header(key)
            case SearchBody(value):
                return self.body(value)
            case SearchText(value):
                return self.text(value)
            case SearchNot(inner):
                return not self.matches(inner)
            case SearchOr(left, right):
                return self.matches(left) or self.matches(right)
            case SearchAnd(keys):
                return all(self.matches(k) for k in keys)
            case _:
                assert_never(key)

    def need_extras(self) -> MessageExtras:
        if self.extras is None:
            raise ValueError("this search key needs the message's extras; see plan_search")
        return self.extras

    def date(self, field: DateField, op: DateOp, wanted: date) -> bool:
        if field is DateField.INTERNAL:
            # RFC 9051 §6.4.4: the day of the internal date in its own zone
            return _compare_day(self.info.internal_date.date(), op, wanted)
        if field is DateField.SAVED:
            # RFC 8514 §4: the save date's day; a message saved before courriel kept save
            # dates (SAVEDATE NIL) matches none of them
            saved = self.need_extras().savedate
            return saved is not None and _compare_day(saved.date(), op, wanted)
        day = self.sent_day()
        return day is not None and _compare_day(day, op, wanted)


def matches(
    tree: SearchKey,
    seq: int,
    info: MessageInfo,
    meta: MessageMeta | SearchFields | None,
    raw: bytes | None,
    view: SearchView,
    *,
    recent: bool = False,
    extras: MessageExtras | None = None,
    hits: Hits | None = None,
) -> bool:
    """Whether message ``seq`` matches ``tree``.

    ``meta`` and ``raw`` may be None when ``plan_search`` said they are not needed, and
    ``meta`` may be the ``SearchFields`` alone unless the plan needs the body; ``recent``
    says whether the session counts this message as recent (RFC 3501 §6.4.4 RECENT, NEW, OLD).
    ``hits`` answers the header keys it holds for this message, which then need no ``meta``
    (``compared_fields`` with ``answered``). Raises ``ValueError`` only when data the plan
    asked for is missing.
    """
    return _Message(seq, info, meta, raw, view, recent, extras, hits).matches(tree)


# --- responses ----------------------------------------------------------------------------------


def search_response(numbers: Sequence[int], *, modseq: int | None = None) -> bytes:
    """``* SEARCH 2 4 7 (MODSEQ 917162500)``; no MODSEQ when nothing matched (RFC 7162 §3.1.5)."""
    return responses.search(numbers, modseq if numbers else None)


def partial_slice(numbers: Sequence[int], window: tuple[int, int]) -> Sequence[int]:
    """The results at the positions ``window`` names (RFC 9394 §3.1): ``(1, 100)`` the first
    hundred, ``(-1, -100)`` the last hundred, in either order, in the order of ``numbers``."""
    lo, hi = sorted((abs(window[0]), abs(window[1])))
    if window[0] > 0:
        return numbers[lo - 1 : hi]
    end = len(numbers)
    return numbers[max(0, end - hi) : max(0, end - lo + 1)]


def esearch_response(
    tag: str,
    uid: bool,
    return_opts: Iterable[str] | None,
    matched: Sequence[int],
    *,
    modseq: int | None = None,
    partial: tuple[int, int] | None = None,
) -> bytes:
    """The ESEARCH response for ``SEARCH RETURN (...)`` (RFC 4731 §3.1).

    No options (or an empty list) means ALL. MIN, MAX and ALL are left out when nothing
    matched, COUNT is always given. SAVE alone produces no response at all (RFC 5182 §2.1):
    the result is returned as b"" and the session only stores it.
    """
    opts = frozenset(o.upper() for o in (return_opts or ()))
    if not opts:
        opts = frozenset({"ALL"})
    if opts == {"SAVE"}:
        return b""
    found = bool(matched)
    return responses.esearch(
        tag,
        uid=uid,
        minimum=min(matched) if found and "MIN" in opts else None,
        maximum=max(matched) if found and "MAX" in opts else None,
        all_numbers=matched if found and "ALL" in opts else None,
        count=len(matched) if "COUNT" in opts else None,
        modseq=modseq if found else None,  # RFC 7162 §3.1.5: only with a non-empty result
        partial=None if partial is None else (partial, partial_slice(matched, partial)),
    )
