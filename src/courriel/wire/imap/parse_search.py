"""Parser for SEARCH and UID SEARCH (RFC 9051 §6.4.4, ESEARCH RFC 4731, SEARCHRES RFC 5182,
CONDSTORE RFC 7162 §3.1.5).

Theory of operation
-------------------
``SEARCH [RETURN (opts)] [CHARSET name] key *(SP key)``. Each key name maps to one small
function in ``_KEYS``; sequence sets (digits, ``*``, ``$``) and parenthesised groups are
recognised by their first byte. NOT, OR and groups recurse, and every level counts against
``Limits.max_depth``, so ``NOT NOT NOT ...`` cannot exhaust the stack. Each key is evaluated
once per message, so their number (``max_search_keys``) and the length of each string
(``max_search_string``) are bounded too: a search costs at most keys x messages steps.

Only UTF-8 and US-ASCII are accepted as CHARSET; any other is answered with
``NO [BADCHARSET (UTF-8 US-ASCII)]`` through ``BadCharset`` (RFC 9051 §6.4.4), which is a
``ProtocolError`` so the session treats it like any other reply from the parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from courriel.wire.errors import ProtocolError
from courriel.wire.imap.commands import Search
from courriel.wire.imap.dates import parse_date
from courriel.wire.imap.lexer import Reader
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

CHARSETS = ("UTF-8", "US-ASCII")
# RFC 4731, RFC 5182 SAVE, RFC 9394 PARTIAL, RFC 5267 §4 UPDATE and CONTEXT
RETURN_OPTIONS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE", "PARTIAL", "UPDATE", "CONTEXT"})


class BadCharset(ProtocolError):  # noqa: N818 - reads as the response code it sends
    """SEARCH with a charset courriel does not support: a tagged NO, not a BAD."""

    def __init__(self, tag: str, charset: str) -> None:
        supported = " ".join(CHARSETS)
        super().__init__(
            f"{tag} NO [BADCHARSET ({supported})] Unsupported charset {charset}\r\n".encode()
        )
        self.charset = charset


_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = ("BCC", "CC", "FROM", "SUBJECT", "TO")
_DATE_KEYS = {
    "BEFORE": (DateField.INTERNAL, DateOp.BEFORE),
    "ON": (DateField.INTERNAL, DateOp.ON),
    "SINCE": (DateField.INTERNAL, DateOp.SINCE),
    "SENTBEFORE": (DateField.SENT, DateOp.BEFORE),
    "SENTON": (DateField.SENT, DateOp.ON),
    "SENTSINCE": (DateField.SENT, DateOp.SINCE),
    "SAVEDBEFORE": (DateField.SAVED, DateOp.BEFORE),  # RFC 8514 §4
    "SAVEDON": (DateField.SAVED, DateOp.ON),
    "SAVEDSINCE": (DateField.SAVED, DateOp.SINCE),
}
_ENTRY_TYPES = frozenset({"priv", "shared", "all"})


def _value(r: Reader, key: str) -> str:
    r.sp(f"string after {key}")
    raw = r.astring(f"string after {key}")
    if len(raw) > r.limits.max_search_string:
        # Each string is folded and sought in every message: a longer one only costs time.
        r.fail(f"Search string longer than {r.limits.max_search_string} octets")
    return r.text(raw, f"string after {key}")


def _date(r: Reader, key: str) -> SearchDate:
    r.sp(f"date after {key}")
    raw = r.string(f"date after {key}") if r.peek() == 0x22 else r.atom(f"date after {key}")
    day = parse_date(raw)
    if day is None:
        r.fail(f"Invalid date after {key}, expected d-Mon-yyyy")
    field, op = _DATE_KEYS[key]
    return SearchDate(field, op, day)


def _header(r: Reader, key: str) -> SearchHeader:
    r.sp("header field name after HEADER")
    name = r.astring_text("header field name after HEADER")
    return SearchHeader(name.lower(), _value(r, "the header field name"))


def _size(r: Reader, key: str) -> SearchSize:
    r.sp(f"size after {key}")
    return SearchSize(key == "LARGER", r.number(f"size after {key}", bits=64))


def _keyword(r: Reader, key: str) -> SearchFlag:
    r.sp(f"keyword after {key}")
    flag = r.flag(f"keyword after {key}")
    return SearchFlag(flag, key == "KEYWORD")


def _uid(r: Reader, key: str) -> SearchUid:
    r.sp("UID set after UID")
    return SearchUid(r.sequence_set("UID set after UID"))


def _not(r: Reader, key: str) -> SearchNot:
    r.sp("search key after NOT")
    return SearchNot(search_key(r))


def _or(r: Reader, key: str) -> SearchOr:
    r.sp("search key after OR")
    left = search_key(r)
    r.sp("second search key after OR")
    return SearchOr(left, search_key(r))


def _modseq(r: Reader, key: str) -> SearchModSeq:
    r.sp("mod-sequence after MODSEQ")
    entry: tuple[str, str] | None = None
    if r.peek() == 0x22:  # RFC 7162 §3.1.5: entry-name entry-type-req
        name = r.text(r.string("MODSEQ entry name"), "MODSEQ entry name")
        if not name.lower().startswith("/flags/"):
            r.fail("MODSEQ entry name must start with /flags/")
        r.sp("entry type after the MODSEQ entry name")
        kind = r.atom("entry type").decode("ascii").lower()
        if kind not in _ENTRY_TYPES:
            r.fail("MODSEQ entry type must be priv, shared or all")
        entry = (name, kind)
        r.sp("mod-sequence after the MODSEQ entry type")
    return SearchModSeq(r.number("mod-sequence after MODSEQ", bits=64), entry)


_OBJECTID_RE = re.compile(rb"[A-Za-z0-9_-]{1,255}")  # RFC 8474 §7


def _objectid(r: Reader, key: str) -> SearchObjectId:
    r.sp(f"object id after {key}")
    token = r.match(_OBJECTID_RE)
    if token is None:
        r.fail(f"Expected object id after {key}")
    return SearchObjectId(key, token.decode("ascii"))


def _simple(node: SearchKey) -> Callable[[Reader, str], SearchKey]:
    return lambda r, key: node


_KEYS: dict[str, Callable[[Reader, str], SearchKey]] = {
    "ALL": _simple(SearchAll()),
    "RECENT": _simple(SearchRecent(True)),
    # RFC 3501 §6.4.4: NEW is RECENT UNSEEN, OLD is NOT RECENT
    "NEW": _simple(SearchAnd((SearchRecent(True), SearchFlag("\\Seen", False)))),
    "OLD": _simple(SearchRecent(False)),
    "KEYWORD": _keyword,
    "UNKEYWORD": _keyword,
    "HEADER": _header,
    "BODY": lambda r, key: SearchBody(_value(r, key)),
    "TEXT": lambda r, key: SearchText(_value(r, key)),
    "LARGER": _size,
    "SMALLER": _size,
    "UID": _uid,
    "NOT": _not,
    "OR": _or,
    "MODSEQ": _modseq,
    "SAVEDATESUPPORTED": _simple(SearchAll()),  # RFC 8514 §4: every mailbox keeps save dates
    "EMAILID": _objectid,  # RFC 8474 §6
    "THREADID": _objectid,
}
for _name, (_flag, _present) in _FLAG_KEYS.items():
    _KEYS[_name] = _simple(SearchFlag(_flag, _present))
for _name in _HEADER_KEYS:
    _KEYS[_name] = lambda r, key: SearchHeader(key.lower(), _value(r, key))
for _name in _DATE_KEYS:
    _KEYS[_name] = _date


def _group(r: Reader) -> SearchKey:
    r.char(0x28, "'('")
    keys = [search_key(r)]
    while r.maybe_sp():
        keys.append(search_key(r))
    r.char(0x29, "')' to end the search key group")
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def search_key(r: Reader) -> SearchKey:
    r.enter()  # nesting of NOT, OR and groups is bounded by Limits.max_depth
    r.keys += 1  # and every key is evaluated per message: their number is bounded too
    if r.keys > r.limits.max_search_keys:
        r.fail(f"Too many search keys (limit {r.limits.max_search_keys})")
    c = r.peek()
    if c == 0x28:
        node = _group(r)
    elif 0x30 <= c <= 0x39 or c in (0x2A, 0x24):  # digit, "*", "$"
        node = SearchSequence(r.sequence_set("sequence set"))
    else:
        name = r.keyword("search key")
        handler = _KEYS.get(name)
        if handler is None:
            r.fail(f"Unknown search key {name}")
        node = handler(r, name)
    r.depth -= 1
    return node


def partial_range(r: Reader) -> tuple[int, int]:
    """RFC 9394 §3: ``1:100`` counts from the first result, ``-1:-100`` from the last."""
    r.sp("range after PARTIAL")
    negative = r.maybe_char(0x2D)
    first = r.number("range after PARTIAL", nonzero=True)
    r.char(0x3A, "':' in the PARTIAL range")
    if negative:
        r.char(0x2D, "'-' in the negative PARTIAL range")  # both ends have the same sign
    last = r.number("end of the PARTIAL range", nonzero=True)
    # A range may be written either way round (as seq-range, RFC 9051 §9); kept and echoed
    # in order, nearest end first, as Dovecot answers "4:2" with "2:4".
    first, last = min(first, last), max(first, last)
    return (-first, -last) if negative else (first, last)


def return_options(
    r: Reader, known: frozenset[str]
) -> tuple[tuple[str, ...], tuple[int, int] | None]:
    """``(opt ...)`` after RETURN, each one of ``known``, and the PARTIAL range if given;
    ``()``, like UPDATE or CONTEXT alone, means ALL (RFC 4731 §3.1)."""
    r.sp("'(' after RETURN")
    r.open_paren("'(' after RETURN")
    opts: list[str] = []
    partial: tuple[int, int] | None = None
    if r.peek() != 0x29:
        while True:
            name = r.keyword("search return option")
            if name not in known:
                r.fail(f"Unknown search return option {name}")
            if name == "PARTIAL":
                if partial is not None:
                    r.fail("PARTIAL given twice")
                partial = partial_range(r)
            opts.append(name)
            if not r.maybe_sp():
                break
    r.close_paren("')' to end search return options")
    if partial is not None and "ALL" in opts:
        r.fail("PARTIAL and ALL cannot be combined")  # RFC 9394 §3.1
    if not set(opts) - {"UPDATE", "CONTEXT"}:
        opts.append("ALL")  # RFC 4731 §3.1: () means ALL; UPDATE and CONTEXT ask for no data
    return tuple(dict.fromkeys(opts)), partial


def search_program(r: Reader) -> SearchKey:
    """One or more search keys, an implicit AND (RFC 9051 §6.4.4)."""
    keys = [search_key(r)]
    while r.maybe_sp():
        keys.append(search_key(r))
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def parse_search(r: Reader, uid: bool) -> Search:
    r.sp("search criteria after SEARCH")
    save = r.pos
    word = r.match_keyword()
    returns: tuple[str, ...] | None = None
    partial: tuple[int, int] | None = None
    if word == "RETURN":
        returns, partial = return_options(r, RETURN_OPTIONS)
        r.sp("search criteria after the return options")
        save = r.pos
        word = r.match_keyword()
    charset: str | None = None
    if word == "CHARSET":
        r.sp("charset name after CHARSET")
        raw = r.astring("charset name after CHARSET")
        charset = raw.decode("ascii", "replace").upper()
        if charset not in CHARSETS:
            raise BadCharset(r.tag, raw.decode("ascii", "replace"))  # RFC 9051 §6.4.4
        r.sp("search criteria after the charset")
    else:
        r.seek(save)
    return Search(r.tag, uid, charset, search_program(r), returns, partial)
